package iceberg

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/iceberg-go/catalog"
	"github.com/jackc/pgx/v5"

	"github.com/cdwhq/cdw/internal/config"
	"github.com/cdwhq/cdw/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func settingsFor(t *testing.T, kind, warehouse string) *Settings {
	t.Helper()
	y := "catalog: filesystem\n"
	if kind == CatalogPostgres {
		db := pgtest.NewDB(t)
		cc, err := pgx.ParseConfig(db.DSN)
		if err != nil {
			t.Fatal(err)
		}
		y = fmt.Sprintf("catalog: postgres\npostgres: {host: %s, port: %d, database: %s, user: %s, sslmode: disable}\n", cc.Host, cc.Port, cc.Database, cc.User)
		if cc.Password != "" {
			t.Setenv("CDW_TEST_ICEBERG_PW", cc.Password)
			y = fmt.Sprintf("catalog: postgres\npostgres: {host: %s, port: %d, database: %s, user: %s, sslmode: disable, password_env: CDW_TEST_ICEBERG_PW}\n", cc.Host, cc.Port, cc.Database, cc.User)
		}
	}
	n, err := config.Parse("cdw.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse(n, warehouse, warehouse)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseErrors(t *testing.T) {
	for y, want := range map[string]string{
		"catalog: hive\n":                          `catalog must be filesystem or postgres, got "hive"`,
		"catalog: postgres\n":                      "catalog: postgres needs a postgres: section",
		"postgres: {database: d, user: u}\n":       "postgres: is for catalog: postgres",
		"catalog: postgres\npostgres: {user: u}\n": `missing required key "database"`,
	} {
		n, err := config.Parse("cdw.yaml", []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		_, err = Parse(n, "/tmp/wh", "/tmp")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to say %q", y, err, want)
		}
	}
}

// TestSyncRaw registers raw Parquet files (written by DuckDB, as real files)
// as one table, supersedes one in the commit that adds its replacement,
// is idempotent (the reconcile on start commits nothing when in sync), and
// reads back through the scanner equal to the files.
func TestSyncRaw(t *testing.T) {
	for _, kind := range []string{CatalogFilesystem, CatalogPostgres} {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			wh := t.TempDir()
			s := settingsFor(t, kind, wh)
			db, err := sql.Open("duckdb", "")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			file := func(name string, from, n int, extra bool) string {
				f := filepath.Join(wh, "raw", "shop", "orders", "dt=2024-01-01", name+".parquet")
				col := ""
				if extra {
					col = ", 'x' || i AS channel"
				}
				if _, err := db.Exec(fmt.Sprintf(`COPY (SELECT i AS order_id, 'c' || (i %% 7) AS customer_id,
					TIMESTAMP '2024-01-01' + to_minutes(i) AS updated_at %s FROM range(%d, %d) r(i))
					TO '%s' (FORMAT parquet)`, col, from, from+n, f)); err != nil {
					t.Fatal(err)
				}
				return f
			}
			if err := mkdirs(filepath.Join(wh, "raw", "shop", "orders", "dt=2024-01-01")); err != nil {
				t.Fatal(err)
			}
			a, b := file("b1", 0, 100, false), file("b2", 100, 50, true)
			cat, err := s.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer cat.Close()
			if err := cat.SyncRaw(ctx, "shop", "orders", "", []string{a}, map[string]string{BatchKey: "b1", CursorKey: `{"v":1}`}); err != nil {
				t.Fatal(err)
			}
			if err := cat.SyncRaw(ctx, "shop", "orders", "", []string{a, b}, map[string]string{BatchKey: "b2", CursorKey: `{"v":2}`}); err != nil {
				t.Fatal(err)
			}
			c := file("b3", 0, 80, false) // a new version of b1's unit
			if err := cat.SyncRaw(ctx, "shop", "orders", "", []string{b, c}, map[string]string{BatchKey: "b3"}); err != nil {
				t.Fatal(err)
			}
			if err := cat.SyncRaw(ctx, "shop", "orders", "", []string{b, c}, map[string]string{BatchKey: "reconcile"}); err != nil {
				t.Fatal(err)
			}
			tbl, err := cat.LoadTable(ctx, catalog.ToIdentifier(RawNamespace, "shop_orders"))
			if err != nil {
				t.Fatal(err)
			}
			if err := ValidateV2(strings.TrimPrefix(tbl.MetadataLocation(), "file://")); err != nil {
				t.Fatalf("metadata is not valid Iceberg v2: %v", err)
			}
			lin := Lineage(tbl)
			if len(lin) != 3 {
				t.Fatalf("%d snapshots, want 3 (the in-sync reconcile commits nothing)", len(lin))
			}
			if got := lin[0].Summary.Properties[BatchKey]; got != "b3" {
				t.Fatalf("current snapshot's batch %q", got)
			}
			if got := lin[1].Summary.Properties[CursorKey]; got != `{"v":2}` {
				t.Fatalf("second snapshot's cursor %q", got)
			}
			files, err := DataFiles(ctx, tbl)
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != 2 {
				t.Fatalf("current files %v, want b2 and b3 (b1 superseded in b3's commit)", files)
			}
			out := filepath.Join(t.TempDir(), "scan.parquet")
			n, err := WriteParquet(ctx, tbl, 0, out)
			if err != nil {
				t.Fatal(err)
			}
			if n != 130 {
				t.Fatalf("scan has %d rows, want 130", n)
			}
			var diff int
			q := fmt.Sprintf(`SELECT count(*) FROM (
				(SELECT order_id, customer_id, updated_at, channel FROM read_parquet(['%s','%s'], union_by_name=true)
				 EXCEPT ALL SELECT order_id, customer_id, updated_at, channel FROM read_parquet('%s'))
				UNION ALL
				(SELECT order_id, customer_id, updated_at, channel FROM read_parquet('%s')
				 EXCEPT ALL SELECT order_id, customer_id, updated_at, channel FROM read_parquet(['%s','%s'], union_by_name=true)))`, b, c, out, out, b, c)
			if err := db.QueryRow(q).Scan(&diff); err != nil {
				t.Fatal(err)
			}
			if diff != 0 {
				t.Fatalf("%d rows differ between the Iceberg scan and the raw files", diff)
			}
			// The previous snapshot still reads b1 + b2 (time travel).
			n, err = WriteParquet(ctx, tbl, lin[1].SnapshotID, filepath.Join(t.TempDir(), "prev.parquet"))
			if err != nil || n != 150 {
				t.Fatalf("previous snapshot: %d rows, %v; want 150", n, err)
			}
		})
	}
}

func mkdirs(d string) error { return os.MkdirAll(d, 0o755) }

// TestValidateV2Fails checks the validator catches what it claims to: a
// snapshot whose parent is newer, a missing required field, a current
// schema id naming no schema.
func TestValidateV2Fails(t *testing.T) {
	dir := t.TempDir()
	ml := filepath.Join(dir, "snap.avro")
	if err := os.WriteFile(ml, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	good := `{"format-version":2,"table-uuid":"u","location":"file:///x","last-sequence-number":2,"last-updated-ms":5,
	 "last-column-id":1,"schemas":[{"schema-id":0,"type":"struct","fields":[{"id":1,"name":"a","type":"long","required":false}]}],
	 "current-schema-id":0,"partition-specs":[{"spec-id":0,"fields":[]}],"default-spec-id":0,"last-partition-id":999,
	 "sort-orders":[{"order-id":0,"fields":[]}],"default-sort-order-id":0,"current-snapshot-id":2,
	 "refs":{"main":{"snapshot-id":2,"type":"branch"}},
	 "snapshots":[{"snapshot-id":1,"sequence-number":1,"timestamp-ms":1,"manifest-list":"` + ml + `","summary":{"operation":"append"}},
	              {"snapshot-id":2,"parent-snapshot-id":1,"sequence-number":2,"timestamp-ms":2,"manifest-list":"` + ml + `","summary":{"operation":"overwrite"}}]}`
	write := func(s string) string {
		p := filepath.Join(dir, "v.metadata.json")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := ValidateV2(write(good)); err != nil {
		t.Fatalf("valid metadata rejected: %v", err)
	}
	for name, s := range map[string]string{
		"parent newer":   strings.Replace(good, `"sequence-number":1,`, `"sequence-number":3,`, 1),
		"missing uuid":   strings.Replace(good, `"table-uuid":"u",`, ``, 1),
		"schema id":      strings.Replace(good, `"current-schema-id":0`, `"current-schema-id":4`, 1),
		"format version": strings.Replace(good, `"format-version":2`, `"format-version":1`, 1),
	} {
		if err := ValidateV2(write(s)); err == nil {
			t.Errorf("%s: invalid metadata accepted", name)
		}
	}
}
