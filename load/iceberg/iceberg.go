// Package iceberg publishes marts as Apache Iceberg tables (kind: iceberg):
// one table per mart in namespace marts of the catalog configured in
// cdw.yaml's iceberg: section (a filesystem catalog under
// <warehouse>/iceberg by default). Each publish writes one Parquet file per
// mart and commits it as one snapshot that replaces the mart's previous
// files, so a reader of any engine sees a whole version of each mart. The
// snapshot summary carries the publish version id (cdw.version); rollback
// moves the table back to an earlier snapshot of its lineage, and snapshots
// beyond keep expire, with their files.
package iceberg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	icecat "github.com/cdwhq/cdw/iceberg"
	"github.com/cdwhq/cdw/internal/duck"
	"github.com/cdwhq/cdw/internal/durable"
	"github.com/cdwhq/cdw/internal/failpoint"
	"github.com/cdwhq/cdw/load"
)

func init() {
	load.Register(load.Kind{Name: "iceberg", Doc: "one Apache Iceberg table per mart in the iceberg: catalog, one snapshot per publish, with rollback", Open: open})
}

const (
	defaultNamespace = "marts"
	defaultKeep      = 3
)

type options struct {
	Namespace string `yaml:"namespace"` // default marts
	Keep      *int   `yaml:"keep"`      // snapshots kept per mart, the current one included; default 3
}

// Publisher writes marts as Iceberg tables.
type Publisher struct {
	settings *icecat.Settings
	ns       string
	keep     int
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
	s, err := icecat.Parse(cfg.Iceberg, cfg.Dir, cfg.BaseDir)
	if err != nil {
		return nil, err
	}
	if s == nil {
		// No iceberg: section: the embedded filesystem catalog.
		s = icecat.Default(cfg.Dir)
	}
	p := &Publisher{settings: s, ns: defaultNamespace, keep: defaultKeep}
	if o.Namespace != "" {
		p.ns = o.Namespace
	}
	if o.Keep != nil {
		if *o.Keep < 1 {
			return nil, cfg.Options.Get("keep").Errorf("keep must be at least 1 (the current version), got %d", *o.Keep)
		}
		p.keep = *o.Keep
	}
	return p, nil
}

// New returns a publisher on catalog s (tests and embedding).
func New(s *icecat.Settings, namespace string, keep int) *Publisher {
	if namespace == "" {
		namespace = defaultNamespace
	}
	return &Publisher{settings: s, ns: namespace, keep: max(keep, 1)}
}

// Namespace is the namespace the mart tables live in.
func (p *Publisher) Namespace() string { return p.ns }

func (p *Publisher) where() string { return "Iceberg marts in the " + p.settings.Where() }

// Publish commits one snapshot per mart. Marts of the previous version that
// this one lacks are dropped from the catalog (their files stay until the
// table's directory is removed), as the Parquet target removes their files.
func (p *Publisher) Publish(ctx context.Context, m load.Marts) error {
	cat, err := p.settings.Open(ctx)
	if err != nil {
		return err
	}
	defer cat.Close()
	version := m.Version
	if version == "" {
		version = "000000-" + time.Now().UTC().Format("20060102T150405Z")
	}
	for _, mart := range m.Names {
		if err := p.publishMart(ctx, cat, m, mart, version); err != nil {
			return err
		}
		failpoint.Hit("publish.iceberg.between-marts") // some marts on the new version, others on the old
	}
	tables, err := p.tables(ctx, cat)
	if err != nil {
		return err
	}
	for _, name := range tables {
		if slices.Contains(m.Names, name) {
			continue
		}
		if err := cat.DropTable(ctx, catalog.ToIdentifier(p.ns, name)); err != nil {
			return fmt.Errorf("%s: dropping mart %s, which version %s no longer has: %w", p.where(), name, version, err)
		}
		slog.Info("dropped Iceberg mart table no longer published", "table", p.ns+"."+name, "version", version)
	}
	return nil
}

func (p *Publisher) publishMart(ctx context.Context, cat *icecat.Catalog, m load.Marts, mart, version string) error {
	loc := filepath.Join(p.settings.Dir, p.ns, mart)
	dataDir := filepath.Join(loc, "data")
	if err := os.MkdirAll(dataDir, durable.DirPerm); err != nil {
		return fmt.Errorf("creating %s: %w", dataDir, err)
	}
	name := version + "-" + randomSuffix() + ".parquet"
	tmp := filepath.Join(dataDir, "."+name+".tmp-publish")
	final := filepath.Join(dataDir, name)
	q := fmt.Sprintf("COPY (SELECT * FROM %s) TO %s (FORMAT parquet, COMPRESSION zstd)", duck.Ident(mart), duck.Literal(tmp))
	if _, err := m.DB.ExecContext(ctx, q); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing mart %s to Parquet for Iceberg: %w", mart, err)
	}
	if err := durable.SyncFile(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := durable.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return err
	}
	committed := false
	defer func() {
		if !committed {
			os.Remove(final)
		}
	}()
	sc, err := icecat.FileSchema(final)
	if err != nil {
		return err
	}
	t, err := cat.LoadOrCreate(ctx, p.ns, mart, loc, sc, nil)
	if err != nil {
		return err
	}
	old, err := icecat.DataFiles(ctx, t)
	if err != nil {
		return err
	}
	tx := t.NewTransaction()
	if err := icecat.AlignSchema(tx, t.Schema(), sc); err != nil {
		return fmt.Errorf("%s: changing the schema of mart %s: %w", p.where(), mart, err)
	}
	props := map[string]string{icecat.VersionKey: version}
	if len(old) == 0 {
		err = tx.AddFiles(ctx, []string{final}, props, false)
	} else {
		err = tx.ReplaceDataFiles(ctx, old, []string{final}, props)
	}
	if err != nil {
		return fmt.Errorf("%s: staging version %s of mart %s: %w", p.where(), version, mart, err)
	}
	failpoint.Hit("publish.iceberg.before-commit") // file written, snapshot not committed
	t, err = tx.Commit(ctx)
	if err != nil {
		return fmt.Errorf("%s: committing version %s of mart %s: %w", p.where(), version, mart, err)
	}
	committed = true
	return p.expire(ctx, t)
}

// expire drops snapshots beyond keep from the table, with the files only
// they reference, and removes files of the data directory no snapshot
// references (left by a publish that crashed before its commit).
func (p *Publisher) expire(ctx context.Context, t *table.Table) error {
	tx := t.NewTransaction()
	// Files are removed by removeOrphans, not by iceberg-go's post-commit
	// cleanup: that one also tries files an earlier expiry already deleted
	// (listed as DELETED entries in later manifests) and fails on them.
	if err := tx.ExpireSnapshots(table.WithRetainLast(p.keep), table.WithOlderThan(0), table.WithPostCommit(false)); err != nil {
		return fmt.Errorf("%s: expiring snapshots of %v: %w", p.where(), t.Identifier(), err)
	}
	t, err := tx.Commit(ctx)
	if err != nil {
		return fmt.Errorf("%s: expiring snapshots of %v: %w", p.where(), t.Identifier(), err)
	}
	return removeOrphans(ctx, t)
}

func removeOrphans(ctx context.Context, t *table.Table) error {
	referenced := map[string]bool{}
	for _, s := range t.Metadata().Snapshots() {
		tasks, err := t.Scan(table.WithSnapshotID(s.SnapshotID)).PlanFiles(ctx)
		if err != nil {
			return fmt.Errorf("listing files of snapshot %d of %v: %w", s.SnapshotID, t.Identifier(), err)
		}
		for _, task := range tasks {
			referenced[strings.TrimPrefix(task.File.FilePath(), "file://")] = true
		}
	}
	dataDir := filepath.Join(strings.TrimPrefix(t.Location(), "file://"), "data")
	ents, err := os.ReadDir(dataDir)
	if err != nil {
		return fmt.Errorf("listing %s: %w", dataDir, err)
	}
	for _, e := range ents {
		f := filepath.Join(dataDir, e.Name())
		if !e.IsDir() && !referenced[f] {
			os.Remove(f)
		}
	}
	return nil
}

func (p *Publisher) tables(ctx context.Context, cat *icecat.Catalog) ([]string, error) {
	ok, err := cat.CheckNamespaceExists(ctx, catalog.ToIdentifier(p.ns))
	if err != nil || !ok {
		return nil, err
	}
	var out []string
	for id, err := range cat.ListTables(ctx, catalog.ToIdentifier(p.ns)) {
		if err != nil {
			return nil, fmt.Errorf("%s: listing tables: %w", p.where(), err)
		}
		out = append(out, id[len(id)-1])
	}
	sort.Strings(out)
	return out, nil
}

// loadAll loads every mart table of the namespace.
func (p *Publisher) loadAll(ctx context.Context, cat *icecat.Catalog) ([]*table.Table, error) {
	names, err := p.tables(ctx, cat)
	if err != nil {
		return nil, err
	}
	out := make([]*table.Table, 0, len(names))
	for _, n := range names {
		t, err := cat.LoadTable(ctx, catalog.ToIdentifier(p.ns, n))
		if err != nil {
			return nil, fmt.Errorf("%s: loading mart %s: %w", p.where(), n, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// CurrentVersion is the version every mart table's current snapshot
// carries; when they differ (a publish stopped between marts) it says so,
// which matches no version id, so the next publish brings them to one.
func (p *Publisher) CurrentVersion(ctx context.Context) (string, error) {
	cat, err := p.settings.Open(ctx)
	if err != nil {
		return "", err
	}
	defer cat.Close()
	ts, err := p.loadAll(ctx, cat)
	if err != nil {
		return "", err
	}
	seen := map[string]bool{}
	for _, t := range ts {
		seen[icecat.SnapshotVersion(t.CurrentSnapshot())] = true
	}
	switch len(seen) {
	case 0:
		return "", nil
	case 1:
		for v := range seen {
			return v, nil
		}
	}
	vs := slices.Sorted(func(yield func(string) bool) {
		for v := range seen {
			if !yield(v) {
				return
			}
		}
	})
	return "mixed(" + strings.Join(vs, ",") + ")", nil
}

// KeptVersions lists the versions every mart table can go back to (in the
// lineage of its current snapshot), oldest first.
func (p *Publisher) KeptVersions(ctx context.Context) ([]string, error) {
	cat, err := p.settings.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	ts, err := p.loadAll(ctx, cat)
	if err != nil {
		return nil, err
	}
	return keptVersions(ts), nil
}

func keptVersions(ts []*table.Table) []string {
	if len(ts) == 0 {
		return nil
	}
	count := map[string]int{}
	for _, t := range ts {
		seen := map[string]bool{}
		for _, s := range icecat.Lineage(t) {
			v := icecat.SnapshotVersion(&s)
			if v != "" && !seen[v] {
				seen[v] = true
				count[v]++
			}
		}
	}
	var out []string
	for v, n := range count {
		if n == len(ts) {
			out = append(out, v)
		}
	}
	sort.Strings(out) // <seq>-<time>: seq is zero-padded
	return out
}

// Rollback moves every mart back to the version before the current one.
func (p *Publisher) Rollback(ctx context.Context) (string, error) {
	kept, err := p.KeptVersions(ctx)
	if err != nil {
		return "", err
	}
	cur, err := p.CurrentVersion(ctx)
	if err != nil {
		return "", err
	}
	prev := ""
	for _, v := range kept {
		if v < cur {
			prev = v
		}
	}
	if prev == "" {
		return "", fmt.Errorf("%s: %w (kept: %v)", p.where(), load.ErrNoPreviousVersion, kept)
	}
	if err := p.RollbackTo(ctx, prev); err != nil {
		return "", err
	}
	return "version " + prev, nil
}

// RollbackTo makes every mart's current snapshot the one of version id, in
// one commit per mart. The snapshots after it leave the lineage, so they are
// no longer kept and expire at the next publish.
func (p *Publisher) RollbackTo(ctx context.Context, id string) error {
	cat, err := p.settings.Open(ctx)
	if err != nil {
		return err
	}
	defer cat.Close()
	ts, err := p.loadAll(ctx, cat)
	if err != nil {
		return err
	}
	if !slices.Contains(keptVersions(ts), id) {
		return fmt.Errorf("%s: version %s is not kept: %w", p.where(), id, load.ErrNoPreviousVersion)
	}
	for _, t := range ts {
		if icecat.SnapshotVersion(t.CurrentSnapshot()) == id {
			continue
		}
		var target int64 = -1
		for _, s := range icecat.Lineage(t) {
			if icecat.SnapshotVersion(&s) == id {
				target = s.SnapshotID
				break
			}
		}
		tx := t.NewTransaction()
		if err := tx.RollbackToSnapshot(target); err != nil {
			return fmt.Errorf("%s: rolling %v back to version %s: %w", p.where(), t.Identifier(), id, err)
		}
		if _, err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("%s: rolling %v back to version %s: %w", p.where(), t.Identifier(), id, err)
		}
	}
	return nil
}

func randomSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}
