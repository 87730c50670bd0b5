package transform

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// RootKind says what a root holds.
type RootKind string

// Root kinds: a models root may also hold macros/, tests/ and seeds/
// folders; a dbt project's macro-paths, test-paths and seed-paths become
// roots of their own kind.
const (
	ModelsRoot RootKind = ""
	MacrosRoot RootKind = "macros"
	TestsRoot  RootKind = "tests"
	SeedsRoot  RootKind = "seeds"
)

// DBTProject is what cdw reads of a dbt project's dbt_project.yml.
type DBTProject struct {
	Name string
	Dir  string
	// Paths relative to Dir, with dbt's defaults.
	ModelPaths, SeedPaths, MacroPaths, TestPaths []string
	Vars                                         Vars
	// folders are the +config of models: per folder (relative to a model
	// path; "" for all), e.g. {"staging": {"materialized": "view"}}.
	folders map[string]map[string]any
	// seedTypes are the +column_types of seeds: per seed name.
	seedTypes map[string]map[string]string
}

// LoadDBTProject reads dir/dbt_project.yml.
func LoadDBTProject(dir string) (*DBTProject, error) {
	file := filepath.Join(dir, "dbt_project.yml")
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading dbt project: %w", err)
	}
	var y struct {
		Name       string         `yaml:"name"`
		ModelPaths []string       `yaml:"model-paths"`
		SeedPaths  []string       `yaml:"seed-paths"`
		MacroPaths []string       `yaml:"macro-paths"`
		TestPaths  []string       `yaml:"test-paths"`
		Vars       map[string]any `yaml:"vars"`
		Models     map[string]any `yaml:"models"`
		Seeds      map[string]any `yaml:"seeds"`
		// What cdw does not run: refused, not skipped in silence.
		SnapshotPaths []string `yaml:"snapshot-paths"`
		OnRunStart    any      `yaml:"on-run-start"`
		OnRunEnd      any      `yaml:"on-run-end"`
	}
	if err := yaml.Unmarshal(data, &y); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if y.Name == "" {
		return nil, fmt.Errorf("%s: name is required", file)
	}
	p := &DBTProject{Name: y.Name, Dir: dir, ModelPaths: y.ModelPaths, SeedPaths: y.SeedPaths, MacroPaths: y.MacroPaths,
		TestPaths: y.TestPaths, Vars: Vars{}, folders: map[string]map[string]any{}, seedTypes: map[string]map[string]string{}}
	def := func(s *[]string, d string) {
		if len(*s) == 0 {
			*s = []string{d}
		}
	}
	for key, hook := range map[string]any{"on-run-start": y.OnRunStart, "on-run-end": y.OnRunEnd} {
		if hook != nil {
			return nil, fmt.Errorf("%s: %s hooks are not supported: run the statements as a model or a test", file, key)
		}
	}
	def(&y.SnapshotPaths, "snapshots")
	for _, sp := range y.SnapshotPaths {
		snaps, _ := filepath.Glob(filepath.Join(dir, sp, "*.sql"))
		if len(snaps) > 0 {
			return nil, fmt.Errorf("%s: dbt snapshots are not supported (%s): write an incremental model with unique_key instead", file, snaps[0])
		}
	}
	def(&p.ModelPaths, "models")
	def(&p.SeedPaths, "seeds")
	def(&p.MacroPaths, "macros")
	def(&p.TestPaths, "tests")
	for k, v := range y.Vars {
		if nested, ok := v.(map[string]any); ok && k == y.Name {
			// vars scoped to this project
			for nk, nv := range nested {
				p.Vars[nk] = fmt.Sprint(nv)
			}
			continue
		}
		p.Vars[k] = fmt.Sprint(v)
	}
	if own, ok := y.Models[y.Name].(map[string]any); ok {
		if err := p.readFolders(file, "", own); err != nil {
			return nil, err
		}
	}
	if own, ok := y.Seeds[y.Name].(map[string]any); ok {
		if err := p.readSeeds(file, own); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// readFolders walks models: <project>: {+materialized: …, staging: {…}}.
func (p *DBTProject) readFolders(file, dir string, node map[string]any) error {
	for k, v := range node {
		if key, ok := strings.CutPrefix(k, "+"); ok {
			if p.folders[dir] == nil {
				p.folders[dir] = map[string]any{}
			}
			p.folders[dir][key] = v
			continue
		}
		sub, ok := v.(map[string]any)
		if !ok {
			// dbt also accepts config keys without "+"; folders are maps.
			if p.folders[dir] == nil {
				p.folders[dir] = map[string]any{}
			}
			p.folders[dir][k] = v
			continue
		}
		if err := p.readFolders(file, path.Join(dir, k), sub); err != nil {
			return err
		}
	}
	return nil
}

// readSeeds reads seeds: <project>: {+column_types: {…}, seed_name: {+column_types: {…}}}.
func (p *DBTProject) readSeeds(file string, node map[string]any) error {
	for k, v := range node {
		sub, ok := v.(map[string]any)
		if !ok {
			continue
		}
		ct, ok := sub["+column_types"].(map[string]any)
		if !ok {
			ct, ok = sub["column_types"].(map[string]any)
		}
		if !ok {
			continue
		}
		types := map[string]string{}
		for c, t := range ct {
			types[c] = fmt.Sprint(t)
		}
		p.seedTypes[strings.ToLower(k)] = types
	}
	return nil
}

// Roots are the project's folders as model, seed, macro and test roots.
func (p *DBTProject) Roots() []Root {
	var out []Root
	add := func(paths []string, kind RootKind) {
		for _, d := range paths {
			dir := filepath.Join(p.Dir, d)
			if _, err := os.Stat(dir); err != nil {
				continue // dbt ignores a default folder that is not there
			}
			out = append(out, Root{Name: filepath.ToSlash(dir), FS: os.DirFS(dir), Dir: dir, Kind: kind, DBT: true,
				folders: p.folders, seedTypes: p.seedTypes})
		}
	}
	add(p.MacroPaths, MacrosRoot)
	add(p.SeedPaths, SeedsRoot)
	add(p.ModelPaths, ModelsRoot)
	add(p.TestPaths, TestsRoot)
	return out
}

// folderConfig is the +config that applies to a model in dir: the
// outermost first, so deeper folders override.
func folderConfig(folders map[string]map[string]any, dir string) map[string]any {
	if len(folders) == 0 {
		return nil
	}
	keys := make([]string, 0, len(folders))
	for k := range folders {
		if k == "" || dir == k || strings.HasPrefix(dir, k+"/") {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) < len(keys[j]) })
	out := map[string]any{}
	for _, k := range keys {
		for ck, cv := range folders[k] {
			out[ck] = cv
		}
	}
	return out
}
