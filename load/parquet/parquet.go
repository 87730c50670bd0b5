// Package parquet publishes marts as Parquet files in versions. Each publish
// writes a complete new version aside (marts/_versions/<id>/<mart>.parquet),
// then switches readers to it: the marts/current symlink is replaced in one
// rename (the whole set at once), and every marts/<mart>.parquet is replaced
// by a hard link to the new version's file (one rename per file). Older
// versions are kept (keep: 3) so `cdw publish --rollback` can switch back.
package parquet

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cdwhq/cdw/internal/duck"
	"github.com/cdwhq/cdw/internal/durable"
	"github.com/cdwhq/cdw/internal/failpoint"
	"github.com/cdwhq/cdw/load"
)

func init() {
	load.Register(load.Kind{Name: "parquet", Doc: "versioned marts/<mart>.parquet and marts/current/, switched atomically, with rollback", Open: open})
}

const (
	versionsDir = "_versions"
	currentLink = "current"
	defaultKeep = 3
)

type options struct {
	Dir         string `yaml:"dir"`         // default <warehouse>/marts
	Keep        *int   `yaml:"keep"`        // versions kept, the current one included; default 3
	Compression string `yaml:"compression"` // Parquet codec; default zstd
	Layout      string `yaml:"layout"`      // files (default) | partitioned (partitioned.go)
	Buckets     *int   `yaml:"buckets"`     // customer-key hash buckets per unit; default 16
}

// codecs are the Parquet compression codecs a publish may use: the ones
// DuckDB writes that pyarrow, Spark, Trino and DuckDB itself all read.
// zstd is the default (smallest files); snappy writes faster and larger.
var codecs = []string{"zstd", "snappy", "lz4_raw", "gzip", "uncompressed"}

const defaultCodec = "zstd"

// Publisher writes versioned Parquet marts.
type Publisher struct {
	dir     string
	keep    int
	codec   string
	layout  string
	buckets int
	// last is what the newest publish of a partitioned layout wrote and
	// linked (tests and the bench read it).
	last partitionStats
}

var (
	_ load.Publisher  = (*Publisher)(nil)
	_ load.Rollbacker = (*Publisher)(nil)
	_ load.Versioned  = (*Publisher)(nil)
)

func open(cfg load.TargetConfig) (load.Publisher, error) {
	var o options
	if err := cfg.Options.Decode(&o); err != nil {
		return nil, err
	}
	return newPublisher(cfg, o)
}

func newPublisher(cfg load.TargetConfig, o options) (*Publisher, error) {
	dir := filepath.Join(cfg.Dir, "marts")
	if o.Dir != "" {
		dir = o.Dir
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(cfg.BaseDir, dir)
		}
	}
	keep := defaultKeep
	if o.Keep != nil {
		keep = *o.Keep
		if keep < 1 {
			return nil, cfg.Options.Get("keep").Errorf("keep must be at least 1 (the current version), got %d", keep)
		}
	}
	codec := defaultCodec
	if o.Compression != "" {
		codec = strings.ToLower(o.Compression)
		if !slices.Contains(codecs, codec) {
			return nil, cfg.Options.Get("compression").Errorf("compression must be one of %s, got %q", strings.Join(codecs, ", "), o.Compression)
		}
	}
	layout := layoutFiles
	if o.Layout != "" {
		layout = o.Layout
		if layout != layoutFiles && layout != layoutPartitioned {
			return nil, cfg.Options.Get("layout").Errorf("layout must be %s or %s, got %q", layoutFiles, layoutPartitioned, o.Layout)
		}
	}
	buckets := defaultBuckets
	if o.Buckets != nil {
		buckets = *o.Buckets
		if buckets < 1 || buckets > 1024 {
			return nil, cfg.Options.Get("buckets").Errorf("buckets must be between 1 and 1024, got %d", buckets)
		}
	}
	return &Publisher{dir: dir, keep: keep, codec: codec, layout: layout, buckets: buckets}, nil
}

// Dir is the directory readers use: <dir>/<mart>.parquet and <dir>/current/.
func (p *Publisher) Dir() string { return p.dir }

// version is one published set of marts, named "<seq>-<UTC time>" so that
// versions order by seq even if the clock goes backwards.
type version struct {
	seq  int
	name string
}

var versionName = regexp.MustCompile(`^([0-9]{6,})-[0-9TZ]+$`)

func (p *Publisher) versionPath(name string) string {
	return filepath.Join(p.dir, versionsDir, name)
}

// versions lists the complete versions, oldest first.
func (p *Publisher) versions() ([]version, error) {
	ents, err := os.ReadDir(filepath.Join(p.dir, versionsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing Parquet versions: %w", err)
	}
	var vs []version
	for _, e := range ents {
		m := versionName.FindStringSubmatch(e.Name())
		if m == nil || !e.IsDir() {
			continue
		}
		seq, err := strconv.Atoi(m[1])
		if err != nil {
			continue
		}
		vs = append(vs, version{seq: seq, name: e.Name()})
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].seq < vs[j].seq })
	return vs, nil
}

// Current returns the name of the version readers see, or "" before the
// first versioned publish.
func (p *Publisher) Current() (string, error) {
	target, err := os.Readlink(filepath.Join(p.dir, currentLink))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", filepath.Join(p.dir, currentLink), err)
	}
	return filepath.Base(target), nil
}

// Publish writes every mart into a new version directory and switches
// readers to it. A failure before the switch leaves the current version.
func (p *Publisher) Publish(ctx context.Context, m load.Marts) error {
	vdir := filepath.Join(p.dir, versionsDir)
	if err := os.MkdirAll(vdir, durable.DirPerm); err != nil {
		return fmt.Errorf("creating %s: %w", vdir, err)
	}
	p.removeStaging()
	vs, err := p.versions()
	if err != nil {
		return err
	}
	seq := 1
	if len(vs) > 0 {
		seq = vs[len(vs)-1].seq + 1
	}
	name := fmt.Sprintf("%06d-%s", seq, time.Now().UTC().Format("20060102T150405Z"))
	if m.Version != "" {
		if !versionName.MatchString(m.Version) {
			return fmt.Errorf("parquet marts in %s: version id %q is not <seq>-<time>", p.dir, m.Version)
		}
		name = m.Version
	}
	staging := filepath.Join(vdir, "."+name+".tmp-publish")
	if err := os.Mkdir(staging, durable.DirPerm); err != nil {
		return fmt.Errorf("creating %s: %w", staging, err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(staging)
		}
	}()
	prev, err := p.Current()
	if err != nil {
		return err
	}
	prevDir := ""
	if prev != "" {
		prevDir = p.versionPath(prev)
	}
	p.last = partitionStats{}
	for _, mart := range m.Names {
		if err := p.writeMart(ctx, m, mart, staging, prevDir); err != nil {
			return err
		}
		failpoint.Hit("publish.parquet.mid-write") // version half written, aside
	}
	if err := durable.SyncDir(staging); err != nil {
		return err
	}
	if err := durable.Rename(staging, p.versionPath(name)); err != nil {
		return err
	}
	done = true
	failpoint.Hit("publish.parquet.before-switch") // complete version, readers still on the old one
	if err := p.switchTo(name, prev); err != nil {
		return err
	}
	slog.Debug("published Parquet version", "dir", p.dir, "version", name, "marts", len(m.Names))
	return p.prune(name)
}

// writeMart writes one mart into the staging version: a single file, or a
// partitioned dataset that links what is unchanged since prevDir.
func (p *Publisher) writeMart(ctx context.Context, m load.Marts, mart, staging, prevDir string) error {
	meta, err := kvMetadata(ctx, m.DB, mart, m.Docs[mart], filepath.Join(staging, "."+mart+".schema.parquet"))
	if err != nil {
		return err
	}
	part, err := p.partitioned(ctx, m.DB, mart)
	if err != nil {
		return err
	}
	if part {
		st, err := p.writePartitioned(ctx, m.DB, mart, staging, prevDir, meta)
		p.last.Written += st.Written
		p.last.Linked += st.Linked
		return err
	}
	f := filepath.Join(staging, mart+".parquet")
	q := fmt.Sprintf("COPY (SELECT * FROM %s) TO %s (FORMAT parquet, COMPRESSION %s%s)", duck.Ident(mart), duck.Literal(f), p.codec, meta)
	if _, err := m.DB.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("writing mart %s to Parquet: %w", mart, err)
	}
	if err := os.Chmod(f, durable.FilePerm); err != nil {
		return fmt.Errorf("setting permissions on %s: %w", f, err)
	}
	return durable.SyncFile(f)
}

// Rollback switches readers to the version before the current one and
// deletes the current one, so a later rollback goes further back rather
// than forward to the bad version again.
func (p *Publisher) Rollback(ctx context.Context) (string, error) {
	cur, err := p.Current()
	if err != nil {
		return "", err
	}
	if cur == "" {
		return "", fmt.Errorf("parquet marts in %s: %w (nothing has been published as a version yet)", p.dir, load.ErrNoPreviousVersion)
	}
	vs, err := p.versions()
	if err != nil {
		return "", err
	}
	curSeq := -1
	if m := versionName.FindStringSubmatch(cur); m != nil {
		curSeq, _ = strconv.Atoi(m[1])
	}
	prev := ""
	for _, v := range vs {
		if v.seq < curSeq {
			prev = v.name
		}
	}
	if prev == "" {
		return "", fmt.Errorf("parquet marts in %s: %w (only version %s is kept)", p.dir, load.ErrNoPreviousVersion, cur)
	}
	if err := p.switchTo(prev, cur); err != nil {
		return "", err
	}
	if err := os.RemoveAll(p.versionPath(cur)); err != nil {
		return "", fmt.Errorf("removing rolled-back version %s: %w", cur, err)
	}
	return "version " + prev, nil
}

// CurrentVersion is the version readers see ("" before the first).
func (p *Publisher) CurrentVersion(context.Context) (string, error) { return p.Current() }

// KeptVersions lists the complete versions, oldest first.
func (p *Publisher) KeptVersions(context.Context) ([]string, error) {
	vs, err := p.versions()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.name
	}
	return out, nil
}

// RollbackTo switches readers to version id and deletes the versions after
// it, so a later publish or rollback never lands on them again.
func (p *Publisher) RollbackTo(_ context.Context, id string) error {
	cur, err := p.Current()
	if err != nil {
		return err
	}
	vs, err := p.versions()
	if err != nil {
		return err
	}
	seq := -1
	for _, v := range vs {
		if v.name == id {
			seq = v.seq
		}
	}
	if seq < 0 {
		return fmt.Errorf("parquet marts in %s: version %s is not kept: %w", p.dir, id, load.ErrNoPreviousVersion)
	}
	if cur != id {
		if err := p.switchTo(id, cur); err != nil {
			return err
		}
	}
	for _, v := range vs {
		if v.seq > seq {
			if err := os.RemoveAll(p.versionPath(v.name)); err != nil {
				return fmt.Errorf("removing rolled-back version %s: %w", v.name, err)
			}
		}
	}
	return nil
}

// switchTo points marts/current at version name, then replaces each
// marts/<mart>.parquet with a hard link into it. Stable files of marts that
// the old version had and the new one lacks are removed.
func (p *Publisher) switchTo(name, old string) error {
	link := filepath.Join(p.dir, ".current.tmp-link")
	os.Remove(link)
	if err := os.Symlink(filepath.Join(versionsDir, name), link); err != nil {
		return fmt.Errorf("creating link to version %s: %w", name, err)
	}
	if err := durable.Rename(link, filepath.Join(p.dir, currentLink)); err != nil {
		os.Remove(link)
		return fmt.Errorf("switching to version %s: %w", name, err)
	}
	marts, err := martFiles(p.versionPath(name))
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, f := range marts {
		have[f] = true
		tmp := filepath.Join(p.dir, "."+f+".tmp-link")
		os.Remove(tmp)
		if err := os.Link(filepath.Join(p.versionPath(name), f), tmp); err != nil {
			return fmt.Errorf("linking %s of version %s: %w", f, name, err)
		}
		if err := os.Rename(tmp, filepath.Join(p.dir, f)); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("switching %s to version %s: %w", f, name, err)
		}
		failpoint.Hit("publish.parquet.mid-switch") // some stable files switched, others not
	}
	if err := p.linkMartDirs(name); err != nil {
		return err
	}
	if old != "" {
		oldFiles, _ := martFiles(p.versionPath(old))
		for _, f := range oldFiles {
			if have[f] {
				continue
			}
			// Only remove a stable file that is still our link into the
			// old version, never a file someone else put there.
			a, errA := os.Stat(filepath.Join(p.dir, f))
			b, errB := os.Stat(filepath.Join(p.versionPath(old), f))
			if errA == nil && errB == nil && os.SameFile(a, b) {
				os.Remove(filepath.Join(p.dir, f))
			}
		}
	}
	return durable.SyncDir(p.dir)
}

// prune removes the oldest versions beyond keep, never the current one.
func (p *Publisher) prune(current string) error {
	vs, err := p.versions()
	if err != nil {
		return err
	}
	for i := 0; i < len(vs)-p.keep; i++ {
		if vs[i].name == current {
			continue
		}
		if err := os.RemoveAll(p.versionPath(vs[i].name)); err != nil {
			return fmt.Errorf("pruning Parquet version %s: %w", vs[i].name, err)
		}
	}
	return nil
}

// removeStaging deletes half-written versions left by a crashed publish.
// The warehouse lock guarantees no other publish is writing them.
func (p *Publisher) removeStaging() {
	ents, _ := os.ReadDir(filepath.Join(p.dir, versionsDir))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") && strings.HasSuffix(e.Name(), ".tmp-publish") {
			os.RemoveAll(filepath.Join(p.dir, versionsDir, e.Name()))
		}
	}
}

func martFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".parquet") && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// linkMartDirs makes marts/<mart> a symlink to current/<mart> for each
// partitioned mart of version name (it follows the current switch, so it
// never changes itself), and removes such links whose mart the version
// does not partition.
func (p *Publisher) linkMartDirs(name string) error {
	ents, err := os.ReadDir(p.versionPath(name))
	if err != nil {
		return fmt.Errorf("listing version %s: %w", name, err)
	}
	have := map[string]bool{}
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		have[e.Name()] = true
		stable := filepath.Join(p.dir, e.Name())
		if t, err := os.Readlink(stable); err == nil && t == filepath.Join(currentLink, e.Name()) {
			continue
		}
		if _, err := os.Lstat(stable); err == nil {
			return fmt.Errorf("cannot publish partitioned mart %s: %s exists and is not cdw's link to %s", e.Name(), stable, filepath.Join(currentLink, e.Name()))
		}
		if err := os.Symlink(filepath.Join(currentLink, e.Name()), stable); err != nil {
			return fmt.Errorf("linking %s: %w", stable, err)
		}
	}
	links, _ := os.ReadDir(p.dir)
	for _, e := range links {
		stable := filepath.Join(p.dir, e.Name())
		if t, err := os.Readlink(stable); err == nil && t == filepath.Join(currentLink, e.Name()) && !have[e.Name()] {
			os.Remove(stable)
		}
	}
	return nil
}
