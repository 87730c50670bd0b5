package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdwhq/cdw/internal/config"
	"github.com/cdwhq/cdw/internal/duck"
	"github.com/cdwhq/cdw/internal/pgtest"
	"github.com/cdwhq/cdw/load"
	"github.com/cdwhq/cdw/load/loadtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var units = []string{"North", "South", "West"}

var roleSeq atomic.Int64

// env is one test's PostgreSQL database, loader and reader roles.
type env struct {
	db                 *pgtest.DB
	loader, bi         string
	unitRole           map[string]string
	host, port, dbname string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := pgtest.NewDB(t)
	cc, err := pgx.ParseConfig(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	p := fmt.Sprintf("r%d_%d_", os.Getpid()%100000, roleSeq.Add(1))
	e := &env{db: db, loader: p + "loader", bi: p + "bi", unitRole: map[string]string{},
		host: cc.Host, port: fmt.Sprint(cc.Port), dbname: cc.Database}
	// The loader is an ordinary role that owns what it creates: like a
	// production deployment, and so that row-level security is real.
	db.Exec(t, fmt.Sprintf(`CREATE ROLE %s LOGIN; GRANT CREATE ON DATABASE %s TO %s; CREATE ROLE %s NOLOGIN`,
		e.loader, duck.Ident(db.Name), e.loader, e.bi))
	for _, u := range units[:2] { // West has no role: nobody but bi sees it
		e.unitRole[u] = p + strings.ToLower(u)
		db.Exec(t, "CREATE ROLE "+e.unitRole[u]+" NOLOGIN")
	}
	return e
}

func (e *env) yaml(extra string) string {
	return fmt.Sprintf(`host: %s
port: %s
database: %s
user: %s
bi_role: %s
row_level_security:
  column: business_unit
  roles:
    North: %s
    South: %s
%s`, e.host, e.port, e.dbname, e.loader, e.bi, e.unitRole["North"], e.unitRole["South"], extra)
}

func publisher(t *testing.T, yamlText string) *Publisher {
	t.Helper()
	p, err := openYAML(yamlText)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func openYAML(yamlText string) (*Publisher, error) {
	n, err := config.Parse("cdw.yaml", []byte(yamlText))
	if err != nil {
		return nil, err
	}
	k, err := load.LookupKind("postgres")
	if err != nil {
		return nil, err
	}
	p, err := k.Open(load.TargetConfig{Options: n})
	if err != nil {
		return nil, err
	}
	return p.(*Publisher), nil
}

var martNames = []string{"customer_segments", "segment_summary"}

// as connects as the superuser and switches to role, so the session has
// exactly that role's privileges and policies.
func (e *env) as(t *testing.T, role string) *pgx.Conn {
	t.Helper()
	c := e.db.Connect(t)
	if _, err := c.Exec(context.Background(), "SET ROLE "+duck.Ident(role)); err != nil {
		t.Fatal(err)
	}
	return c
}

func count(t *testing.T, c *pgx.Conn, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := c.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func duckCount(t *testing.T, db *sql.DB, q string) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func TestPublishGrantsAndRowLevelSecurity(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	wh := loadtest.Warehouse(t)
	loadtest.BuildMarts(t, wh, 1)
	p := publisher(t, e.yaml(""))
	if err := p.Publish(ctx, load.Marts{DB: wh, Names: martNames}); err != nil {
		t.Fatal(err)
	}

	bi := e.as(t, e.bi)
	total := duckCount(t, wh, "SELECT count(*) FROM customer_segments")
	if got := count(t, bi, "SELECT count(*) FROM cdw_marts.customer_segments"); got != total {
		t.Errorf("bi role sees %d rows, want all %d", got, total)
	}
	if got, want := count(t, bi, "SELECT count(*) FROM cdw_marts.segment_summary"), duckCount(t, wh, "SELECT count(*) FROM segment_summary"); got != want {
		t.Errorf("bi role sees %d summary rows, want %d", got, want)
	}
	for _, q := range []string{
		"INSERT INTO cdw_marts.customer_segments (customer_id) VALUES (-1)",
		"UPDATE cdw_marts.customer_segments SET segment = 'x'",
		"DELETE FROM cdw_marts.customer_segments",
		"TRUNCATE cdw_marts.customer_segments",
		"DROP TABLE cdw_marts.segment_summary",
		"CREATE TABLE cdw_marts.mine (x int)",
	} {
		_, err := bi.Exec(ctx, q)
		if code := pgCode(err); code != "42501" {
			t.Errorf("bi role: %s: want permission denied (42501), got %v", q, err)
		}
	}

	for _, unit := range []string{"North", "South"} {
		c := e.as(t, e.unitRole[unit])
		want := duckCount(t, wh, "SELECT count(*) FROM customer_segments WHERE business_unit = '"+unit+"'")
		if got := count(t, c, "SELECT count(*) FROM cdw_marts.customer_segments"); got != want || want == 0 {
			t.Errorf("%s role sees %d rows, want its %d", unit, got, want)
		}
		if got := count(t, c, "SELECT count(*) FROM cdw_marts.customer_segments WHERE business_unit <> $1", unit); got != 0 {
			t.Errorf("%s role sees %d rows of other units", unit, got)
		}
		// segment_summary has no business_unit: a unit role must not read it.
		_, err := c.Exec(ctx, "SELECT * FROM cdw_marts.segment_summary")
		if pgCode(err) != "42501" {
			t.Errorf("%s role reading segment_summary: want permission denied, got %v", unit, err)
		}
		if _, err := c.Exec(ctx, "DELETE FROM cdw_marts.customer_segments"); pgCode(err) != "42501" {
			t.Errorf("%s role deleting: want permission denied, got %v", unit, err)
		}
	}

	// Values and types survive the trip: compare aggregates computed by
	// DuckDB with the same aggregates computed by PostgreSQL.
	var duck, pg string
	const agg = `SELECT concat_ws('|', count(*), sum(revenue), min(revenue), count(segment), min(last_order), max(updated_at),
		max(seen_at), sum(score)::decimal(18,3), sum(small), count(*) FILTER (WHERE active), max(tags[1]), count(tags[2]))`
	if err := wh.QueryRow(agg + " FROM customer_segments").Scan(&duck); err != nil {
		t.Fatal(err)
	}
	owner := e.db.Connect(t)
	if _, err := owner.Exec(ctx, "SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	pgAgg := strings.Replace(agg, "sum(score)::decimal(18,3)", "round(sum(score)::numeric, 3)", 1)
	if err := owner.QueryRow(ctx, pgAgg+" FROM cdw_marts.customer_segments").Scan(&pg); err != nil {
		t.Fatal(err)
	}
	if duck != pg {
		t.Errorf("aggregates differ:\nDuckDB:     %s\nPostgreSQL: %s", duck, pg)
	}
	types := map[string]string{}
	rows, _ := owner.Query(ctx, `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = 'cdw_marts' AND table_name = 'customer_segments'`)
	for rows.Next() {
		var c, ty string
		rows.Scan(&c, &ty)
		types[c] = ty
	}
	for c, want := range map[string]string{"customer_id": "bigint", "revenue": "numeric", "last_order": "date",
		"updated_at": "timestamp without time zone", "seen_at": "timestamp with time zone", "tags": "ARRAY",
		"attrs": "jsonb", "score": "double precision", "small": "integer", "active": "boolean", "business_unit": "text"} {
		if types[c] != want {
			t.Errorf("column %s: PostgreSQL type %q, want %q", c, types[c], want)
		}
	}
	if n := count(t, owner, `SELECT count(*) FROM pg_tables WHERE schemaname = 'cdw_marts' AND tablename LIKE '%\_\_new'`); n != 0 {
		t.Errorf("%d __new tables left after publish", n)
	}
}

func TestPublishCreatesMissingRolesOnlyWhenAsked(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.db.Exec(t, "ALTER ROLE "+e.loader+" CREATEROLE")
	wh := loadtest.Warehouse(t)
	loadtest.BuildMarts(t, wh, 1)
	e.bi += "_missing"
	err := publisher(t, e.yaml("")).Publish(ctx, load.Marts{DB: wh, Names: martNames})
	if err == nil || !strings.Contains(err.Error(), e.bi+" does not exist") {
		t.Fatalf("want a missing-role error naming %s, got %v", e.bi, err)
	}
	if err := publisher(t, e.yaml("create_roles: true")).Publish(ctx, load.Marts{DB: wh, Names: martNames}); err != nil {
		t.Fatal(err)
	}
	bi := e.as(t, e.bi)
	if got, want := count(t, bi, "SELECT count(*) FROM cdw_marts.customer_segments"), duckCount(t, wh, "SELECT count(*) FROM customer_segments"); got != want {
		t.Errorf("created bi role sees %d rows, want %d", got, want)
	}
}

func TestPublishRefusesSuperuserReader(t *testing.T) {
	e := newEnv(t)
	e.db.Exec(t, "ALTER ROLE "+e.unitRole["North"]+" SUPERUSER")
	wh := loadtest.Warehouse(t)
	loadtest.BuildMarts(t, wh, 1)
	err := publisher(t, e.yaml("")).Publish(context.Background(), load.Marts{DB: wh, Names: martNames})
	if err == nil || !strings.Contains(err.Error(), "superuser") {
		t.Fatalf("want a superuser error, got %v", err)
	}
}

// fingerprint is what a reader sees of customer_segments: row count and the
// revenue total. A partial table would have a count no version has.
type fingerprint struct {
	n   int64
	sum string
}

func TestReadersNeverErrorOrSeePartialTablesDuringPublish(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	wh := loadtest.Warehouse(t)
	p := publisher(t, e.yaml("lock_timeout: 30s"))
	const q = "SELECT count(*), coalesce(sum(revenue), 0)::text FROM cdw_marts.customer_segments"

	// Expected fingerprints per version and reader role, computed by DuckDB.
	valid := map[string]map[fingerprint]bool{e.bi: {}, e.unitRole["North"]: {}}
	versions := []int{1, 2, 1, 3, 2, 3}
	for _, v := range []int{1, 2, 3} {
		loadtest.BuildMarts(t, wh, v)
		for role, where := range map[string]string{e.bi: "true", e.unitRole["North"]: "business_unit = 'North'"} {
			var f fingerprint
			if err := wh.QueryRow("SELECT count(*), CAST(coalesce(sum(revenue), 0) AS VARCHAR) FROM customer_segments WHERE "+where).Scan(&f.n, &f.sum); err != nil {
				t.Fatal(err)
			}
			valid[role][f] = true
		}
	}
	loadtest.BuildMarts(t, wh, versions[0])
	if err := p.Publish(ctx, load.Marts{DB: wh, Names: martNames}); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads atomic.Int64
	var mu sync.Mutex
	var problems []string
	seen := map[fingerprint]bool{}
	reader := func(role string, inTx bool) {
		defer wg.Done()
		c := e.as(t, role)
		for {
			select {
			case <-stop:
				return
			default:
			}
			var f fingerprint
			var err error
			if inTx {
				// A reader holding its lock a while: the swap must wait for it, not break it.
				err = pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
					if err := tx.QueryRow(ctx, q).Scan(&f.n, &f.sum); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, "SELECT pg_sleep(0.02)")
					return err
				})
			} else {
				err = c.QueryRow(ctx, q).Scan(&f.n, &f.sum)
			}
			reads.Add(1)
			mu.Lock()
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", role, err))
			} else if !valid[role][f] {
				problems = append(problems, fmt.Sprintf("%s: saw %+v, which is no published version", role, f))
			}
			seen[f] = true
			mu.Unlock()
		}
	}
	for _, r := range []struct {
		role string
		tx   bool
	}{{e.bi, false}, {e.bi, true}, {e.unitRole["North"], false}, {e.unitRole["North"], true}} {
		wg.Add(1)
		go reader(r.role, r.tx)
	}
	for _, v := range versions[1:] {
		loadtest.BuildMarts(t, wh, v)
		before := reads.Load()
		if err := p.Publish(ctx, load.Marts{DB: wh, Names: martNames}); err != nil {
			t.Fatal(err)
		}
		// Make sure readers really ran during this publish.
		for reads.Load() < before+20 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	close(stop)
	wg.Wait()
	for i, pr := range problems {
		if i == 10 {
			t.Errorf("… and %d more", len(problems)-10)
			break
		}
		t.Error(pr)
	}
	if len(seen) < 4 {
		t.Errorf("readers saw only %d distinct versions; the publishes did not switch", len(seen))
	}
	t.Logf("%d reads during %d publishes, %d distinct fingerprints, %d problems", reads.Load(), len(versions)-1, len(seen), len(problems))
}

func TestSwapTimeoutKeepsPublishedMarts(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	wh := loadtest.Warehouse(t)
	loadtest.BuildMarts(t, wh, 1)
	p := publisher(t, e.yaml("lock_timeout: 100ms\nswap_retries: 2"))
	if err := p.Publish(ctx, load.Marts{DB: wh, Names: martNames}); err != nil {
		t.Fatal(err)
	}
	want := duckCount(t, wh, "SELECT count(*) FROM customer_segments")

	// A long dashboard query: its transaction holds the table's lock.
	holder := e.as(t, e.bi)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT count(*) FROM cdw_marts.customer_segments"); err != nil {
		t.Fatal(err)
	}
	loadtest.BuildMarts(t, wh, 2)
	err = p.Publish(ctx, load.Marts{DB: wh, Names: martNames})
	if err == nil || !strings.Contains(err.Error(), "lock_timeout") {
		t.Fatalf("want a lock_timeout error, got %v", err)
	}
	tx.Rollback(ctx)

	owner := e.db.Connect(t)
	if got := count(t, owner, "SELECT count(*) FROM cdw_marts.customer_segments"); got != want {
		t.Errorf("after a failed swap the mart has %d rows, want the previous %d", got, want)
	}
	if n := count(t, owner, `SELECT count(*) FROM pg_tables WHERE schemaname = 'cdw_marts' AND tablename LIKE '%\_\_new'`); n != 0 {
		t.Errorf("%d __new tables left after a failed swap", n)
	}
	if err := p.Publish(ctx, load.Marts{DB: wh, Names: martNames}); err != nil {
		t.Fatalf("publishing once the reader is gone: %v", err)
	}
	if got, want := count(t, owner, "SELECT count(*) FROM cdw_marts.customer_segments"), duckCount(t, wh, "SELECT count(*) FROM customer_segments"); got != want {
		t.Errorf("after the retry the mart has %d rows, want %d", got, want)
	}
}

func TestRollbackRestoresPreviousMarts(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	wh := loadtest.Warehouse(t)
	p := publisher(t, e.yaml(""))
	if _, err := p.Rollback(ctx); !errors.Is(err, load.ErrNoPreviousVersion) {
		t.Fatalf("rollback before any publish: want ErrNoPreviousVersion, got %v", err)
	}
	loadtest.BuildMarts(t, wh, 1)
	v1 := duckCount(t, wh, "SELECT count(*) FROM customer_segments")
	v1North := duckCount(t, wh, "SELECT count(*) FROM customer_segments WHERE business_unit = 'North'")
	if err := p.Publish(ctx, load.Marts{DB: wh, Names: martNames}); err != nil {
		t.Fatal(err)
	}
	loadtest.BuildMarts(t, wh, 2)
	if err := p.Publish(ctx, load.Marts{DB: wh, Names: martNames}); err != nil {
		t.Fatal(err)
	}
	// The kept version is not readable by dashboards.
	bi := e.as(t, e.bi)
	if _, err := bi.Exec(ctx, "SELECT 1 FROM cdw_marts.customer_segments__prev"); pgCode(err) != "42501" {
		t.Errorf("bi reading __prev: want permission denied, got %v", err)
	}
	if _, err := p.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := count(t, bi, "SELECT count(*) FROM cdw_marts.customer_segments"); got != v1 {
		t.Errorf("after rollback bi sees %d rows, want version 1's %d", got, v1)
	}
	north := e.as(t, e.unitRole["North"])
	if got := count(t, north, "SELECT count(*) FROM cdw_marts.customer_segments"); got != v1North {
		t.Errorf("after rollback North sees %d rows, want %d", got, v1North)
	}
	if _, err := p.Rollback(ctx); !errors.Is(err, load.ErrNoPreviousVersion) {
		t.Errorf("second rollback: want ErrNoPreviousVersion, got %v", err)
	}
}

func TestOptionErrors(t *testing.T) {
	base := "database: d\nuser: u\n"
	for _, tc := range []struct{ yaml, want string }{
		{base + "colour: red\n", `unknown key "colour"`},
		{"user: u\n", `missing required key "database"`},
		{base + "schema: \"marts; DROP\"\n", "not a plain PostgreSQL identifier"},
		{base + "bi_role: 1bi\n", "not a plain PostgreSQL identifier"},
		{base + "password_env: CDW_TEST_NO_SUCH_VAR_X\n", "CDW_TEST_NO_SUCH_VAR_X"},
		{base + "row_level_security:\n  roles: {}\n", "at least one business unit"},
		{base + "bi_role: bi\nrow_level_security:\n  roles:\n    North: bi\n", "also bi_role"},
		{base + "row_level_security:\n  roles:\n    North: r\n    South: r\n", "a role sees one unit"},
		{base + "lock_timeout: soon\n", "expected a duration"},
		{base + "port: 70000\n", "expected a port number"},
		{"dsn: host=h dbname=d\nhost: h\n", "give either dsn or host/port/database/user/sslmode"},
		{"dsn: postgres://u:pw@h/d\n", "contains a password"},
	} {
		_, err := openYAML(tc.yaml)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: want error containing %q, got %v", tc.yaml, tc.want, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "cdw.yaml:") {
			t.Errorf("%q: error does not name the config file: %v", tc.yaml, err)
		}
	}
}

func TestPasswordNeverInErrors(t *testing.T) {
	t.Setenv("CDW_TEST_PG_PW", "s3cret-pw")
	// Nothing listens on port 1: the connection fails.
	p, err := openYAML("host: 127.0.0.1\nport: 1\ndatabase: d\nuser: u\npassword_env: CDW_TEST_PG_PW\n")
	if err != nil {
		t.Fatal(err)
	}
	err = p.Publish(context.Background(), load.Marts{Names: []string{"x"}})
	if err == nil || strings.Contains(err.Error(), "s3cret-pw") || !strings.Contains(err.Error(), "127.0.0.1:1 database d as user u") {
		t.Fatalf("want a connection error naming the server and not the password, got %v", err)
	}
}

// TestVersionIDsSwitchWithTheMarts: the version id the pipeline gives a
// publish is recorded in the swap's transaction, kept with __prev, and
// restored by a rollback to it (issue #16 item 8).
func TestVersionIDsSwitchWithTheMarts(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	wh := loadtest.Warehouse(t)
	p := publisher(t, e.yaml(""))
	const v1, v2 = "000001-20270101T000000Z", "000002-20270102T000000Z"
	if cur, err := p.CurrentVersion(ctx); err != nil || cur != "" {
		t.Fatalf("before any publish: %q, %v", cur, err)
	}
	loadtest.BuildMarts(t, wh, 1)
	n1 := duckCount(t, wh, "SELECT count(*) FROM customer_segments")
	if err := p.Publish(ctx, load.Marts{DB: wh, Names: martNames, Version: v1}); err != nil {
		t.Fatal(err)
	}
	loadtest.BuildMarts(t, wh, 2)
	if err := p.Publish(ctx, load.Marts{DB: wh, Names: martNames, Version: v2}); err != nil {
		t.Fatal(err)
	}
	kept, err := p.KeptVersions(ctx)
	if err != nil || strings.Join(kept, " ") != v1+" "+v2 {
		t.Fatalf("kept versions %v, %v; want [%s %s]", kept, err, v1, v2)
	}
	if err := p.RollbackTo(ctx, "000007-20270107T000000Z"); !errors.Is(err, load.ErrNoPreviousVersion) {
		t.Fatalf("rollback to a version never published: %v", err)
	}
	if err := p.RollbackTo(ctx, v1); err != nil {
		t.Fatal(err)
	}
	if cur, err := p.CurrentVersion(ctx); err != nil || cur != v1 {
		t.Fatalf("after the rollback the current version is %q (%v), want %s", cur, err, v1)
	}
	if got := count(t, e.as(t, e.bi), "SELECT count(*) FROM cdw_marts.customer_segments"); got != n1 {
		t.Errorf("after the rollback bi sees %d rows, want version 1's %d", got, n1)
	}
	if err := p.RollbackTo(ctx, v1); err != nil {
		t.Errorf("rollback to the current version: %v, want nothing to do", err)
	}
}

// TestDescriptionsAsComments (#22 item 8): a mart's description and its
// columns' become COMMENT ON TABLE/COLUMN, which Metabase and Superset read
// from pg_description; they survive the swap, and the next publish's
// descriptions replace them.
func TestDescriptionsAsComments(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	wh := loadtest.Warehouse(t)
	loadtest.BuildMarts(t, wh, 1)
	p := publisher(t, e.yaml(""))
	docs := map[string]load.MartDoc{"customer_segments": {Description: "One row per customer: RFM segment. It's the mart's doc.",
		Columns: map[string]string{"Revenue": "net revenue, returns subtracted", "segment": "the RFM segment"}}}
	if err := p.Publish(ctx, load.Marts{DB: wh, Names: martNames, Docs: docs}); err != nil {
		t.Fatal(err)
	}
	bi := e.as(t, e.bi) // as a BI tool connects
	comments := func() map[string]string {
		t.Helper()
		rows, err := bi.Query(ctx, `SELECT coalesce(a.attname, ''), d.description FROM pg_description d
			JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass
			JOIN pg_namespace n ON n.oid = c.relnamespace
			LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0
			WHERE n.nspname = 'cdw_marts' AND c.relname = 'customer_segments'`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]string{}
		for rows.Next() {
			var col, d string
			if err := rows.Scan(&col, &d); err != nil {
				t.Fatal(err)
			}
			out[col] = d
		}
		return out
	}
	got := comments()
	if got[""] != "One row per customer: RFM segment. It's the mart's doc." || got["revenue"] != "net revenue, returns subtracted" ||
		got["segment"] != "the RFM segment" || len(got) != 3 {
		t.Errorf("comments after the first publish: %q", got)
	}
	var summary *string
	if err := bi.QueryRow(ctx, "SELECT obj_description('cdw_marts.segment_summary'::regclass, 'pg_class')").Scan(&summary); err != nil || summary != nil {
		t.Errorf("segment_summary has no doc, yet its comment is %v (%v)", summary, err)
	}
	docs["customer_segments"] = load.MartDoc{Description: "v2"}
	if err := p.Publish(ctx, load.Marts{DB: wh, Names: martNames, Docs: docs}); err != nil {
		t.Fatal(err)
	}
	if got := comments(); got[""] != "v2" || len(got) != 1 {
		t.Errorf("comments after the second publish: %q", got)
	}
}

// TestDSN: dsn: instead of host/port/database/user/sslmode, as for the
// postgres source (both read internal/pgconf). The README's example opens,
// and a publish through a dsn reaches the server.
func TestDSN(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```yaml\npublish:\n  - kind: postgres\n    dsn:")
	if !ok {
		t.Fatal("README.md has no publish example with dsn:")
	}
	block, _, _ := strings.Cut("    dsn:"+rest, "```")
	var lines []string
	for _, l := range strings.Split(block, "\n") {
		lines = append(lines, strings.TrimPrefix(l, "    "))
	}
	t.Setenv("CDW_PG_PASSWORD", "from-the-environment")
	p, err := openYAML(strings.Join(lines, "\n"))
	if err != nil {
		t.Fatalf("README's dsn example: %v", err)
	}
	if want := "db.internal:5432 database analytics as user cdw_loader"; p.s.conn.Where != want || p.s.conn.Config.Password != "from-the-environment" {
		t.Fatalf("README's dsn example: where %q (want %q), password from password_env: %v", p.s.conn.Where, want, p.s.conn.Config.Password != "")
	}

	e := newEnv(t)
	wh := loadtest.Warehouse(t)
	loadtest.BuildMarts(t, wh, 1)
	dsn := fmt.Sprintf("dsn: host=%s port=%s dbname=%s user=%s sslmode=disable\n", e.host, e.port, e.dbname, e.loader)
	pub := publisher(t, dsn+"bi_role: "+e.bi+"\n")
	if err := pub.Publish(context.Background(), load.Marts{DB: wh, Names: martNames}); err != nil {
		t.Fatal(err)
	}
	if got, want := count(t, e.as(t, e.bi), "SELECT count(*) FROM cdw_marts.customer_segments"), duckCount(t, wh, "SELECT count(*) FROM customer_segments"); got != want {
		t.Errorf("published through dsn: %d rows, want %d", got, want)
	}
}

// TestContract runs the publisher contract suite (load/loadtest); Open
// connects to nothing, so no server is needed.
func TestContract(t *testing.T) {
	loadtest.Contract(t, loadtest.Target{Kind: "postgres", Options: "host: 127.0.0.1\ndatabase: bi\nuser: cdw\nsslmode: disable\n"})
}
