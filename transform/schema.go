package transform

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cdwhq/cdw/internal/duck"
)

// A dbt properties file (schema.yml, or any *.yml beside the models)
// documents models and seeds, declares their generic tests and describes
// sources with their freshness.
type schemaFile struct {
	file    string
	Models  []schemaModel  `yaml:"models"`
	Seeds   []schemaModel  `yaml:"seeds"`
	Sources []schemaSource `yaml:"sources"`
}

type schemaModel struct {
	Name        string         `yaml:"name"`
	Description string         `yaml:"description"`
	Columns     []schemaColumn `yaml:"columns"`
	Tests       []yaml.Node    `yaml:"tests"`
	DataTests   []yaml.Node    `yaml:"data_tests"`
	Config      map[string]any `yaml:"config"`
	line        int
}

type schemaColumn struct {
	Name        string      `yaml:"name"`
	Description string      `yaml:"description"`
	Tests       []yaml.Node `yaml:"tests"`
	DataTests   []yaml.Node `yaml:"data_tests"`
}

type schemaSource struct {
	Name          string         `yaml:"name"`
	LoadedAtField string         `yaml:"loaded_at_field"`
	Freshness     yaml.Node      `yaml:"freshness"` // null on a table: none
	Tables        []schemaSource `yaml:"tables"`
	Description   string         `yaml:"description"`
	Identifier    string         `yaml:"identifier"`
}

type dbtFreshness struct {
	WarnAfter  *dbtPeriod `yaml:"warn_after"`
	ErrorAfter *dbtPeriod `yaml:"error_after"`
}

type dbtPeriod struct {
	Count  int    `yaml:"count"`
	Period string `yaml:"period"`
}

func (p *dbtPeriod) duration() (time.Duration, error) {
	if p == nil {
		return 0, nil
	}
	unit := map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}[p.Period]
	if unit == 0 || p.Count <= 0 {
		return 0, fmt.Errorf("freshness needs {count: N, period: minute|hour|day}, got %d %q", p.Count, p.Period)
	}
	return time.Duration(p.Count) * unit, nil
}

// SourceFreshness is a dbt source's freshness rule: the newest
// loaded_at_field of its raw relation may be this old.
type SourceFreshness struct {
	Name     string // "shop.orders"
	File     string // the properties file declaring it
	Relation string // raw.shop_orders
	Column   string // loaded_at_field
	Rule     Freshness
}

func parseSchemaFile(file string, data []byte) (*schemaFile, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	sf := &schemaFile{file: file}
	if err := doc.Decode(sf); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	// Remember where each model is, for errors.
	if len(doc.Content) == 1 {
		top := doc.Content[0]
		for i := 0; i+1 < len(top.Content); i += 2 {
			if top.Content[i].Value != "models" {
				continue
			}
			for j, m := range top.Content[i+1].Content {
				if j < len(sf.Models) {
					sf.Models[j].line = m.Line
				}
			}
		}
	}
	return sf, nil
}

// freshness decodes the freshness: key; absent or null is none.
func (s *schemaSource) freshness() (*dbtFreshness, error) {
	if s.Freshness.Kind == 0 || s.Freshness.Tag == "!!null" {
		return nil, nil
	}
	var fr dbtFreshness
	if err := s.Freshness.Decode(&fr); err != nil {
		return nil, err
	}
	return &fr, nil
}

// sourceFreshness lists the freshness rules of the file's sources; a
// table's rule and loaded_at_field override its source's.
func (sf *schemaFile) sourceFreshness() ([]SourceFreshness, error) {
	var out []SourceFreshness
	for _, s := range sf.Sources {
		srcFr, err := s.freshness()
		if err != nil {
			return nil, fmt.Errorf("%s: source %s: %w", sf.file, s.Name, err)
		}
		for _, t := range s.Tables {
			fr, col := srcFr, s.LoadedAtField
			if t.Freshness.Kind != 0 {
				if fr, err = t.freshness(); err != nil {
					return nil, fmt.Errorf("%s: source %s.%s: %w", sf.file, s.Name, t.Name, err)
				}
			}
			if t.LoadedAtField != "" {
				col = t.LoadedAtField
			}
			if fr == nil || (fr.WarnAfter == nil && fr.ErrorAfter == nil) {
				continue
			}
			name := s.Name + "." + t.Name
			if col == "" {
				return nil, fmt.Errorf("%s: source %s has a freshness rule but no loaded_at_field", sf.file, name)
			}
			w, err := fr.WarnAfter.duration()
			if err != nil {
				return nil, fmt.Errorf("%s: source %s: %w", sf.file, name, err)
			}
			e, err := fr.ErrorAfter.duration()
			if err != nil {
				return nil, fmt.Errorf("%s: source %s: %w", sf.file, name, err)
			}
			ident := t.Name
			if t.Identifier != "" {
				ident = t.Identifier
			}
			out = append(out, SourceFreshness{Name: name, File: sf.file, Relation: "raw." + strings.ToLower(s.Name+"_"+ident),
				Column: col, Rule: Freshness{WarnAfter: w, ErrorAfter: e}})
		}
	}
	return out, nil
}

// apply adds a properties entry's descriptions and tests to its model.
func (sm *schemaModel) apply(file string, m *Model, blocks docs) error {
	at := func(err error) error { return fmt.Errorf("%s:%d: model %s: %w", file, sm.line, sm.Name, err) }
	if sm.Description != "" {
		d, err := blocks.expand(sm.Description)
		if err != nil {
			return at(err)
		}
		m.Header.Description = d
	}
	for _, n := range append(sm.Tests, sm.DataTests...) {
		ts, err := genericTest(n, "")
		if err != nil {
			return at(err)
		}
		m.Header.Tests = append(m.Header.Tests, ts)
	}
	for _, c := range sm.Columns {
		if c.Name == "" {
			return at(fmt.Errorf("a column needs a name"))
		}
		if c.Description != "" {
			d, err := blocks.expand(c.Description)
			if err != nil {
				return fmt.Errorf("%s:%d: model %s, column %s: %w", file, sm.line, sm.Name, c.Name, err)
			}
			c.Description = d
			found := false
			for i := range m.Header.Columns {
				if strings.EqualFold(m.Header.Columns[i].Name, c.Name) {
					m.Header.Columns[i].Description, found = strings.TrimSpace(c.Description), true
				}
			}
			if !found {
				m.Header.Columns = append(m.Header.Columns, ColumnDoc{Name: c.Name, Description: strings.TrimSpace(c.Description)})
			}
		}
		for _, n := range append(c.Tests, c.DataTests...) {
			ts, err := genericTest(n, c.Name)
			if err != nil {
				return fmt.Errorf("%s:%d: model %s, column %s: %w", file, n.Line, sm.Name, c.Name, err)
			}
			m.Header.Tests = append(m.Header.Tests, ts)
		}
	}
	return nil
}

var refArg = regexp.MustCompile(`^\s*ref\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]+)['"]\s*)?\)\s*$`)

// genericTest reads one entry of a tests: list: "unique", or
// {accepted_values: {values: […], config: {severity: warn, where: …}}}.
func genericTest(n yaml.Node, column string) (TestSpec, error) {
	var kind string
	args := map[string]any{}
	switch n.Kind {
	case yaml.ScalarNode:
		kind = n.Value
	case yaml.MappingNode:
		if len(n.Content) != 2 {
			return TestSpec{}, fmt.Errorf("a test is a name or {name: {arguments}}")
		}
		kind = n.Content[0].Value
		if err := n.Content[1].Decode(&args); err != nil {
			return TestSpec{}, fmt.Errorf("test %s: %w", kind, err)
		}
	default:
		return TestSpec{}, fmt.Errorf("a test is a name or {name: {arguments}}")
	}
	if _, ok := testKinds[kind]; !ok {
		return TestSpec{}, fmt.Errorf("unknown test %q (known: unique, not_null, accepted_values, relationships; dbt packages such as dbt_utils are not supported: write a test file under tests/)", kind)
	}
	if inner, ok := args["arguments"].(map[string]any); ok { // dbt 1.10 nests them
		for k, v := range inner {
			args[k] = v
		}
	}
	if c, ok := args["column_name"].(string); ok {
		column = c
	}
	if column == "" {
		return TestSpec{}, fmt.Errorf("test %s needs a column (list it under the column, or give column_name)", kind)
	}
	t := TestSpec{Kind: kind, Args: []string{column}, Severity: "error"}
	cfg, _ := args["config"].(map[string]any)
	if cfg == nil {
		cfg = args
	}
	if s, ok := cfg["severity"].(string); ok {
		switch strings.ToLower(s) {
		case "warn", "error":
			t.Severity = strings.ToLower(s)
		default:
			return TestSpec{}, fmt.Errorf("test %s: severity must be warn or error, got %q", kind, s)
		}
	}
	if w, ok := cfg["where"].(string); ok {
		t.Where = w
	}
	switch kind {
	case "accepted_values":
		vals, ok := args["values"].([]any)
		if !ok || len(vals) == 0 {
			return TestSpec{}, fmt.Errorf("accepted_values needs values: [...]")
		}
		quote := true
		if q, ok := args["quote"].(bool); ok {
			quote = q
		}
		for _, v := range vals {
			switch x := v.(type) {
			case int, float64, bool:
				t.Args = append(t.Args, fmt.Sprint(x))
			default:
				if quote {
					t.Args = append(t.Args, duck.Literal(fmt.Sprint(x)))
				} else {
					t.Args = append(t.Args, fmt.Sprint(x))
				}
			}
		}
	case "relationships":
		to, _ := args["to"].(string)
		field, _ := args["field"].(string)
		g := refArg.FindStringSubmatch(to)
		if g == nil || field == "" {
			return TestSpec{}, fmt.Errorf("relationships needs to: ref('model') and field: column, got to: %q, field: %q", to, field)
		}
		target := g[1]
		if g[2] != "" {
			target = g[2]
		}
		t.Args = append(t.Args, strings.ToLower(target)+"."+field)
	}
	return t, nil
}

// seedTypes reads a properties file's seeds: config: column_types.
func (sf *schemaFile) seedTypes() map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, s := range sf.Seeds {
		ct, ok := s.Config["column_types"].(map[string]any)
		if !ok {
			continue
		}
		types := map[string]string{}
		for c, t := range ct {
			types[c] = fmt.Sprint(t)
		}
		out[strings.ToLower(s.Name)] = types
	}
	return out
}

// docs are dbt's doc blocks, {% docs name %}…{% enddocs %} in .md files
// beside the models, which descriptions name with {{ doc('name') }}.
type docs map[string]string

var (
	docBlock = regexp.MustCompile(`(?s)\{%-?\s*docs\s+(\w+)\s*-?%\}(.*?)\{%-?\s*enddocs\s*-?%\}`)
	docCall  = regexp.MustCompile(`\{\{-?\s*doc\(\s*['"](\w+)['"]\s*\)\s*-?\}\}`)
)

func (d docs) add(file, src string) error {
	for _, g := range docBlock.FindAllStringSubmatch(src, -1) {
		if _, dup := d[g[1]]; dup {
			return fmt.Errorf("%s: doc block %s is defined twice", file, g[1])
		}
		d[g[1]] = strings.TrimSpace(g[2])
	}
	return nil
}

// expand replaces {{ doc('name') }} in a description with the block's
// text; any other templating in a description is an error.
func (d docs) expand(desc string) (string, error) {
	var err error
	out := docCall.ReplaceAllStringFunc(desc, func(call string) string {
		name := docCall.FindStringSubmatch(call)[1]
		text, ok := d[name]
		if !ok && err == nil {
			err = fmt.Errorf("{{ doc('%s') }}: no {%% docs %s %%} block in the project's .md files", name, name)
		}
		return text
	})
	if err != nil {
		return "", err
	}
	if hasTemplate(out) {
		return "", fmt.Errorf("a description may use only {{ doc('name') }}, got %q", strings.TrimSpace(desc))
	}
	return strings.TrimSpace(out), nil
}
