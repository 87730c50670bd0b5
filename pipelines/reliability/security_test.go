package reliability

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cdwhq/cdw/internal/crashtest"
)

// writeEvil writes the fixture's config with each old text replaced by new.
func (f *fixture) writeEvil(t *testing.T, dir string, o cfgOptions, repl ...string) string {
	t.Helper()
	p := f.writeConfig(t, dir, o)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for i := 0; i+1 < len(repl); i += 2 {
		if !strings.Contains(s, repl[i]) {
			t.Fatalf("config has no %q to replace", repl[i])
		}
		s = strings.Replace(s, repl[i], repl[i+1], 1)
	}
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSQLInjectionThroughConfig tries SQL injection through every identifier
// cdw takes from config or file names — source names, PostgreSQL source
// table, columns, cursor and key, publish schema and roles, row-level
// security units, model names, vars, and the warehouse path — and checks
// each is refused with a clear error or safely quoted: the canary tables
// in PostgreSQL and in the warehouse survive.
func TestSQLInjectionThroughConfig(t *testing.T) {
	f := newFixture(t)
	f.db.Exec(t, "CREATE TABLE canary (x int); INSERT INTO canary VALUES (1)")
	const drop = `; DROP TABLE canary; --`
	q := strconv.Quote
	canaryAlive := func(t *testing.T) {
		t.Helper()
		var n int
		if err := f.db.Connect(t).QueryRow(context.Background(), "SELECT count(*) FROM canary").Scan(&n); err != nil || n != 1 {
			t.Fatalf("the PostgreSQL canary table is gone or changed: %v (%d rows)", err, n)
		}
	}
	extractShop := []string{"extract", "--source", "shop"}
	for _, tc := range []struct {
		name  string
		args  []string
		o     cfgOptions
		repl  []string
		error string // a word the one-line error must contain; "" = the run succeeds
	}{
		{"source name", extractShop, cfgOptions{}, []string{"name: shop", "name: " + q(`shop"`+drop)}, "source names"},
		{"postgres source table", extractShop, cfgOptions{}, []string{"table: public.orders", "table: " + q(`orders"`+drop)}, "source shop"},
		{"postgres source column", extractShop, cfgOptions{}, []string{"order_id: order_no,", "order_id: " + q(`order_no", (SELECT 1) AS "x`) + ","}, "source shop"},
		{"postgres source cursor", extractShop, cfgOptions{}, []string{"cursor: updated_at", "cursor: " + q(`updated_at"`+drop)}, "source shop"},
		{"postgres source key", extractShop, cfgOptions{}, []string{"key: [order_no, line]", "key: [" + q(`order_no"`+drop) + ", line]"}, "source shop"},
		{"publish schema", nil, cfgOptions{pgSchema: "inj"}, []string{"schema: inj", "schema: " + q(`inj`+drop)}, "schema"},
		{"publish bi_role", nil, cfgOptions{pgSchema: "inj"}, []string{"bi_role: cdw_rel_bi", "bi_role: " + q(`cdw_rel_bi`+drop)}, "bi_role"},
		{"row-level security role", nil, cfgOptions{pgSchema: "inj"}, []string{"North: cdw_rel_north", "North: " + q(`cdw_rel_north`+drop)}, "cdw_rel_north"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := f.writeEvil(t, dir, tc.o, tc.repl...)
			res := f.run(t, cfg, crashtest.Run{Args: tc.args})
			if res.Code == 0 || res.Killed {
				t.Fatalf("the run accepted %v: %s", tc.repl[1], res)
			}
			if line := cliError(res.Stderr); !strings.Contains(line, tc.error) {
				t.Errorf("the error does not say %q: %q", tc.error, line)
			}
			canaryAlive(t)
		})
	}

	t.Run("row-level security unit value", func(t *testing.T) {
		// A unit name is a value in the policy, quoted as a literal: a unit
		// named like an injection matches no rows instead of all of them.
		dir := t.TempDir()
		cfg := f.writeEvil(t, dir, cfgOptions{pgSchema: "inj_unit"}, "North: cdw_rel_north", q(`North' OR true`+drop)+": cdw_rel_north")
		f.mustRun(t, cfg)
		canaryAlive(t)
		conn := f.db.Connect(t)
		ctx := context.Background()
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		var n int
		if _, err := tx.Exec(ctx, "SET LOCAL ROLE cdw_rel_north"); err != nil {
			t.Fatal(err)
		}
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM inj_unit.customer_360").Scan(&n); err != nil || n != 0 {
			t.Fatalf("the unit role of an injected unit name sees %d rows (%v), want 0", n, err)
		}
	})

	t.Run("model names and vars", func(t *testing.T) {
		dir := t.TempDir()
		models := filepath.Join(dir, "models")
		write := func(name, sql string) {
			if err := os.MkdirAll(models, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(models, name), []byte(sql), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		write("canary_model.sql", "-- materialized: table\nSELECT 1 AS x\n")
		write("evil_var.sql", "-- materialized: table\nSELECT {{ var('evil') }} AS v\n")
		evil := `1; DROP TABLE canary_model; --`
		cfg := f.writeEvil(t, dir, cfgOptions{}, "warehouse: wh\n", "warehouse: wh\nmodels: [models]\nvars: {evil: "+q(evil)+"}\n")
		f.mustRun(t, cfg, "run")
		db := duck(t)
		if _, err := db.Exec("ATTACH '" + filepath.Join(dir, "wh", "warehouse.duckdb") + "' AS w (READ_ONLY)"); err != nil {
			t.Fatal(err)
		}
		var v string
		var canary int
		if err := db.QueryRow("SELECT v, (SELECT count(*) FROM w.canary_model) FROM w.evil_var").Scan(&v, &canary); err != nil || v != evil || canary != 1 {
			t.Fatalf("the var was not kept as a string literal (%q), or the canary model is gone (%d rows): %v", v, canary, err)
		}
		db.Exec("DETACH w")
		write(`x"; DROP TABLE canary_model; --.sql`, "SELECT 1\n")
		res := f.run(t, cfg, crashtest.Run{Args: []string{"run"}})
		if res.Code == 0 || !strings.Contains(cliError(res.Stderr), "model names must be") {
			t.Fatalf("a model file named like an injection was not refused: %s", res)
		}
	})

	t.Run("quotes in the warehouse path", func(t *testing.T) {
		// Raw views and publishers put file paths into SQL string literals.
		dir := filepath.Join(t.TempDir(), `o'brien "x"; DROP`)
		cfg := f.writeConfig(t, dir, cfgOptions{})
		f.mustRun(t, cfg)
		if m := crashtest.ParquetMarts(t, filepath.Join(dir, "wh", "marts")); len(m) == 0 {
			t.Fatal("nothing published")
		}
	})
}

// TestSecretsNeverLeak runs cdw with an API token and a PostgreSQL password
// through successes and failures — including an API that echoes the token
// back in its error bodies — at debug log level, then searches every output
// for the secrets: stdout and stderr, state, run history, raw and quarantine
// Parquet, published marts and the warehouse database.
func TestSecretsNeverLeak(t *testing.T) {
	f := newFixture(t)
	const pw, pwEnv = "pw-SECRET-19d4be77", "CDW_REL_PG_PASSWORD"
	dir := t.TempDir()
	wh := filepath.Join(dir, "wh")
	cfg := f.writeEvil(t, dir, cfgOptions{pgSchema: "sec"},
		"    sslmode: disable\n    safety_lag", "    sslmode: disable\n    password_env: "+pwEnv+"\n    safety_lag",
		"    schema: sec", "    password_env: "+pwEnv+"\n    schema: sec")
	env := []string{pwEnv + "=" + pw}
	var outputs []string
	run := func(args ...string) crashtest.Result {
		res := f.run(t, cfg, crashtest.Run{Args: append(args, "--log-level", "debug"), Env: env})
		outputs = append(outputs, res.Stdout, res.Stderr)
		return res
	}
	// An API that echoes credentials in its errors.
	f.api.setFault(func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n == 2 {
			http.Error(w, "bad gateway for "+r.Header.Get("Authorization")+" at "+r.URL.String(), http.StatusBadGateway)
			return true
		}
		return false
	})
	if res := run("run"); res.Code != 0 {
		t.Fatalf("run: %s", res)
	}
	f.api.setFault(func(w http.ResponseWriter, r *http.Request, n int) bool {
		http.Error(w, "denied: token "+r.Header.Get("Authorization"), http.StatusForbidden)
		return true
	})
	f.writeEvil(t, dir, cfgOptions{pgSchema: "sec"}, "    sslmode: disable\n    safety_lag", "    sslmode: disable\n    password_env: "+pwEnv+"\n    safety_lag",
		"    schema: sec", "    password_env: "+pwEnv+"\n    schema: sec", "updated_since", "updated_since_v2")
	if res := run("run", "--full-refresh"); res.Code == 0 {
		t.Fatal("a run against an API refusing the token succeeded")
	}
	f.api.setFault(nil)
	// A PostgreSQL target that refuses the connection.
	f.writeEvil(t, dir, cfgOptions{pgSchema: "sec", pgPort: 1}, "    sslmode: disable\n    safety_lag", "    sslmode: disable\n    password_env: "+pwEnv+"\n    safety_lag")
	run("run")
	run("query", "SELECT * FROM cdw_model_runs")

	secrets := []string{apiToken, pw}
	for i, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("output %d of cdw contains a secret:\n%s", i, out)
			}
		}
	}
	db := duck(t)
	var files, parquet int
	filepath.WalkDir(wh, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		files++
		data, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("reading %s: %v", p, err)
			return nil
		}
		for _, s := range secrets {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s contains a secret", p)
			}
		}
		switch {
		case strings.HasSuffix(p, ".parquet"):
			parquet++
			var n int
			if err := db.QueryRow(fmt.Sprintf("SELECT count(*) FROM read_parquet('%s') t WHERE CAST(t AS VARCHAR) LIKE '%%SECRET%%'", p)).Scan(&n); err != nil || n > 0 {
				t.Errorf("%s: %d rows contain a secret (%v)", p, n, err)
			}
		case strings.HasSuffix(p, ".duckdb"):
			for _, s := range crashtest.DuckDBTablesContaining(t, p, "SECRET") {
				t.Errorf("%s: table %s contains a secret", p, s)
			}
		}
		return nil
	})
	if files == 0 || parquet == 0 {
		t.Fatalf("searched %d files, %d Parquet: the runs wrote nothing?", files, parquet)
	}
	t.Logf("searched %d outputs, %d files (%d Parquet) for %d secrets", len(outputs), files, parquet, len(secrets))
}

// TestPermissionsAndRoles checks the warehouse is private to its owner and
// the PostgreSQL roles of BI tools: the BI role reads but cannot write, and
// each unit role sees only its unit's rows.
func TestPermissionsAndRoles(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	wh := filepath.Join(dir, "wh")
	cfg := f.writeConfig(t, dir, cfgOptions{pgSchema: "perm"})
	f.mustRun(t, cfg)
	var checked int
	filepath.WalkDir(wh, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		want := os.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		checked++
		if got := crashtest.Perm(p); got != want {
			rel, _ := filepath.Rel(dir, p)
			t.Errorf("%s has mode %v, want %v", rel, got, want)
		}
		return nil
	})
	t.Logf("checked the mode of %d files and directories", checked)

	ctx := context.Background()
	conn := f.db.Connect(t)
	asRole := func(role, sql string) (int, error) {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+pgx.Identifier{role}.Sanitize()); err != nil {
			t.Fatal(err)
		}
		var n int
		err = tx.QueryRow(ctx, sql).Scan(&n)
		return n, err
	}
	if n, err := asRole("cdw_rel_bi", "SELECT count(*) FROM perm.customer_360"); err != nil || n == 0 {
		t.Fatalf("the BI role cannot read: %d rows, %v", n, err)
	}
	for _, w := range []string{
		"WITH d AS (DELETE FROM perm.customer_360 RETURNING 1) SELECT count(*) FROM d",
		"WITH u AS (UPDATE perm.customer_360 SET business_unit = 'x' RETURNING 1) SELECT count(*) FROM u",
		"SELECT count(*) FROM (SELECT 1 FROM perm.customer_360 FOR UPDATE) s",
		"WITH c AS (INSERT INTO perm.customer_360 SELECT * FROM perm.customer_360 LIMIT 1 RETURNING 1) SELECT count(*) FROM c",
	} {
		if _, err := asRole("cdw_rel_bi", w); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("the BI role could write (%s): %v", w, err)
		}
	}
	func() {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		tx.Exec(ctx, "SET LOCAL ROLE cdw_rel_bi")
		if _, err := tx.Exec(ctx, "CREATE TABLE perm.evil (x int)"); err == nil {
			t.Error("the BI role could create a table in the marts schema")
		}
	}()
	for unit, role := range map[string]string{"North": "cdw_rel_north", "South": "cdw_rel_south"} {
		var want int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM perm.customer_360 WHERE business_unit = $1", unit).Scan(&want); err != nil {
			t.Fatal(err)
		}
		n, err := asRole(role, "SELECT count(*) FROM perm.customer_360")
		other, err2 := asRole(role, fmt.Sprintf("SELECT count(*) FROM perm.customer_360 WHERE business_unit <> '%s'", unit))
		if err != nil || err2 != nil || n != want || other != 0 || want == 0 {
			t.Errorf("role %s sees %d rows (%d of other units), want the %d rows of %s (%v %v)", role, n, other, want, unit, err, err2)
		}
	}
}
