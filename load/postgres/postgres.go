// Package postgres publishes marts into a PostgreSQL schema for BI tools.
// Every mart is loaded with binary COPY into <mart>__new, prepared completely
// (grants, row-level security policies, statistics), and then all marts are
// swapped in by renames in ONE transaction: a dashboard sees the old set or
// the new set, never a half-loaded or missing table. A read-only BI role gets
// SELECT; optional row-level security gives each business unit's role only
// its own rows.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdwhq/cdw/internal/duck"
	"github.com/cdwhq/cdw/internal/failpoint"
	"github.com/cdwhq/cdw/load"
)

func init() {
	load.Register(load.Kind{Name: "postgres", Doc: "PostgreSQL schema: COPY into new tables, swapped in one transaction; BI role grants and per-unit row-level security", Open: open})
}

const (
	suffixNew  = "__new"
	suffixPrev = "__prev"
)

// Publisher loads marts into PostgreSQL.
type Publisher struct{ s *settings }

var (
	_ load.Publisher  = (*Publisher)(nil)
	_ load.Rollbacker = (*Publisher)(nil)
	_ load.Versioned  = (*Publisher)(nil)
)

// versionTable records, in the published schema, the version id of the live
// marts ('current') and of the kept __prev ones ('prev'); it changes in the
// same transaction as the tables.
const versionTable = "cdw_publish_version"

func open(cfg load.TargetConfig) (load.Publisher, error) {
	s, err := parseOptions(cfg.Options)
	if err != nil {
		return nil, err
	}
	return &Publisher{s: s}, nil
}

// Schema is the schema the marts are published in.
func (p *Publisher) Schema() string { return p.s.schema }

func (p *Publisher) connect(ctx context.Context) (*pgx.Conn, error) { return p.s.conn.Connect(ctx) }

// Publish loads every mart into <mart>__new and swaps them all in.
func (p *Publisher) Publish(ctx context.Context, m load.Marts) error {
	for _, mart := range m.Names {
		if len(mart)+len(suffixPrev) > 63 {
			return fmt.Errorf("mart %s: name too long for PostgreSQL once suffixed with %s (63 bytes at most)", mart, suffixPrev)
		}
	}
	conn, err := p.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := p.prepare(ctx, conn); err != nil {
		return err
	}
	log := slog.Default()
	for _, mart := range m.Names {
		start := time.Now()
		n, err := p.load(ctx, conn, m, mart)
		if err != nil {
			p.dropNew(conn, m.Names)
			return err
		}
		log.Debug("loaded mart into PostgreSQL", "mart", mart, "rows", n, "seconds", time.Since(start).Seconds())
		failpoint.Hit("publish.postgres.mid-load") // some <mart>__new tables loaded
	}
	failpoint.Hit("publish.postgres.before-swap")
	if err := p.swap(ctx, conn, m.Names, m.Version); err != nil {
		p.dropNew(conn, m.Names)
		return err
	}
	return nil
}

// prepare checks or creates the roles and creates the schema.
func (p *Publisher) prepare(ctx context.Context, conn *pgx.Conn) error {
	for _, role := range p.roles() {
		var super, bypass bool
		err := conn.QueryRow(ctx, `SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1`, role).Scan(&super, &bypass)
		if errors.Is(err, pgx.ErrNoRows) {
			if !p.s.createRoles {
				return fmt.Errorf("PostgreSQL %s: role %s does not exist (create it, or set create_roles: true)", p.s.conn.Where, role)
			}
			if _, err := conn.Exec(ctx, "CREATE ROLE "+duck.Ident(role)+" NOLOGIN"); err != nil {
				return fmt.Errorf("creating role %s: %w", role, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("looking up role %s: %w", role, err)
		}
		// A superuser ignores grants and policies: it would not be read-only.
		if super {
			return fmt.Errorf("PostgreSQL %s: role %s is a superuser, so it could write and would bypass row-level security; use an ordinary role", p.s.conn.Where, role)
		}
		if bypass && role != p.s.biRole {
			return fmt.Errorf("PostgreSQL %s: role %s has BYPASSRLS, so it would see every business unit", p.s.conn.Where, role)
		}
	}
	var me string
	if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&me); err != nil {
		return fmt.Errorf("reading current user: %w", err)
	}
	for _, role := range p.roles() {
		// The tables' owner bypasses row-level security: readers must not own them.
		if role == me {
			return fmt.Errorf("PostgreSQL %s: role %s is the user cdw publishes as, and the owner of the marts bypasses row-level security; use a separate reader role", p.s.conn.Where, role)
		}
	}
	stmts := []string{"CREATE SCHEMA IF NOT EXISTS " + duck.Ident(p.s.schema)}
	for _, role := range p.roles() {
		stmts = append(stmts, "GRANT USAGE ON SCHEMA "+duck.Ident(p.s.schema)+" TO "+duck.Ident(role))
	}
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("preparing schema %s: %w", p.s.schema, err)
		}
	}
	return nil
}

// roles are every configured reader role: the BI role, then the unit roles.
func (p *Publisher) roles() []string {
	var rs []string
	if p.s.biRole != "" {
		rs = append(rs, p.s.biRole)
	}
	for _, u := range p.s.units {
		rs = append(rs, u.Role)
	}
	return rs
}

// load copies one mart into a fresh <mart>__new table with its grants and
// policies, all in one transaction, then analyzes it.
func (p *Publisher) load(ctx context.Context, conn *pgx.Conn, m load.Marts, mart string) (int64, error) {
	cols, err := martColumns(ctx, m.DB, mart)
	if err != nil {
		return 0, err
	}
	table := mart + suffixNew
	defs := make([]string, len(cols))
	exprs := make([]string, len(cols))
	names := make([]string, len(cols))
	hasUnit := false
	for i, c := range cols {
		defs[i] = duck.Ident(c.name) + " " + c.pg
		exprs[i] = c.expr
		names[i] = c.name
		if p.s.rlsColumn != "" && c.name == p.s.rlsColumn {
			hasUnit = true
		}
	}
	if p.s.rlsColumn != "" && !hasUnit {
		slog.Warn("mart has no business unit column: unit roles get no access to it", "mart", mart, "column", p.s.rlsColumn)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("loading mart %s into PostgreSQL: beginning transaction: %w", mart, err)
	}
	defer tx.Rollback(context.Background())
	ddl := []string{
		"DROP TABLE IF EXISTS " + duck.Ident(p.s.schema, table),
		"CREATE TABLE " + duck.Ident(p.s.schema, table) + " (" + strings.Join(defs, ", ") + ")",
	}
	// Descriptions as comments, where Metabase, Superset and psql's \d+
	// show them; they follow the table through the swap's rename.
	doc := m.Docs[mart]
	if doc.Description != "" {
		ddl = append(ddl, "COMMENT ON TABLE "+duck.Ident(p.s.schema, table)+" IS "+duck.Literal(doc.Description))
	}
	for _, c := range cols {
		if d := doc.Column(c.name); d != "" {
			ddl = append(ddl, "COMMENT ON COLUMN "+duck.Ident(p.s.schema, table)+"."+duck.Ident(c.name)+" IS "+duck.Literal(d))
		}
	}
	for _, q := range ddl {
		if _, err := tx.Exec(ctx, q); err != nil {
			return 0, fmt.Errorf("creating table %s.%s: %w", p.s.schema, table, err)
		}
	}
	rows, err := m.DB.QueryContext(ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM main."+duck.Ident(mart))
	if err != nil {
		return 0, fmt.Errorf("reading mart %s: %w", mart, err)
	}
	defer rows.Close()
	n, err := tx.CopyFrom(ctx, pgx.Identifier{p.s.schema, table}, names, newRowSource(mart, rows, cols))
	if err != nil {
		return n, fmt.Errorf("copying mart %s into %s.%s: %w", mart, p.s.schema, table, err)
	}
	if err := p.grant(ctx, tx, table, hasUnit); err != nil {
		return n, err
	}
	if err := tx.Commit(ctx); err != nil {
		return n, fmt.Errorf("loading mart %s into PostgreSQL: committing: %w", mart, err)
	}
	if _, err := conn.Exec(ctx, "ANALYZE "+duck.Ident(p.s.schema, table)); err != nil {
		return n, fmt.Errorf("analyzing %s.%s: %w", p.s.schema, table, err)
	}
	return n, nil
}

// grant gives the reader roles SELECT on a table and, with row-level
// security configured, a policy per role. Tables are owned by the publishing
// user, which bypasses the policies; readers never own them. Idempotent.
func (p *Publisher) grant(ctx context.Context, tx pgx.Tx, table string, hasUnit bool) error {
	t := duck.Ident(p.s.schema, table)
	var stmts []string
	if p.s.biRole != "" {
		stmts = append(stmts, "GRANT SELECT ON "+t+" TO "+duck.Ident(p.s.biRole))
	}
	if p.s.rlsColumn != "" && hasUnit {
		stmts = append(stmts, "ALTER TABLE "+t+" ENABLE ROW LEVEL SECURITY")
		if p.s.biRole != "" {
			stmts = append(stmts,
				"DROP POLICY IF EXISTS cdw_all_units ON "+t,
				"CREATE POLICY cdw_all_units ON "+t+" FOR SELECT TO "+duck.Ident(p.s.biRole)+" USING (true)")
		}
		for _, u := range p.s.units {
			pol := duck.Ident(policyName(u.Role))
			stmts = append(stmts,
				"GRANT SELECT ON "+t+" TO "+duck.Ident(u.Role),
				"DROP POLICY IF EXISTS "+pol+" ON "+t,
				"CREATE POLICY "+pol+" ON "+t+" FOR SELECT TO "+duck.Ident(u.Role)+
					" USING ("+duck.Ident(p.s.rlsColumn)+" = "+duck.Literal(u.Unit)+")")
		}
	}
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("granting access to %s.%s: %w", p.s.schema, table, err)
		}
	}
	return nil
}

func policyName(role string) string {
	name := "cdw_unit_" + role
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

// swap renames every <mart>__new into place in one transaction. It waits at
// most lock_timeout for readers' locks and retries; readers queued behind
// the swap wait rather than fail, and then see the new tables.
func (p *Publisher) swap(ctx context.Context, conn *pgx.Conn, marts []string, version string) error {
	var err error
	for attempt := 1; attempt <= p.s.retries; attempt++ {
		err = p.inTx(ctx, conn, func(tx pgx.Tx) error {
			for _, mart := range marts {
				if err := p.swapOne(ctx, tx, mart); err != nil {
					return err
				}
			}
			return p.recordVersion(ctx, tx, version)
		})
		if !isLockTimeout(err) || attempt == p.s.retries {
			break
		}
		slog.Warn("PostgreSQL swap waited too long for readers' locks; retrying", "attempt", attempt, "of", p.s.retries, "lock_timeout", p.s.lockTimeout)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		}
	}
	if isLockTimeout(err) {
		return fmt.Errorf("swapping marts into %s on %s: readers held locks longer than lock_timeout %s in %d attempts; the previous marts stay published: %w",
			p.s.schema, p.s.conn.Where, p.s.lockTimeout, p.s.retries, err)
	}
	if err != nil {
		return fmt.Errorf("swapping marts into %s on %s: %w", p.s.schema, p.s.conn.Where, err)
	}
	return nil
}

func (p *Publisher) swapOne(ctx context.Context, tx pgx.Tx, mart string) error {
	live := duck.Ident(p.s.schema, mart)
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", live).Scan(&exists); err != nil {
		return fmt.Errorf("swapping mart %s: looking up %s.%s: %w", mart, p.s.schema, mart, err)
	}
	var stmts []string
	if exists && p.s.keepPrev {
		stmts = append(stmts,
			"DROP TABLE IF EXISTS "+duck.Ident(p.s.schema, mart+suffixPrev),
			"ALTER TABLE "+live+" RENAME TO "+duck.Ident(mart+suffixPrev))
		if rs := p.roles(); len(rs) > 0 {
			// The kept version is for rollback, not for dashboards.
			quoted := make([]string, len(rs))
			for i, r := range rs {
				quoted[i] = duck.Ident(r)
			}
			stmts = append(stmts, "REVOKE ALL ON "+duck.Ident(p.s.schema, mart+suffixPrev)+" FROM "+strings.Join(quoted, ", "))
		}
	}
	if exists && !p.s.keepPrev {
		stmts = append(stmts, "DROP TABLE "+live)
	}
	stmts = append(stmts, "ALTER TABLE "+duck.Ident(p.s.schema, mart+suffixNew)+" RENAME TO "+duck.Ident(mart))
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("swapping mart %s: %w", mart, err)
		}
	}
	return nil
}

func (p *Publisher) inTx(ctx context.Context, conn *pgx.Conn, fn func(pgx.Tx) error) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", p.s.lockTimeout.Milliseconds())); err != nil {
		return fmt.Errorf("setting lock_timeout: %w", err)
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}

func isLockTimeout(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "55P03" // lock_not_available
}

// dropNew removes half-prepared __new tables after a failed publish. The
// live marts are untouched; errors are only logged, the publish already failed.
func (p *Publisher) dropNew(conn *pgx.Conn, marts []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, mart := range marts {
		if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+duck.Ident(p.s.schema, mart+suffixNew)); err != nil {
			slog.Warn("removing a half-loaded table", "table", p.s.schema+"."+mart+suffixNew, "err", err)
			return
		}
	}
}

// Rollback swaps every <mart>__prev back into place in one transaction and
// drops the version it replaces.
func (p *Publisher) Rollback(ctx context.Context) (string, error) {
	if !p.s.keepPrev {
		return "", fmt.Errorf("PostgreSQL %s: %w (keep_previous is false)", p.s.conn.Where, load.ErrNoPreviousVersion)
	}
	conn, err := p.connect(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = $1 AND right(tablename, $2) = $3 ORDER BY 1`,
		p.s.schema, len(suffixPrev), suffixPrev)
	if err != nil {
		return "", fmt.Errorf("listing previous marts in %s: %w", p.s.schema, err)
	}
	prevs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("listing previous marts in %s: %w", p.s.schema, err)
	}
	if len(prevs) == 0 {
		return "", fmt.Errorf("PostgreSQL %s schema %s: %w", p.s.conn.Where, p.s.schema, load.ErrNoPreviousVersion)
	}
	var marts []string
	err = p.inTx(ctx, conn, func(tx pgx.Tx) error {
		for _, prev := range prevs {
			mart := strings.TrimSuffix(prev, suffixPrev)
			marts = append(marts, mart)
			var hasUnit bool
			if p.s.rlsColumn != "" {
				if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.columns
					WHERE table_schema = $1 AND table_name = $2 AND column_name = $3)`, p.s.schema, prev, p.s.rlsColumn).Scan(&hasUnit); err != nil {
					return fmt.Errorf("reading columns of %s.%s: %w", p.s.schema, prev, err)
				}
			}
			for _, q := range []string{
				"DROP TABLE IF EXISTS " + duck.Ident(p.s.schema, mart),
				"ALTER TABLE " + duck.Ident(p.s.schema, prev) + " RENAME TO " + duck.Ident(mart),
			} {
				if _, err := tx.Exec(ctx, q); err != nil {
					return fmt.Errorf("restoring mart %s: %w", mart, err)
				}
			}
			if err := p.grant(ctx, tx, mart, hasUnit); err != nil {
				return err
			}
		}
		return p.versionBack(ctx, tx)
	})
	if err != nil {
		return "", fmt.Errorf("rolling back marts in %s on %s: %w", p.s.schema, p.s.conn.Where, err)
	}
	return fmt.Sprintf("previous %s restored in %s", strings.Join(marts, ", "), p.s.schema), nil
}

// recordVersion makes version the current one and the current one 'prev'
// (when __prev tables are kept), inside the swap's transaction.
func (p *Publisher) recordVersion(ctx context.Context, tx pgx.Tx, version string) error {
	if version == "" {
		return nil
	}
	t := duck.Ident(p.s.schema, versionTable)
	stmts := []string{"CREATE TABLE IF NOT EXISTS " + t + " (slot text PRIMARY KEY, id text NOT NULL)", "DELETE FROM " + t + " WHERE slot = 'prev'"}
	if p.s.keepPrev {
		stmts = append(stmts, "UPDATE "+t+" SET slot = 'prev' WHERE slot = 'current'")
	}
	stmts = append(stmts, "DELETE FROM "+t+" WHERE slot = 'current'")
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("recording version %s in %s: %w", version, p.s.schema, err)
		}
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+t+" (slot, id) VALUES ('current', $1)", version); err != nil {
		return fmt.Errorf("recording version %s in %s: %w", version, p.s.schema, err)
	}
	return nil
}

// versionBack makes the 'prev' version current, inside a rollback's transaction.
func (p *Publisher) versionBack(ctx context.Context, tx pgx.Tx) error {
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", duck.Ident(p.s.schema, versionTable)).Scan(&exists); err != nil || !exists {
		return err
	}
	t := duck.Ident(p.s.schema, versionTable)
	for _, q := range []string{"DELETE FROM " + t + " WHERE slot = 'current'", "UPDATE " + t + " SET slot = 'current' WHERE slot = 'prev'"} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("recording the rolled-back version in %s: %w", p.s.schema, err)
		}
	}
	return nil
}

// versions reads the current and previous version ids ("" when unknown).
func (p *Publisher) versions(ctx context.Context) (cur, prev string, err error) {
	conn, err := p.connect(ctx)
	if err != nil {
		return "", "", err
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", duck.Ident(p.s.schema, versionTable)).Scan(&exists); err != nil {
		return "", "", fmt.Errorf("reading the published version in %s: %w", p.s.schema, err)
	}
	if !exists {
		return "", "", nil
	}
	rows, err := conn.Query(ctx, "SELECT slot, id FROM "+duck.Ident(p.s.schema, versionTable))
	if err != nil {
		return "", "", fmt.Errorf("reading the published version in %s: %w", p.s.schema, err)
	}
	defer rows.Close()
	for rows.Next() {
		var slot, id string
		if err := rows.Scan(&slot, &id); err != nil {
			return "", "", fmt.Errorf("reading the published version in %s: %w", p.s.schema, err)
		}
		switch slot {
		case "current":
			cur = id
		case "prev":
			prev = id
		}
	}
	return cur, prev, rows.Err()
}

// CurrentVersion is the version id of the live marts.
func (p *Publisher) CurrentVersion(ctx context.Context) (string, error) {
	cur, _, err := p.versions(ctx)
	return cur, err
}

// KeptVersions are the __prev marts' version and the live ones'.
func (p *Publisher) KeptVersions(ctx context.Context) ([]string, error) {
	cur, prev, err := p.versions(ctx)
	var out []string
	for _, id := range []string{prev, cur} {
		if id != "" {
			out = append(out, id)
		}
	}
	return out, err
}

// RollbackTo makes version id live: nothing to do when it is, the __prev
// marts when they are id.
func (p *Publisher) RollbackTo(ctx context.Context, id string) error {
	cur, prev, err := p.versions(ctx)
	if err != nil || cur == id {
		return err
	}
	if prev != id {
		return fmt.Errorf("PostgreSQL %s schema %s: version %s is not kept (current %q, previous %q): %w", p.s.conn.Where, p.s.schema, id, cur, prev, load.ErrNoPreviousVersion)
	}
	_, err = p.Rollback(ctx)
	return err
}
