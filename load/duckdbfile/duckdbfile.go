// Package duckdbfile publishes all marts into one DuckDB file (marts.duckdb)
// for BI tools. The file is built aside and renamed into place, so a tool
// holding the old file open (read-only) keeps reading the old version
// undisturbed and the next open sees the new one. The version it replaces is
// kept as marts.duckdb.prev for `cdw publish --rollback`.
package duckdbfile

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	_ "github.com/duckdb/duckdb-go/v2" // reads the version id of a published file

	"github.com/cdwhq/cdw/internal/duck"
	"github.com/cdwhq/cdw/internal/durable"
	"github.com/cdwhq/cdw/internal/failpoint"
	"github.com/cdwhq/cdw/load"
)

func init() {
	load.Register(load.Kind{Name: "duckdb", Doc: "one DuckDB file with every mart, built aside and renamed into place; previous kept for rollback", Open: open})
}

type options struct {
	Path string `yaml:"path"` // default <warehouse>/marts.duckdb
}

// Publisher writes marts into a DuckDB file.
type Publisher struct{ path string }

var (
	_ load.Publisher  = (*Publisher)(nil)
	_ load.Rollbacker = (*Publisher)(nil)
	_ load.Versioned  = (*Publisher)(nil)
)

func open(cfg load.TargetConfig) (load.Publisher, error) {
	p, err := Path(cfg)
	if err != nil {
		return nil, err
	}
	return &Publisher{path: p}, nil
}

// DefaultPath is where the marts file lives without a path: option.
func DefaultPath(warehouse string) string { return filepath.Join(warehouse, "marts.duckdb") }

// Path is the file a duckdb target publishes: its path: option (relative to
// the config file's directory), else DefaultPath. It is the one place that
// decides where marts.duckdb lives; cdw query, the demo and the report ask it.
func Path(cfg load.TargetConfig) (string, error) {
	var o options
	if err := cfg.Options.Decode(&o); err != nil {
		return "", err
	}
	if o.Path == "" {
		return DefaultPath(cfg.Dir), nil
	}
	if filepath.IsAbs(o.Path) {
		return o.Path, nil
	}
	return filepath.Join(cfg.BaseDir, o.Path), nil
}

// Path is the published file.
func (p *Publisher) Path() string { return p.path }

// PrevPath is the previously published file, kept for rollback.
func (p *Publisher) PrevPath() string { return p.path + ".prev" }

// Publish builds a new file beside the target, keeps the current file as
// .prev (a hard link, so readers of the current file are not disturbed) and
// renames the new file over the current one.
func (p *Publisher) Publish(ctx context.Context, m load.Marts) error {
	dir := filepath.Dir(p.path)
	if err := os.MkdirAll(dir, durable.DirPerm); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	tmp := filepath.Join(dir, "."+filepath.Base(p.path)+".tmp-publish")
	if err := p.build(ctx, m, tmp); err != nil {
		os.Remove(tmp)
		os.Remove(tmp + ".wal")
		return err
	}
	if err := p.keepPrevious(); err != nil {
		os.Remove(tmp)
		return err
	}
	failpoint.Hit("publish.duckdb.before-switch") // new file complete, .prev linked, not renamed in
	return durable.Rename(tmp, p.path)
}

func (p *Publisher) build(ctx context.Context, m load.Marts, tmp string) error {
	os.Remove(tmp)
	os.Remove(tmp + ".wal")
	conn, err := m.DB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connecting to the warehouse: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "ATTACH "+duck.Literal(tmp)+" AS cdw_publish"); err != nil {
		return fmt.Errorf("creating %s: %w", tmp, err)
	}
	attached := true
	defer func() {
		if attached {
			conn.ExecContext(context.Background(), "DETACH cdw_publish")
		}
	}()
	for _, name := range m.Names {
		q := fmt.Sprintf("CREATE TABLE cdw_publish.main.%s AS SELECT * FROM main.%s", duck.Ident(name), duck.Ident(name))
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("copying mart %s into %s: %w", name, p.path, err)
		}
		if err := comment(ctx, conn, name, m.Docs[name]); err != nil {
			return fmt.Errorf("describing mart %s in %s: %w", name, p.path, err)
		}
		failpoint.Hit("publish.duckdb.mid-write") // new file half built, aside
	}
	if m.Version != "" {
		// In the file itself, so the id switches with the file in one
		// rename; a view in its own schema, so it is no mart.
		for _, q := range []string{"CREATE SCHEMA cdw_publish." + versionSchema,
			"CREATE VIEW cdw_publish." + versionSchema + ".version AS SELECT " + duck.Literal(m.Version) + " AS id"} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("labelling %s with version %s: %w", p.path, m.Version, err)
			}
		}
	}
	// Checkpoint so the file is complete on its own, with no WAL beside it.
	if _, err := conn.ExecContext(ctx, "CHECKPOINT cdw_publish"); err != nil {
		return fmt.Errorf("checkpointing %s: %w", tmp, err)
	}
	if _, err := conn.ExecContext(ctx, "DETACH cdw_publish"); err != nil {
		return fmt.Errorf("closing %s: %w", tmp, err)
	}
	attached = false
	if err := os.Chmod(tmp, durable.FilePerm); err != nil {
		return fmt.Errorf("setting permissions on %s: %w", tmp, err)
	}
	return durable.SyncFile(tmp)
}

// keepPrevious makes .prev a second name of the current file. Linking (not
// renaming) keeps the current path valid until the new file replaces it.
func (p *Publisher) keepPrevious() error {
	if _, err := os.Stat(p.path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	link := filepath.Join(filepath.Dir(p.path), "."+filepath.Base(p.path)+".prev.tmp-link")
	os.Remove(link)
	if err := os.Link(p.path, link); err != nil {
		return fmt.Errorf("keeping %s as the previous version: %w", p.path, err)
	}
	if err := durable.Rename(link, p.PrevPath()); err != nil {
		os.Remove(link)
		return err
	}
	// rename(2) does nothing when both names already link one file (a publish
	// killed after this step left .prev = current), leaving the link behind.
	os.Remove(link)
	return nil
}

// Rollback renames marts.duckdb.prev over marts.duckdb: one atomic step, after
// which there is no .prev until the next publish.
func (p *Publisher) Rollback(ctx context.Context) (string, error) {
	if _, err := os.Stat(p.PrevPath()); errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s: %w (no %s)", p.path, load.ErrNoPreviousVersion, p.PrevPath())
	}
	if err := durable.Rename(p.PrevPath(), p.path); err != nil {
		return "", err
	}
	return "the previous file (was " + filepath.Base(p.PrevPath()) + ")", nil
}

// versionSchema holds the version id view in a published file.
const versionSchema = "cdw"

// versionOf reads the version id a published file carries ("" for none).
func versionOf(ctx context.Context, path string) (string, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return "", fmt.Errorf("reading the version of %s: %w", path, err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return "", fmt.Errorf("reading the version of %s: %w", path, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "ATTACH "+duck.Literal(path)+" AS v (READ_ONLY)"); err != nil {
		return "", fmt.Errorf("reading the version of %s: %w", path, err)
	}
	defer conn.ExecContext(context.Background(), "DETACH v")
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM duckdb_views() WHERE database_name = 'v' AND schema_name = ? AND view_name = 'version'`, versionSchema).Scan(&n); err != nil || n == 0 {
		return "", err
	}
	var id string
	if err := conn.QueryRowContext(ctx, "SELECT id FROM v."+versionSchema+".version").Scan(&id); err != nil {
		return "", fmt.Errorf("reading the version of %s: %w", path, err)
	}
	return id, nil
}

// CurrentVersion is the version id marts.duckdb carries.
func (p *Publisher) CurrentVersion(ctx context.Context) (string, error) {
	return versionOf(ctx, p.path)
}

// KeptVersions are the previous file's version and the current one's.
func (p *Publisher) KeptVersions(ctx context.Context) ([]string, error) {
	var out []string
	for _, f := range []string{p.PrevPath(), p.path} {
		id, err := versionOf(ctx, f)
		if err != nil {
			return nil, err
		}
		if id != "" {
			out = append(out, id)
		}
	}
	return out, nil
}

// RollbackTo makes version id current: nothing to do when it is, the
// previous file when that is id.
func (p *Publisher) RollbackTo(ctx context.Context, id string) error {
	cur, err := versionOf(ctx, p.path)
	if err != nil || cur == id {
		return err
	}
	prev, err := versionOf(ctx, p.PrevPath())
	if err != nil {
		return err
	}
	if prev != id {
		return fmt.Errorf("%s: version %s is not kept (current %q, previous %q): %w", p.path, id, cur, prev, load.ErrNoPreviousVersion)
	}
	_, err = p.Rollback(ctx)
	return err
}

// comment publishes a mart's descriptions as COMMENT ON TABLE/COLUMN, which
// duckdb_tables() and duckdb_columns() (and DBeaver, Superset) show.
func comment(ctx context.Context, conn *sql.Conn, mart string, doc load.MartDoc) error {
	table := "cdw_publish.main." + duck.Ident(mart)
	if doc.Description != "" {
		if _, err := conn.ExecContext(ctx, "COMMENT ON TABLE "+table+" IS "+duck.Literal(doc.Description)); err != nil {
			return err
		}
	}
	if len(doc.Columns) == 0 {
		return nil
	}
	rows, err := conn.QueryContext(ctx, `SELECT column_name FROM duckdb_columns() WHERE database_name = 'cdw_publish'
		AND schema_name = 'main' AND table_name = ? ORDER BY column_index`, mart)
	if err != nil {
		return err
	}
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return err
		}
		cols = append(cols, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range cols {
		if d := doc.Column(c); d != "" {
			if _, err := conn.ExecContext(ctx, "COMMENT ON COLUMN "+table+"."+duck.Ident(c)+" IS "+duck.Literal(d)); err != nil {
				return err
			}
		}
	}
	return nil
}

// OpenRead opens a published marts file read-only and lists its tables'
// columns (table → column set), so readers (the report, alerts) can adapt to
// the marts it has. A missing file is an error that says how to make one.
func OpenRead(ctx context.Context, path string) (*sql.DB, map[string]map[string]bool, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("reading published marts: %s does not exist (run 'cdw run' with a duckdb publish target first)", path)
	}
	db, err := sql.Open("duckdb", path+"?access_mode=read_only")
	if err != nil {
		return nil, nil, fmt.Errorf("opening published marts %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	cols, err := listColumns(ctx, db)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("listing mart columns in %s: %w", path, err)
	}
	return db, cols, nil
}

func listColumns(ctx context.Context, db *sql.DB) (map[string]map[string]bool, error) {
	rows, err := db.QueryContext(ctx, `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols := map[string]map[string]bool{}
	for rows.Next() {
		var t, c string
		if err := rows.Scan(&t, &c); err != nil {
			return nil, err
		}
		if cols[t] == nil {
			cols[t] = map[string]bool{}
		}
		cols[t][c] = true
	}
	return cols, rows.Err()
}
