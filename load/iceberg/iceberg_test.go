package iceberg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/iceberg-go/catalog"
	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5"

	icecat "github.com/cdwhq/cdw/iceberg"
	"github.com/cdwhq/cdw/internal/config"
	"github.com/cdwhq/cdw/internal/duck"
	"github.com/cdwhq/cdw/internal/pgtest"
	"github.com/cdwhq/cdw/load"
	"github.com/cdwhq/cdw/load/loadtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type catalogCase struct {
	name string
	yaml func(t *testing.T) string // the iceberg: section
}

func catalogs() []catalogCase {
	return []catalogCase{
		{"filesystem", func(t *testing.T) string { return "catalog: filesystem\n" }},
		{"postgres", func(t *testing.T) string {
			db := pgtest.NewDB(t)
			cc, err := pgx.ParseConfig(db.DSN)
			if err != nil {
				t.Fatal(err)
			}
			extra := ""
			if cc.Password != "" {
				t.Setenv("CDW_TEST_ICEBERG_PW", cc.Password)
				extra = "  password_env: CDW_TEST_ICEBERG_PW\n"
			}
			return fmt.Sprintf("catalog: postgres\npostgres:\n  host: %s\n  port: %d\n  database: %s\n  user: %s\n  sslmode: disable\n%s",
				cc.Host, cc.Port, cc.Database, cc.User, extra)
		}},
	}
}

// open builds the publisher the way cdw does: kind iceberg with the
// iceberg: section of cdw.yaml.
func openTarget(t *testing.T, dir, icebergYAML, targetYAML string) *Publisher {
	t.Helper()
	in, err := config.Parse("cdw.yaml", []byte(icebergYAML))
	if err != nil {
		t.Fatal(err)
	}
	tn, err := config.Parse("cdw.yaml", []byte(targetYAML))
	if err != nil {
		t.Fatal(err)
	}
	k, err := load.LookupKind("iceberg")
	if err != nil {
		t.Fatal(err)
	}
	p, err := k.Open(load.TargetConfig{Options: tn, Dir: dir, BaseDir: dir, Iceberg: in})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Publisher)
}

// sameRows reads mart back through iceberg-go's scanner (snapshot id, 0 for
// the current one) and checks it equals the warehouse table row for row
// (as multisets, both ways).
func sameRows(t *testing.T, db *sql.DB, p *Publisher, mart string, id int64) {
	t.Helper()
	ctx := context.Background()
	cat, err := p.settings.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	tbl, err := cat.LoadTable(ctx, catalog.ToIdentifier(p.ns, mart))
	if err != nil {
		t.Fatal(err)
	}
	if err := icecat.ValidateV2(strings.TrimPrefix(tbl.MetadataLocation(), "file://")); err != nil {
		t.Fatalf("%s: metadata is not valid Iceberg v2: %v", mart, err)
	}
	f := filepath.Join(t.TempDir(), mart+"-scan.parquet")
	n, err := icecat.WriteParquet(ctx, tbl, id, f)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	if err := db.QueryRow("SELECT count(*) FROM " + duck.Ident(mart)).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("%s: Iceberg scan has %d rows, mart has %d", mart, n, want)
	}
	for _, q := range []string{
		fmt.Sprintf("SELECT count(*) FROM (SELECT * FROM %s EXCEPT ALL SELECT * FROM read_parquet(%s))", duck.Ident(mart), duck.Literal(f)),
		fmt.Sprintf("SELECT count(*) FROM (SELECT * FROM read_parquet(%s) EXCEPT ALL SELECT * FROM %s)", duck.Literal(f), duck.Ident(mart)),
	} {
		var diff int
		if err := db.QueryRow(q).Scan(&diff); err != nil {
			t.Fatalf("%s: comparing: %v", mart, err)
		}
		if diff != 0 {
			t.Fatalf("%s: %d rows differ between the Iceberg scan and the mart (%s)", mart, diff, q)
		}
	}
}

func TestPublishVersionsRollbackExpire(t *testing.T) {
	for _, cc := range catalogs() {
		t.Run(cc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			db := loadtest.Warehouse(t)
			p := openTarget(t, dir, cc.yaml(t), "keep: 2\n")
			names := []string{"customer_segments", "segment_summary"}
			ids := []string{"000001-20240101T000000Z", "000002-20240102T000000Z", "000003-20240103T000000Z"}
			for v, id := range ids {
				loadtest.BuildMarts(t, db, v+1)
				if err := p.Publish(ctx, load.Marts{DB: db, Names: names, Dir: dir, Version: id}); err != nil {
					t.Fatalf("publish %s: %v", id, err)
				}
				for _, m := range names {
					sameRows(t, db, p, m, 0)
				}
				cur, err := p.CurrentVersion(ctx)
				if err != nil || cur != id {
					t.Fatalf("current version = %q, %v; want %s", cur, err, id)
				}
			}
			kept, err := p.KeptVersions(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(kept) != fmt.Sprint(ids[1:]) {
				t.Fatalf("kept %v, want %v (keep: 2)", kept, ids[1:])
			}
			// The expired version's files are gone; each mart's data
			// directory holds exactly the kept versions' files.
			for _, m := range names {
				ents, err := os.ReadDir(filepath.Join(p.settings.Dir, "marts", m, "data"))
				if err != nil {
					t.Fatal(err)
				}
				if len(ents) != 2 {
					t.Fatalf("%s: %d data files, want 2 (one per kept version)", m, len(ents))
				}
			}
			if err := p.RollbackTo(ctx, ids[0]); !errors.Is(err, load.ErrNoPreviousVersion) {
				t.Fatalf("rollback to an expired version: %v, want ErrNoPreviousVersion", err)
			}
			got, err := p.Rollback(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got != "version "+ids[1] {
				t.Fatalf("rollback went to %q", got)
			}
			loadtest.BuildMarts(t, db, 2) // what version 2 held
			for _, m := range names {
				sameRows(t, db, p, m, 0)
			}
			if _, err := p.Rollback(ctx); !errors.Is(err, load.ErrNoPreviousVersion) {
				t.Fatalf("second rollback: %v, want ErrNoPreviousVersion (only version 2 is kept)", err)
			}
			// A new publish after a rollback descends from version 2; the
			// rolled-back version 3 left the lineage and expires.
			loadtest.BuildMarts(t, db, 4)
			id4 := "000004-20240104T000000Z"
			if err := p.Publish(ctx, load.Marts{DB: db, Names: names[:1], Dir: dir, Version: id4}); err != nil {
				t.Fatal(err)
			}
			kept, _ = p.KeptVersions(ctx)
			if fmt.Sprint(kept) != fmt.Sprint([]string{ids[1], id4}) {
				t.Fatalf("kept after republish %v", kept)
			}
			sameRows(t, db, p, "customer_segments", 0)
			// Several more publishes: each expiry removes the files only
			// expired snapshots held, and nothing else.
			for v := 5; v <= 7; v++ {
				loadtest.BuildMarts(t, db, v)
				if err := p.Publish(ctx, load.Marts{DB: db, Names: names[:1], Dir: dir, Version: fmt.Sprintf("%06d-20240105T000000Z", v)}); err != nil {
					t.Fatalf("publish %d: %v", v, err)
				}
				sameRows(t, db, p, "customer_segments", 0)
			}
			if ents, _ := os.ReadDir(filepath.Join(p.settings.Dir, "marts", "customer_segments", "data")); len(ents) != 2 {
				t.Fatalf("%d data files after 7 publishes with keep: 2", len(ents))
			}
			cat, _ := p.settings.Open(ctx)
			defer cat.Close()
			if ok, _ := cat.CheckTableExists(ctx, catalog.ToIdentifier("marts", "segment_summary")); ok {
				t.Fatal("segment_summary is not in version 4 but its table is still in the catalog")
			}
		})
	}
}
