package pipelines_test

import (
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	_ "github.com/cdwhq/cdw/extract/files"
	"github.com/cdwhq/cdw/extract/sample"
	"github.com/cdwhq/cdw/internal/crashtest"
	"github.com/cdwhq/cdw/internal/pgtest"
	_ "github.com/cdwhq/cdw/load/parquet"
	"github.com/cdwhq/cdw/pipelines"
	"github.com/cdwhq/cdw/transform"
)

func TestMain(m *testing.M) {
	code := m.Run()
	crashtest.Cleanup()
	if err := pgtest.Shutdown(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
	}
	os.Exit(code)
}

// publishYAML publishes the marts as Parquet files.
const publishYAML = `publish:
  - kind: parquet
`

// orderSource is the generated orders and two deltas derived from them.
type orderSource struct {
	dir            string
	header         []string
	rows           [][]string
	col            map[string]int
	delta1, delta2 [][]string
}

func newOrderSource(t *testing.T) *orderSource {
	t.Helper()
	dir := t.TempDir()
	if _, err := sample.Write(dir, sample.Options{Customers: 250, Orders: 4000, Updates: 0.01}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "orders.csv"))
	if err != nil {
		t.Fatal(err)
	}
	all, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	s := &orderSource{dir: dir, header: append(all[0], "deleted"), col: map[string]int{}}
	for i, c := range s.header {
		s.col[c] = i
	}
	for _, r := range all[1:] {
		s.rows = append(s.rows, append(r, ""))
	}
	s.write(t, "orders.csv", s.rows)
	s.deltas()
	return s
}

func (s *orderSource) with(r []string, kv ...string) []string {
	out := append([]string(nil), r...)
	for i := 0; i < len(kv); i += 2 {
		out[s.col[kv[i]]] = kv[i+1]
	}
	return out
}

// deltas: the first updates, adds (a day after the data, so as_of moves),
// soft-deletes and brings a new customer; the second brings older versions
// of updated lines (which must lose), restores deleted lines with a newer
// version, deletes a line the first added, moves an order to another
// existing customer, and no new customer id.
func (s *orderSource) deltas() {
	defer s.moveOrder()
	for i, r := range s.rows {
		switch {
		case i%17 == 0:
			s.delta1 = append(s.delta1, s.with(r, "status", "returned", "updated_at", "2026-10-02T10:00:00Z"))
			if i%34 == 0 {
				s.delta2 = append(s.delta2, s.with(r, "status", "completed", "qty", "7", "updated_at", "2026-10-01T12:00:00Z"))
			}
		case i%53 == 0:
			s.delta1 = append(s.delta1, s.with(r, "deleted", "true", "updated_at", "2026-10-02T11:00:00Z"))
			if i%106 == 0 {
				s.delta2 = append(s.delta2, s.with(r, "qty", "3", "updated_at", "2026-10-03T08:00:00Z"))
			}
		case i%29 == 0:
			n := s.with(r, "order_no", "N"+r[s.col["order_no"]], "ordered_at", "2026-10-01T09:00:00Z",
				"updated_at", "2026-10-01T09:00:00Z", "status", "completed")
			s.delta1 = append(s.delta1, n)
			if i%58 == 0 {
				s.delta2 = append(s.delta2, s.with(n, "deleted", "true", "updated_at", "2026-10-03T09:00:00Z"))
			}
		case i == 1:
			s.delta1 = append(s.delta1, s.with(r, "order_no", "NEW-1", "customer", "NEWCUSTOMER", "ordered_at", "2026-10-01T10:00:00Z",
				"updated_at", "2026-10-01T10:00:00Z"))
		}
	}
}

// moveOrder adds to the second delta, as the newest versions of all, every
// line of one order with another customer. The old owner has no other line
// in the delta, so only the line's older version says it lost the order.
func (s *orderSource) moveOrder() {
	c := func(r []string) string { return r[s.col["customer"]] }
	inDelta := map[string]bool{}
	for _, r := range s.delta2 {
		inDelta[c(r)] = true
	}
	var moved []string
	for _, r := range s.rows {
		if !inDelta[c(r)] && c(r) != "" {
			moved = r
			break
		}
	}
	to := c(s.rows[0])
	for _, r := range s.rows {
		if c(r) != c(moved) && c(r) != "" {
			to = c(r)
			break
		}
	}
	for _, r := range s.rows {
		if r[s.col["order_no"]] == moved[s.col["order_no"]] {
			s.delta2 = append(s.delta2, s.with(r, "customer", to, "updated_at", "2026-10-03T10:00:00Z"))
		}
	}
}

func (s *orderSource) write(t *testing.T, name string, rows [][]string) {
	t.Helper()
	f, err := os.Create(filepath.Join(s.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.Write(s.header)
	w.WriteAll(rows)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// config writes a warehouse config over src and returns its path.
func config(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "cdw.yaml")
	// The generated sources, with a deleted column on the orders; orders*.csv
	// picks up the deltas.
	text := fmt.Sprintf("warehouse: %s\n", filepath.Join(dir, "wh")) + pipelines.SampleSourcesYAML(src, "orders*.csv", "deleted") + publishYAML
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func run(t *testing.T, cfgPath string, full bool) map[string]transform.ModelResult {
	t.Helper()
	cfg, err := pipelines.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := (&pipelines.Runner{Cfg: cfg}).Run(context.Background(), pipelines.Options{
		Steps: pipelines.AllSteps, FullRefresh: full, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	out := map[string]transform.ModelResult{}
	for _, m := range rep.Transform.Models {
		out[m.Model] = m
	}
	return out
}

// tables summarises every model table of a warehouse: row count and an md5
// over the sorted rows. identity_nodes and identity_components hold
// internal ids that may differ between runs; clv_params.fitted_at is a
// clock reading, and its freq_monetary_corr (a diagnostic) sums floats in
// row order, which differs between any two runs in the last digits.
func tables(t *testing.T, cfgPath string) map[string]string {
	t.Helper()
	wh := filepath.Join(filepath.Dir(cfgPath), "wh", "warehouse.duckdb")
	db, err := sql.Open("duckdb", wh+"?access_mode=read_only")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'
		AND table_name NOT LIKE 'cdw\_%' ESCAPE '\' AND table_name NOT IN ('identity_nodes', 'identity_components') ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	rows.Close()
	out := map[string]string{}
	for _, n := range names {
		rel := n
		if n == "clv_params" {
			rel = "(SELECT * EXCLUDE (fitted_at) REPLACE (round(freq_monetary_corr, 9) AS freq_monetary_corr) FROM clv_params)"
		}
		var s crashtest.Summary
		if err := db.QueryRow(crashtest.SummaryQuery(rel)).Scan(&s.Rows, &s.Sum); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		out[n] = s.String()
	}
	return out
}

func compare(t *testing.T, what string, gotCfg, wantCfg string) {
	t.Helper()
	got, want := tables(t, gotCfg), tables(t, wantCfg)
	for _, m := range []string{"stg_orders", "customer_segments", "customer_value", "churn_risk", "service_followup",
		"seasonal_index", "product_mix", "segment_summary", "customer_360"} {
		if want[m] == "" {
			t.Errorf("%s: the full run has no table %s", what, m)
		}
	}
	for n, w := range want {
		if got[n] != w {
			t.Errorf("%s: %s = %s; a full run from scratch gives %s\n%s", what, n, got[n], w, diffRows(t, gotCfg, wantCfg, n))
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			t.Errorf("%s: extra table %s", what, n)
		}
	}
}

// diffRows shows a few rows of table that only one warehouse has.
func diffRows(t *testing.T, gotCfg, wantCfg, table string) string {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	wh := func(cfg string) string { return filepath.Join(filepath.Dir(cfg), "wh", "warehouse.duckdb") }
	if _, err := db.Exec(fmt.Sprintf(`ATTACH '%s' AS got (READ_ONLY); ATTACH '%s' AS want (READ_ONLY)`, wh(gotCfg), wh(wantCfg))); err != nil {
		return err.Error()
	}
	var out strings.Builder
	for _, q := range []string{
		fmt.Sprintf(`SELECT 'only incremental: ' || t::VARCHAR FROM (FROM got.%[1]s EXCEPT ALL FROM want.%[1]s) t LIMIT 3`, table),
		fmt.Sprintf(`SELECT 'only full: ' || t::VARCHAR FROM (FROM want.%[1]s EXCEPT ALL FROM got.%[1]s) t LIMIT 3`, table),
	} {
		rows, err := db.Query(q)
		if err != nil {
			return err.Error()
		}
		for rows.Next() {
			var s string
			rows.Scan(&s)
			out.WriteString("    " + s + "\n")
		}
		rows.Close()
	}
	return out.String()
}

func wantStatus(t *testing.T, what string, got map[string]transform.ModelResult, want map[string]transform.Status) {
	t.Helper()
	for m, st := range want {
		if got[m].Status != st {
			t.Errorf("%s: %s is %s (%s), want %s", what, m, got[m].Status, got[m].Notes, st)
		}
	}
}

// TestIncrementalRunsEqualAFullRun: a full run, then two runs after order
// deltas (updates, new lines, soft deletes, a new customer; then late older
// versions, restored and deleted lines), give the same tables as one run
// from scratch over all the files; so does --full-refresh afterwards.
func TestIncrementalRunsEqualAFullRun(t *testing.T) {
	src := newOrderSource(t)
	cfg := config(t, src.dir)
	first := run(t, cfg, false)
	for m, r := range first {
		if r.Status != transform.Success {
			t.Errorf("first run: %s is %s", m, r.Status)
		}
	}

	src.write(t, "orders-d1.csv", src.delta1)
	got := run(t, cfg, false)
	wantStatus(t, "after delta 1", got, map[string]transform.Status{
		"stg_orders": transform.Success, "stg_contacts": transform.UpToDate, "stg_tickets": transform.UpToDate,
		"identity_links": transform.UpToDate, "identity_ids": transform.Success, "customer_identity": transform.Success,
		"customer_value": transform.Success})
	if n := got["stg_orders"].Notes; !strings.Contains(n, "incremental: 1 new raw file(s)") {
		t.Errorf("stg_orders after delta 1: %q, want an incremental merge", n)
	}
	if n := got["customer_orders"].Notes; !strings.Contains(n, "full build: customer_identity (rebuild_on) changed") {
		t.Errorf("customer_orders after delta 1: %q, want a full build (a new customer changed the identity map)", n)
	}

	src.write(t, "orders-d2.csv", src.delta2)
	got = run(t, cfg, false)
	wantStatus(t, "after delta 2", got, map[string]transform.Status{
		"stg_orders": transform.Success, "stg_contacts": transform.UpToDate,
		// no new customer id: identity_ids is rebuilt, keeps its version
		// (early_cutoff), and the identity models after it are up to date
		"identity_ids": transform.Success, "identity_nodes": transform.UpToDate, "customer_identity": transform.UpToDate,
		"customer_summary": transform.Success, "segment_summary": transform.Success})
	if n := got["identity_ids"].Notes; !strings.Contains(n, "content unchanged") {
		t.Errorf("identity_ids after delta 2: %q", n)
	}
	if n := got["customer_orders"].Notes; !strings.Contains(n, "incremental: 1 new raw file(s)") {
		t.Errorf("customer_orders after delta 2: %q, want an incremental merge (identity unchanged)", n)
	}

	scratch := config(t, src.dir)
	run(t, scratch, false)
	compare(t, "after two incremental runs", cfg, scratch)

	// Nothing new: every model is up to date.
	got = run(t, cfg, false)
	for m, r := range got {
		if r.Status != transform.UpToDate {
			t.Errorf("rerun without new data: %s is %s (%s)", m, r.Status, r.Notes)
		}
	}
	// --full-refresh re-extracts and rebuilds everything.
	got = run(t, cfg, true)
	for m, r := range got {
		if r.Status != transform.Success {
			t.Errorf("--full-refresh: %s is %s", m, r.Status)
		}
	}
	if n := got["stg_orders"].Notes; !strings.Contains(n, "full build") {
		t.Errorf("stg_orders after --full-refresh: %q", n)
	}
	compare(t, "after --full-refresh", cfg, scratch)
}

// TestKilledIncrementalRunRerunsCorrectly kills the real binary inside the
// transform of an incremental run (inside stg_orders' merge, inside a Go
// model, between models), reruns it, and checks the warehouse equals a full
// run from scratch.
func TestKilledIncrementalRunRerunsCorrectly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the cdw binary")
	}
	bin := crashtest.Binary(t)
	src := newOrderSource(t)
	src.write(t, "orders-d1.csv", src.delta1)
	scratch := config(t, src.dir)
	cdw := func(cfg, failpoint string) crashtest.Result {
		t.Helper()
		return crashtest.Exec(t, bin, crashtest.Run{Args: []string{"run", "--config", cfg}, Failpoint: failpoint})
	}
	if res := cdw(scratch, ""); res.Killed || res.Code != 0 {
		t.Fatalf("scratch run: %s", res)
	}
	os.Remove(filepath.Join(src.dir, "orders-d1.csv"))

	for _, fp := range []string{"transform.mid-merge", "transform.after-model:1", "transform.go-model-built",
		"transform.after-model:8", "transform.after-model:16", "pipeline.before-publish"} {
		t.Run(fp, func(t *testing.T) {
			// Each case: a full run on the base files, then the delta
			// arrives and the incremental run is killed.
			cfg := config(t, src.dir)
			if res := cdw(cfg, ""); res.Killed || res.Code != 0 {
				t.Fatalf("base run: %s", res)
			}
			// orders-d1.csv exists only while this case runs its delta.
			src.write(t, "orders-d1.csv", src.delta1)
			defer os.Remove(filepath.Join(src.dir, "orders-d1.csv"))
			if res := cdw(cfg, fp); !res.Killed {
				t.Fatalf("not killed at %s: %s", fp, res)
			}
			if res := cdw(cfg, ""); res.Killed || res.Code != 0 {
				t.Fatalf("rerun: %s", res)
			}
			compare(t, "after a kill at "+fp+" and a rerun", cfg, scratch)
		})
	}
}
