package iceberg

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cdwhq/cdw/internal/config"
	"github.com/cdwhq/cdw/load"
	_ "github.com/cdwhq/cdw/load/parquet"
)

// BenchmarkPublish publishes the same two marts (customer_segments with
// 1M rows of cdw's mart column types, and its summary) as versioned Parquet
// and as Iceberg tables (filesystem catalog), one version per iteration.
func BenchmarkPublish(b *testing.B) {
	for _, kind := range []string{"parquet", "iceberg"} {
		b.Run(kind, func(b *testing.B) {
			dir := b.TempDir()
			db := warehouseB(b, dir)
			n, _ := config.Parse("cdw.yaml", []byte("keep: 3\n"))
			k, err := load.LookupKind(kind)
			if err != nil {
				b.Fatal(err)
			}
			p, err := k.Open(load.TargetConfig{Options: n, Dir: dir, BaseDir: dir})
			if err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				i++
				id := fmt.Sprintf("%06d-20240101T000000Z", i)
				if err := p.Publish(context.Background(), load.Marts{DB: db, Names: []string{"customer_segments", "segment_summary"}, Dir: dir, Version: id}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func warehouseB(b *testing.B, dir string) *sql.DB {
	db, err := sql.Open("duckdb", filepath.Join(dir, "warehouse.duckdb"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	for _, q := range []string{`CREATE TABLE customer_segments AS
		SELECT i AS customer_id, ['North','South','West'][1 + i % 3] AS business_unit,
		       CAST(((i * 7) % 1000) / 4 AS DECIMAL(18,2)) AS revenue,
		       CASE WHEN i % 5 = 0 THEN NULL ELSE 'seg' || (i % 4) END AS segment,
		       DATE '2024-01-01' + CAST(i % 365 AS INTEGER) AS last_order,
		       TIMESTAMP '2024-03-01 12:34:56' + to_seconds(i) AS updated_at,
		       i / 3.0 AS score, i % 2 = 0 AS active
		FROM range(1000000) r(i)`,
		`CREATE TABLE segment_summary AS SELECT segment, count(*) AS customers, sum(revenue) AS revenue FROM customer_segments GROUP BY segment`} {
		if _, err := db.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
	return db
}
