package reliability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdwhq/cdw/extract/extracttest"
	"github.com/cdwhq/cdw/internal/crashtest"
)

// outcome is what a completed warehouse holds: raw rows per source entity
// and published marts per target.
type outcome struct {
	raw, parquet, duck, pg map[string]crashtest.Summary
}

func (f *fixture) outcome(t *testing.T, dir, schema string) outcome {
	t.Helper()
	wh := filepath.Join(dir, "wh")
	o := outcome{
		raw:     extracttest.Raw(t, wh),
		parquet: crashtest.ParquetMarts(t, filepath.Join(wh, "marts")),
		duck:    crashtest.DuckDBMarts(t, filepath.Join(wh, "marts.duckdb")),
	}
	if schema != "" {
		o.pg = f.pgMarts(t, schema)
	}
	return o
}

// pgMarts summarises every table of a published PostgreSQL schema (the
// __prev copies kept for rollback and the version record excluded).
func (f *fixture) pgMarts(t *testing.T, schema string) map[string]crashtest.Summary {
	t.Helper()
	ctx := context.Background()
	conn := f.db.Connect(t)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = $1
		AND table_name NOT LIKE '%\_\_prev' AND table_name NOT LIKE '%\_\_new' AND table_name <> 'cdw_publish_version' ORDER BY 1`, schema)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]crashtest.Summary{}
	for _, n := range names {
		var s crashtest.Summary
		q := fmt.Sprintf(`SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM %s t`,
			pgx.Identifier{schema, n}.Sanitize())
		if err := conn.QueryRow(ctx, q).Scan(&s.Rows, &s.Sum); err != nil {
			t.Fatalf("reading PostgreSQL mart %s.%s: %v", schema, n, err)
		}
		out[n] = s
	}
	return out
}

// compare fails the test where got differs from the clean run's outcome.
func (o outcome) compare(t *testing.T, want outcome) {
	t.Helper()
	d := crashtest.Diff("raw", want.raw, o.raw) + crashtest.Diff("parquet mart", want.parquet, o.parquet) +
		crashtest.Diff("duckdb mart", want.duck, o.duck)
	if want.pg != nil {
		d += crashtest.Diff("postgres mart", want.pg, o.pg)
	}
	if d != "" {
		t.Errorf("after the crash and rerun, the warehouse differs from a clean run's:\n%s", d)
	}
}

func names(m map[string]crashtest.Summary) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// crashCase is one kill of `cdw run`.
type crashCase struct {
	failpoint string        // name[:n]
	warm      bool          // a complete run first, so the kill hits a rerun (a publish replacing marts)
	delay     time.Duration // kill at this moment instead of a failpoint
}

func (c crashCase) name() string {
	n := c.failpoint
	if c.delay > 0 {
		n = fmt.Sprintf("kill-after-%dms", c.delay.Milliseconds())
	}
	if c.warm {
		n += "/warm"
	}
	return n
}

// TestCrashAnywhereThenRerun kills the real `cdw run` (PostgreSQL orders,
// HTTP API tickets, CSV contacts; published as Parquet, DuckDB file and
// PostgreSQL) with SIGKILL at every failpoint and at random moments, reruns
// it to completion, and checks that every source row is in raw exactly once,
// that every published mart equals a clean run's, that nothing temporary is
// left, and that a reader polling the published marts in another process
// never saw a partial mart or set.
func TestCrashAnywhereThenRerun(t *testing.T) {
	f := newFixture(t)
	refDir := t.TempDir()
	refCfg := f.writeConfig(t, refDir, cfgOptions{pgSchema: "ref"})
	start := time.Now()
	f.mustRun(t, refCfg)
	clean := time.Since(start)
	want := f.outcome(t, refDir, "ref")
	t.Logf("clean run: %s; raw %v; marts %v", clean.Round(time.Millisecond), want.raw, names(want.parquet))
	// A clean run must hold every source row exactly once; later cases are
	// compared with it.
	if got := want.raw["shop.orders"].Rows; got != int64(f.orders) {
		t.Fatalf("clean run: raw shop.orders has %d rows, PostgreSQL has %d", got, f.orders)
	}
	if got := want.raw["helpdesk.tickets"].Rows; got != int64(len(f.api.tickets)) {
		t.Fatalf("clean run: raw helpdesk.tickets has %d rows, the API serves %d", got, len(f.api.tickets))
	}
	if len(want.parquet) == 0 || len(want.duck) != len(want.parquet) || len(want.pg) != len(want.parquet) {
		t.Fatalf("clean run published %d Parquet, %d DuckDB and %d PostgreSQL marts", len(want.parquet), len(want.duck), len(want.pg))
	}

	cases := []crashCase{
		// Extract: orders (PostgreSQL, 500-row checkpoints), tickets (API, 25 per page), contacts (CSV).
		{failpoint: "extract.mid-write:1"},
		{failpoint: "extract.mid-write:10"},
		{failpoint: "extract.mid-write:16"},
		{failpoint: "extract.before-commit:1"},
		{failpoint: "extract.before-commit:5"},
		{failpoint: "extract.before-commit:19"},
		{failpoint: "extract.after-commit:3"},
		{failpoint: "extract.after-commit:14"},
		{failpoint: "pipeline.after-extract"},
		// Transform, between models.
		{failpoint: "transform.after-model:1"},
		{failpoint: "transform.after-model:14"},
		{failpoint: "transform.after-model:3", warm: true},
		{failpoint: "pipeline.before-publish"},
		// Publish, each target, first publish and replacing a published set.
		{failpoint: "publish.parquet.mid-write:3", warm: true},
		{failpoint: "publish.parquet.before-switch", warm: true},
		{failpoint: "publish.parquet.mid-switch:1"},
		{failpoint: "publish.parquet.mid-switch:4", warm: true},
		{failpoint: "publish.duckdb.mid-write:2", warm: true},
		{failpoint: "publish.duckdb.before-switch"},
		{failpoint: "publish.duckdb.before-switch", warm: true},
		{failpoint: "publish.postgres.mid-load:2", warm: true},
		{failpoint: "publish.postgres.before-swap"},
		{failpoint: "publish.postgres.before-swap", warm: true},
		{failpoint: "pipeline.before-history"},
	}
	rng := rand.New(rand.NewPCG(8, 8))
	for i := 0; i < 5; i++ {
		d := time.Duration(50+rng.IntN(int(clean.Milliseconds()))) * time.Millisecond
		cases = append(cases, crashCase{delay: d, warm: i%3 == 2})
	}

	// Cases run two at a time (go test -parallel): each has its own
	// warehouse and PostgreSQL schema; the sources are only read.
	var mu sync.Mutex
	var kills, reads, sets int
	t.Cleanup(func() {
		t.Logf("%d cases, %d kills survived, concurrent reader: %d mart reads, %d complete sets, 0 partial", len(cases), kills, reads, sets)
	})
	for i, c := range cases {
		t.Run(c.name(), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			schema := fmt.Sprintf("crash_%d", i)
			cfg := f.writeConfig(t, dir, cfgOptions{pgSchema: schema})
			if c.warm {
				f.mustRun(t, cfg)
				// The sources do not change, so the killed run would find its
				// marts unchanged and publish nothing (issue #16 item 9);
				// forgetting the recorded version makes it replace the
				// published set, which is what the warm cases kill.
				if err := os.Remove(filepath.Join(dir, "wh", "state", "publish.json")); err != nil {
					t.Fatal(err)
				}
			}
			rd := crashtest.StartReader(t, filepath.Join(dir, "wh"), names(want.parquet))
			res := f.run(t, cfg, crashtest.Run{Failpoint: c.failpoint, KillAfter: c.delay})
			if c.failpoint != "" && !res.Killed {
				t.Fatalf("the run was not killed at %s: %s", c.failpoint, res)
			}
			mu.Lock()
			if res.Killed {
				kills++
			}
			mu.Unlock()
			if !res.Killed {
				t.Logf("the run finished before the kill at %s", c.delay)
			}
			f.mustRun(t, cfg)
			rep := rd.Stop(t)
			mu.Lock()
			reads += rep.Reads
			sets += rep.Sets
			mu.Unlock()
			if len(rep.Errors) > 0 {
				t.Errorf("a concurrent reader saw partial marts:\n%s", strings.Join(rep.Errors, "\n"))
			}
			if left := crashtest.Leftovers(filepath.Join(dir, "wh")); len(left) > 0 {
				t.Errorf("temporary files left after the rerun: %v", left)
			}
			f.outcome(t, dir, schema).compare(t, want)
		})
	}
}
