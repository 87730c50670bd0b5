// Package harness is the benchmark suite behind `cdw bench`: it measures cdw
// against the tools a data team would use instead, each workload side by side
// in one run. Every measured command is a child process (so peak RSS is its
// own), runs alternate ours/baseline, and the median of Options.Runs is
// reported. Results are kept as JSON under Dir/results so workloads can be
// run separately and reported together.
package harness

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/cdwhq/cdw/extract/sample"
	"github.com/cdwhq/cdw/internal/pgtest"
	"github.com/cdwhq/cdw/pipelines"
	"github.com/cdwhq/cdw/transform"
)

// Workloads lists the workloads Run knows, in report order.
var Workloads = []string{"postgres", "cdc", "csv", "transform", "pandas", "e2e", "incremental"}

// Options are what `cdw bench` passes in from its flags.
type Options struct {
	Dir        string   // generated data, warehouses, logs and results
	Workloads  []string // of Workloads, or "none" to only write the report
	Orders     int      // order lines for the csv, transform, pandas and incremental workloads
	Sizes      []int    // order lines of the e2e workload
	PgOrders   int      // order lines in PostgreSQL for the postgres and cdc workloads
	CDCChanges int      // row changes the cdc workload streams per run
	CDCRate    int      // transactions per second of the cdc workload's pgbench load
	CDCSeconds int      // seconds of that load
	Runs       int      // runs per side; the median is reported
	MemLimit   string   // DuckDB memory_limit for cdw and the DuckDB baselines
	PandasRows []string // rows of the pandas workload: matched, transform, segments
	Out, Notes string   // the report to write; markdown appended to it
	Python     string   // python3 with pandas; "" means PandasPython
	// Cdw is the cdw binary the children run, with leading arguments (a test
	// binary needs its own); empty means this executable.
	Cdw    []string
	Stdout io.Writer // progress
}

// Run runs the workloads and writes the report.
func Run(ctx context.Context, o Options) error {
	if o.Dir == "" {
		return errors.New("--dir is required: a directory for the generated data and warehouses (tens of GB at 100M)")
	}
	for _, r := range o.PandasRows {
		if !slices.Contains([]string{"matched", "transform", "segments"}, r) {
			return fmt.Errorf("--pandas-rows: unknown row %q (matched, transform, segments)", r)
		}
	}
	b := &bench{dir: o.Dir, memLimit: o.MemLimit, out: o.Out, notes: o.Notes, python: o.Python,
		orders: o.Orders, runs: o.Runs, pgOrders: o.PgOrders, cdcChanges: o.CDCChanges, cdcRate: o.CDCRate, cdcSeconds: o.CDCSeconds, sizes: o.Sizes, pandasRows: o.PandasRows,
		cdwArgs: o.Cdw, w: o.Stdout}
	if b.w == nil {
		b.w = io.Discard
	}
	if b.python == "" {
		b.python, _ = PandasPython() // only the pandas workload needs it
	}
	if len(b.cdwArgs) == 0 {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the cdw binary: %w", err)
		}
		b.cdwArgs = []string{self}
	}
	if err := os.MkdirAll(filepath.Join(b.dir, "results"), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", b.dir, err)
	}
	for _, w := range o.Workloads {
		run, ok := map[string]func(context.Context) error{
			"postgres": b.postgres, "cdc": b.cdc, "csv": b.csv, "transform": b.transform, "pandas": b.pandas,
			"e2e": b.e2e, "incremental": b.incremental, "none": func(context.Context) error { return nil },
		}[w]
		if !ok {
			return fmt.Errorf("--workloads: unknown workload %q", w)
		}
		fmt.Fprintf(b.w, "== %s\n", w)
		if err := run(ctx); err != nil {
			return fmt.Errorf("workload %s: %w", w, err)
		}
	}
	return b.report(ctx)
}

type bench struct {
	dir, memLimit, out, notes, python string
	orders, runs, pgOrders            int
	cdcChanges, cdcRate, cdcSeconds   int
	sizes                             []int
	pandasRows                        []string
	cdwArgs                           []string // the cdw binary and its leading arguments
	w                                 io.Writer
}

// Measurement is one child process run.
// CPU (user + system) is recorded beside wall time: on a shared machine it
// is the figure least disturbed by other load.
type Measurement struct {
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpu_seconds"`
	RSSMB      float64 `json:"peak_rss_mb"`
}

// Result is one workload at one size, ours beside its baseline.
type Result struct {
	Order    int           `json:"order"` // position in the report
	Workload string        `json:"workload"`
	Rows     int64         `json:"rows"`
	Ours     string        `json:"ours"`
	Baseline string        `json:"baseline,omitempty"`
	Target   string        `json:"target,omitempty"`
	OursRuns []Measurement `json:"ours_runs"`
	BaseRuns []Measurement `json:"baseline_runs,omitempty"`
	Note     string        `json:"note,omitempty"`
	At       time.Time     `json:"at"`
}

func (b *bench) save(key string, r Result) error {
	r.At = time.Now().UTC()
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(b.dir, "results", key+".json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	o, base := median(r.OursRuns), median(r.BaseRuns)
	fmt.Fprintf(b.w, "%s: ours %.2fs (%.0f MB)", r.Workload, o.Seconds, o.RSSMB)
	if len(r.BaseRuns) > 0 {
		fmt.Fprintf(b.w, ", baseline %.2fs (%.0f MB), ratio %.2f", base.Seconds, base.RSSMB, o.Seconds/base.Seconds)
	}
	fmt.Fprintln(b.w)
	return nil
}

// child runs one measured process; its output goes to a log file.
func (b *bench) child(ctx context.Context, label string, env []string, name string, args ...string) (Measurement, error) {
	logDir := filepath.Join(b.dir, "logs")
	os.MkdirAll(logDir, 0o755)
	logPath := filepath.Join(logDir, label+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return Measurement{}, err
	}
	defer lf.Close()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	defer devnull.Close()
	cmd.Stdout, cmd.Stderr = lf, lf
	if strings.HasSuffix(label, "-devnull") {
		cmd.Stdout = devnull
	}
	start := time.Now()
	err = cmd.Run()
	secs := time.Since(start).Seconds()
	if err != nil {
		return Measurement{}, fmt.Errorf("running %s %s: %w (log: %s: %s)", name, strings.Join(args, " "), err, logPath, tail(logPath))
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	m := Measurement{Seconds: secs}
	if ru != nil {
		m.RSSMB = float64(ru.Maxrss) / 1024 // KiB on Linux
		m.CPUSeconds = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	return m, nil
}

func tail(path string) string {
	data, _ := os.ReadFile(path)
	s := strings.TrimSpace(string(data))
	if len(s) > 600 {
		s = "…" + s[len(s)-600:]
	}
	return s
}

// alternate runs prepare+ours and prepare+baseline in turn, runs times.
func (b *bench) alternate(ctx context.Context, r *Result, ours, base func(int) (Measurement, error)) error {
	for i := 0; i < b.runs; i++ {
		m, err := ours(i)
		if err != nil {
			return err
		}
		r.OursRuns = append(r.OursRuns, m)
		fmt.Fprintf(b.w, "  run %d ours %.2fs (cpu %.2fs) %.0f MB", i+1, m.Seconds, m.CPUSeconds, m.RSSMB)
		if base != nil {
			m, err := base(i)
			if err != nil {
				return err
			}
			r.BaseRuns = append(r.BaseRuns, m)
			fmt.Fprintf(b.w, " | baseline %.2fs (cpu %.2fs) %.0f MB", m.Seconds, m.CPUSeconds, m.RSSMB)
		}
		fmt.Fprintln(b.w)
	}
	return nil
}

// dataset generates (once) a CSV dataset of n order lines with n/10 customers.
func (b *bench) dataset(n int) (string, sample.Files, error) {
	dir := filepath.Join(b.dir, fmt.Sprintf("src-%d", n))
	o := sample.Options{Customers: max(n/10, 100), Orders: n, Updates: 0.005}
	marker := filepath.Join(dir, ".complete")
	f := sample.Files{Orders: filepath.Join(dir, "orders.csv")}
	if data, err := os.ReadFile(marker); err == nil {
		json.Unmarshal(data, &f)
		return dir, f, nil
	}
	os.RemoveAll(dir)
	start := time.Now()
	f, err := sample.Write(dir, o)
	if err != nil {
		return "", f, err
	}
	fmt.Fprintf(b.w, "  generated %d order lines, %d tickets, %d contacts in %.1fs\n", f.OrderLines, f.TicketRows, f.ContactRows, time.Since(start).Seconds())
	data, _ := json.Marshal(f)
	return dir, f, os.WriteFile(marker, data, 0o644)
}

// benchHeader is the bench warehouses' settings; their sources are the
// demo's file mapping over the generated data (pipelines.SampleSourcesYAML).
const benchHeader = `warehouse: %[1]s
duckdb:
  memory_limit: %[2]s
  temp_directory: %[1]s/tmp
`

// benchPublish publishes as the demo does.
const benchPublish = `publish:
  - kind: parquet
  - kind: duckdb
`

// warehouse writes a config for a fresh warehouse directory over src.
func (b *bench) warehouse(name, src string) (string, error) {
	wh := filepath.Join(b.dir, name)
	if err := os.RemoveAll(wh); err != nil {
		return "", err
	}
	if err := os.MkdirAll(wh, 0o700); err != nil {
		return "", err
	}
	cfg := filepath.Join(b.dir, name+".yaml")
	return cfg, os.WriteFile(cfg, []byte(fmt.Sprintf(benchHeader, wh, b.memLimit)+pipelines.SampleSourcesYAML(src, "orders*.csv")+benchPublish), 0o644)
}

func (b *bench) cdw(ctx context.Context, label string, args ...string) (Measurement, error) {
	full := append(append(slices.Clone(b.cdwArgs[1:]), args[0], "--log-level", "warn"), args[1:]...)
	return b.child(ctx, label, nil, b.cdwArgs[0], full...)
}

// csv: CSV → raw Parquet for the orders file, against DuckDB's own COPY.
func (b *bench) csv(ctx context.Context) error {
	src, f, err := b.dataset(b.orders)
	if err != nil {
		return err
	}
	r := Result{Order: 2, Workload: fmt.Sprintf("CSV → raw Parquet, %s order lines", human(f.OrderLines)), Rows: int64(f.OrderLines),
		Ours: "cdw extract --entity orders", Baseline: "DuckDB COPY (FROM read_csv(…)) TO … (FORMAT parquet)", Target: "≤ 1.2"}
	out := filepath.Join(b.dir, "duckdb-copy.parquet")
	script := fmt.Sprintf("COPY (FROM read_csv('%s')) TO '%s' (FORMAT parquet)", f.Orders, out)
	err = b.alternate(ctx, &r, func(int) (Measurement, error) {
		cfg, err := b.warehouse("wh-csv", src)
		if err != nil {
			return Measurement{}, err
		}
		return b.cdw(ctx, "csv-ours", "extract", "--config", cfg, "--entity", "orders")
	}, func(int) (Measurement, error) {
		os.Remove(out)
		return b.cdw(ctx, "csv-duckdb", "bench", "exec", "sql", "--memory-limit", b.memLimit, "--script", script)
	})
	if err != nil {
		return err
	}
	return b.save(fmt.Sprintf("2-csv-%012d", b.orders), r)
}

// transform: every model on an extracted warehouse, against the same rendered
// SQL executed directly in DuckDB (same library, settings and Go UDFs).
func (b *bench) transform(ctx context.Context) error {
	src, f, err := b.dataset(b.orders)
	if err != nil {
		return err
	}
	cfg, err := b.warehouse("wh-transform", src)
	if err != nil {
		return err
	}
	if _, err := b.cdw(ctx, "transform-extract", "extract", "--config", cfg); err != nil {
		return err
	}
	wh := filepath.Join(b.dir, "wh-transform")
	r := Result{Order: 3, Workload: fmt.Sprintf("Transform, all models, %s order lines / %s customers", human(f.OrderLines), human(f.OrderLines/10)),
		Rows: int64(f.OrderLines), Ours: "cdw run (transform step: models + data tests)", Baseline: "same SQL run directly in DuckDB", Target: "≤ 1.10"}
	direct := filepath.Join(b.dir, "direct.duckdb")
	err = b.alternate(ctx, &r, func(int) (Measurement, error) {
		os.Remove(filepath.Join(wh, "warehouse.duckdb"))
		return b.cdw(ctx, "transform-ours", "bench", "exec", "transform", "--config", cfg)
	}, func(int) (Measurement, error) {
		os.Remove(direct)
		os.Remove(direct + ".wal")
		return b.cdw(ctx, "transform-direct", "bench", "exec", "direct", "--config", cfg, "--db", direct)
	})
	if err != nil {
		return err
	}
	return b.save(fmt.Sprintf("%s-%012d", "3-transform", b.orders), r)
}

// pandas: RFM + ABC from the same orders CSV on both sides. bench/rfm_abc.py
// computes exactly what bench/models/marts/bench_rfm_abc.sql computes over
// stg_orders, so the first comparison is like for like: ours extracts the
// orders CSV to raw Parquet (pyarrow is not installable here, so pandas cannot
// read the raw Parquet) and builds stg_orders + bench_rfm_abc with their data
// tests; pandas reads the CSV and computes the same table. Two more rows say
// where our time goes: the transform step alone over the extracted raw files,
// and the product mart customer_segments with everything upstream of it
// (identity resolution across the CRM and web contacts, customer attributes,
// lifecycle), which does more work than the pandas script.
func (b *bench) pandas(ctx context.Context) error {
	src, f, err := b.dataset(b.orders)
	if err != nil {
		return err
	}
	script, err := filepath.Abs("bench/rfm_abc.py")
	if err != nil {
		return err
	}
	models, err := filepath.Abs("bench/models")
	if err != nil {
		return err
	}
	if b.python == "" {
		return errors.New("the pandas workload needs python3 with pandas (on PATH or /usr/bin/python3; apt-get install python3-pandas) or --python")
	}
	for _, p := range []string{script, filepath.Join(models, "marts", "bench_rfm_abc.sql")} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("the pandas workload needs %s; run cdw bench from the repository root: %w", p, err)
		}
	}
	setup := func(name string) (string, error) { return b.rfmWarehouse(name, src, models) }
	outCSV := filepath.Join(b.dir, "pandas-rfm.csv")
	pandas := func(int) (Measurement, error) {
		return b.child(ctx, "pandas-python", nil, b.python, script, f.Orders, outCSV)
	}
	lines := human(f.OrderLines)
	r := Result{Order: 4, Workload: fmt.Sprintf("RFM + ABC, same definitions, from the orders CSV, %s order lines", lines), Rows: int64(f.OrderLines),
		Ours:     "cdw run --select +bench_rfm_abc (extract the orders CSV + stg_orders + bench_rfm_abc + tests + publish)",
		Baseline: "pandas bench/rfm_abc.py (read CSV, same RFM + ABC)", Target: "report (≥ 10× faster expected)"}
	var cfg string
	if slices.Contains(b.pandasRows, "matched") {
		err = b.alternate(ctx, &r, func(int) (Measurement, error) {
			if cfg, err = setup("wh-pandas"); err != nil {
				return Measurement{}, err
			}
			return b.cdw(ctx, "pandas-ours", "run", "--config", cfg, "--select", "+bench_rfm_abc")
		}, pandas)
		if err != nil {
			return err
		}
		if err := b.save(fmt.Sprintf("4-pandas-%012d-1", b.orders), r); err != nil {
			return err
		}
	}
	if !slices.Contains(b.pandasRows, "transform") {
		return b.pandasSegments(ctx, src, lines, int64(f.OrderLines), pandas)
	}
	if cfg == "" {
		if cfg, err = setup("wh-pandas"); err != nil {
			return err
		}
		if _, err := b.cdw(ctx, "pandas-extract", "extract", "--config", cfg); err != nil {
			return err
		}
	}

	// The transform step alone, over the raw files the last run extracted.
	wh := filepath.Join(b.dir, "wh-pandas")
	r = Result{Order: 4, Workload: fmt.Sprintf("RFM + ABC, same definitions, transform step only over raw Parquet, %s order lines", lines), Rows: int64(f.OrderLines),
		Ours: "transform step of cdw run --select +bench_rfm_abc (stg_orders + bench_rfm_abc + tests)", Baseline: "pandas bench/rfm_abc.py (read CSV, same RFM + ABC)",
		Target: "report", Note: "pandas reads CSV, ours raw Parquet"}
	err = b.alternate(ctx, &r, func(int) (Measurement, error) {
		os.Remove(filepath.Join(wh, "warehouse.duckdb"))
		return b.cdw(ctx, "pandas-ours-transform", "bench", "exec", "transform", "--config", cfg, "--select", "+bench_rfm_abc")
	}, pandas)
	if err != nil {
		return err
	}
	if err := b.save(fmt.Sprintf("4-pandas-%012d-2", b.orders), r); err != nil {
		return err
	}
	return b.pandasSegments(ctx, src, lines, int64(f.OrderLines), pandas)
}

// pandasSegments measures the product mart against the pandas script: all
// four sources extracted, customer_segments and everything upstream of it.
func (b *bench) pandasSegments(ctx context.Context, src, lines string, rows int64, pandas func(int) (Measurement, error)) error {
	if !slices.Contains(b.pandasRows, "segments") {
		return nil
	}
	r := Result{Order: 4, Workload: fmt.Sprintf("customer_segments (RFM + ABC + identity resolution + lifecycle) from CSV, %s order lines", lines), Rows: rows,
		Ours: "cdw run --select +customer_segments (extract all 4 sources + 9 models + tests + publish)", Baseline: "pandas bench/rfm_abc.py (RFM + ABC only, no identity resolution)",
		Target: "report", Note: "not like for like"}
	err := b.alternate(ctx, &r, func(int) (Measurement, error) {
		cfg, err := b.warehouse("wh-pandas", src)
		if err != nil {
			return Measurement{}, err
		}
		return b.cdw(ctx, "pandas-ours-segments", "run", "--config", cfg, "--select", "+customer_segments")
	}, pandas)
	if err != nil {
		return err
	}
	return b.save(fmt.Sprintf("4-pandas-%012d-3", b.orders), r)
}

// RFMConfig writes, in dir, the config of the pandas workload's like-for-like
// warehouse name over the generated sources in src (see rfmWarehouse).
func RFMConfig(dir, name, src, models, memLimit string) (string, error) {
	return (&bench{dir: dir, memLimit: memLimit}).rfmWarehouse(name, src, models)
}

// rfmWarehouse writes the config of the like-for-like pandas comparison: the
// orders source only (what pandas reads) and the bench model directory, which
// the other workloads do not get, so they keep building exactly the
// product's models.
func (b *bench) rfmWarehouse(name, src, models string) (string, error) {
	cfg, err := b.warehouse(name, src)
	if err != nil {
		return "", err
	}
	text, err := os.ReadFile(cfg)
	if err != nil {
		return "", err
	}
	head, rest, _ := strings.Cut(string(text), "  - name: helpdesk\n")
	_, publish, _ := strings.Cut(rest, "publish:\n")
	text = fmt.Appendf(nil, "%spublish:\n%smodels:\n  - %s\n", head, publish, models)
	return cfg, os.WriteFile(cfg, text, 0o644)
}

// e2e: the whole pipeline from CSV files at each size; no baseline.
func (b *bench) e2e(ctx context.Context) error {
	for _, n := range b.sizes {
		src, f, err := b.dataset(n)
		if err != nil {
			return err
		}
		runs := b.runs
		note := ""
		if n >= 100_000_000 {
			runs, note = 1, "one run (time budget)"
		}
		r := Result{Order: 5, Workload: fmt.Sprintf("End to end (extract + transform + publish), %s order lines", human(f.OrderLines)),
			Rows: int64(f.OrderLines), Ours: "cdw run", Target: "peak RSS ≤ 4 GB at 100M", Note: note}
		saved := b.runs
		b.runs = runs
		err = b.alternate(ctx, &r, func(int) (Measurement, error) {
			cfg, err := b.warehouse("wh-e2e", src)
			if err != nil {
				return Measurement{}, err
			}
			return b.cdw(ctx, fmt.Sprintf("e2e-%d", n), "run", "--config", cfg)
		}, nil)
		b.runs = saved
		if err != nil {
			return err
		}
		if err := b.save(fmt.Sprintf("5-e2e-%012d", n), r); err != nil {
			return err
		}
	}
	return os.RemoveAll(filepath.Join(b.dir, "wh-e2e"))
}

// incremental: a full run, then a run after 1% changed or new order lines.
func (b *bench) incremental(ctx context.Context) error {
	src, f, err := b.dataset(b.orders)
	if err != nil {
		return err
	}
	delta := filepath.Join(src, "orders-delta.csv")
	os.Remove(delta)
	hidden := filepath.Join(b.dir, fmt.Sprintf("orders-delta-%d.csv", b.orders)) // per size: a 1M delta must not serve a 10M run
	if _, err := os.Stat(hidden); err != nil {
		o := sample.Options{Customers: max(b.orders/10, 100), Orders: b.orders, Updates: 0.005}
		if _, _, err := sample.WriteDelta(hidden, o, 0.01); err != nil {
			return err
		}
	}
	r := Result{Order: 6, Workload: fmt.Sprintf("Incremental run after 1%% new/changed order lines, %s", human(f.OrderLines)), Rows: int64(f.OrderLines),
		Ours: "cdw run after the delta", Baseline: "cdw run from scratch (full)", Target: "≤ 0.2"}
	// The full run (the baseline) must precede each incremental run, so
	// the loop is driven here rather than by alternate.
	for i := 0; i < b.runs; i++ {
		cfg, err := b.warehouse("wh-incremental", src)
		if err != nil {
			return err
		}
		full, err := b.cdw(ctx, "incremental-full", "run", "--config", cfg)
		if err != nil {
			return err
		}
		if err := os.Link(hidden, delta); err != nil {
			return fmt.Errorf("adding the delta file: %w", err)
		}
		inc, err := b.cdw(ctx, "incremental-ours", "run", "--config", cfg)
		os.Remove(delta)
		if err != nil {
			return err
		}
		r.OursRuns, r.BaseRuns = append(r.OursRuns, inc), append(r.BaseRuns, full)
		fmt.Fprintf(b.w, "  run %d full %.2fs | incremental %.2fs\n", i+1, full.Seconds, inc.Seconds)
	}
	os.RemoveAll(filepath.Join(b.dir, "wh-incremental"))
	return b.save(fmt.Sprintf("%s-%012d", "6-incremental", b.orders), r)
}

// postgres: PostgreSQL → raw Parquet against psql \copy to /dev/null, on a
// throwaway server started here.
func (b *bench) postgres(ctx context.Context) error {
	pg, err := b.startPostgres()
	if err != nil {
		return err
	}
	defer pg.stop()
	if err := b.pgLoad(ctx, pg); err != nil {
		return err
	}
	psql, err := exec.LookPath("psql")
	if err != nil {
		return fmt.Errorf("the postgres workload needs psql: %w", err)
	}
	// psql runs the query cdw's incremental read runs: every column, in
	// cursor order (served by the cursor index either way).
	for i, t := range []struct{ entity, table, order, mapping string }{
		{"orders", "orders", "updated_at, order_no, line", "cursor: updated_at\n        key: [order_no, line]\n        columns: {order_id: order_no, line_no: line, customer_id: customer, order_ts: ordered_at, product_id: sku, quantity: qty}"},
		{"tickets", "tickets", "updated_at, ticket_id", "cursor: updated_at\n        key: [ticket_id]\n        columns: {customer_id: customer, satisfaction: csat}"},
	} {
		var rows int64
		if err := pg.db.QueryRowContext(ctx, "SELECT count(*) FROM "+t.table).Scan(&rows); err != nil {
			return fmt.Errorf("counting %s: %w", t.table, err)
		}
		cols := 13
		if t.table == "tickets" {
			cols = 40
		}
		r := Result{Order: 1, Workload: fmt.Sprintf("PostgreSQL → raw Parquet, %s %s rows (%d columns)", human(int(rows)), t.table, cols), Rows: rows,
			Ours: "cdw extract (postgres source)", Baseline: `psql \copy (SELECT * … ORDER BY cursor, key) TO STDOUT CSV > /dev/null`, Target: "≤ 1.0"}
		wh := filepath.Join(b.dir, "wh-pg")
		cfg := filepath.Join(b.dir, "wh-pg.yaml")
		yaml := fmt.Sprintf("warehouse: %s\nsources:\n  - name: erp\n    kind: postgres\n    host: %s\n    port: %d\n    database: postgres\n    user: postgres\n    sslmode: disable\n    safety_lag: 0s\n    entities:\n      %s:\n        table: public.%s\n        %s\n",
			wh, pg.SocketDir(), pg.Port, t.entity, t.table, t.mapping)
		if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
			return err
		}
		err := b.alternate(ctx, &r, func(int) (Measurement, error) {
			os.RemoveAll(wh)
			return b.cdw(ctx, "pg-ours-"+t.table, "extract", "--config", cfg, "--entity", t.entity)
		}, func(int) (Measurement, error) {
			return b.child(ctx, "pg-psql-"+t.table+"-devnull", nil, psql, "-h", pg.SocketDir(), "-p", strconv.Itoa(pg.Port), "-U", "postgres", "-d", "postgres",
				"-X", "-q", "-c", `\copy (SELECT * FROM `+t.table+` ORDER BY `+t.order+`) TO STDOUT CSV`)
		})
		if err != nil {
			return err
		}
		if err := b.save(fmt.Sprintf("1-postgres-%d", i), r); err != nil {
			return err
		}
	}
	return os.RemoveAll(filepath.Join(b.dir, "wh-pg"))
}

// human prints 10000000 as 10M and 998072 as 998k.
func human(n int) string {
	switch {
	case n >= 1_000_000:
		return strconv.FormatFloat(float64(n)/1e6, 'f', -1, 64)[:min(len(strconv.FormatFloat(float64(n)/1e6, 'f', -1, 64)), 4)] + "M"
	case n >= 1_000:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

func median(ms []Measurement) Measurement {
	if len(ms) == 0 {
		return Measurement{}
	}
	secs := make([]float64, len(ms))
	cpu := make([]float64, len(ms))
	rss := make([]float64, len(ms))
	for i, m := range ms {
		secs[i], cpu[i], rss[i] = m.Seconds, m.CPUSeconds, m.RSSMB
	}
	sort.Float64s(secs)
	sort.Float64s(cpu)
	return Measurement{Seconds: secs[len(secs)/2], CPUSeconds: cpu[len(cpu)/2], RSSMB: slices.Max(rss)}
}

// report writes the Markdown report from every saved Result.
func (b *bench) report(ctx context.Context) error {
	paths, _ := filepath.Glob(filepath.Join(b.dir, "results", "*.json"))
	sort.Strings(paths)
	var results []Result
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var r Result
		if err := json.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("reading %s: %w", p, err)
		}
		results = append(results, r)
	}
	sort.SliceStable(results, func(i, j int) bool { return results[i].Order < results[j].Order })
	var w strings.Builder
	fmt.Fprintf(&w, "# cdw benchmarks\n\nGenerated by `cdw bench` on %s. Every figure is a child process measured from\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&w, "start to exit (wall time) with its CPU time (user + system) and peak RSS from rusage; ours and the\nbaseline run alternately, and the table shows median times and the largest peak RSS of the runs.\n\n")
	fmt.Fprintf(&w, "## Machine and versions\n\n")
	for _, kv := range machineInfo(ctx, b.python) {
		fmt.Fprintf(&w, "- %s: %s\n", kv[0], kv[1])
	}
	fmt.Fprintf(&w, "\n## Results\n\n| workload | ours | baseline | runs | ours s (cpu s) | baseline s (cpu s) | ours rows/s | ours peak RSS MB | baseline peak RSS MB | ratio wall (cpu) | target |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		o, base := median(r.OursRuns), median(r.BaseRuns)
		bs, brss, ratio := "–", "–", "–"
		if len(r.BaseRuns) > 0 {
			bs, brss = fmt.Sprintf("%.2f (%.2f)", base.Seconds, base.CPUSeconds), fmt.Sprintf("%.0f", base.RSSMB)
			ratio = fmt.Sprintf("**%.2f** (%.2f)", o.Seconds/base.Seconds, o.CPUSeconds/base.CPUSeconds)
		}
		runs := strconv.Itoa(len(r.OursRuns))
		if r.Note != "" {
			runs += " (" + r.Note + ")"
		}
		fmt.Fprintf(&w, "| %s | %s | %s | %s | %.2f (%.2f) | %s | %s | %.0f | %s | %s | %s |\n", r.Workload, r.Ours, dash(r.Baseline), runs,
			o.Seconds, o.CPUSeconds, bs, humanRate(float64(r.Rows)/o.Seconds), o.RSSMB, brss, ratio, dash(r.Target))
	}
	fmt.Fprintf(&w, "\nAll runs (seconds):\n\n")
	for _, r := range results {
		fmt.Fprintf(&w, "- %s — ours %s", r.Workload, secsList(r.OursRuns))
		if len(r.BaseRuns) > 0 {
			fmt.Fprintf(&w, "; baseline %s", secsList(r.BaseRuns))
		}
		fmt.Fprintln(&w)
	}
	fmt.Fprintf(&w, "\nReproduce: `go build -o cdw ./cmd/cdw && ./cdw bench --dir DIR --workloads postgres,csv,transform,pandas,incremental,e2e --e2e-sizes 1000000,10000000,100000000` (see bench/README.md).\n")
	if notes, err := os.ReadFile(b.notes); err == nil {
		fmt.Fprintf(&w, "\n%s", notes)
	}
	if err := os.WriteFile(b.out, []byte(w.String()), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", b.out, err)
	}
	fmt.Fprintf(b.w, "Wrote %s (%d results)\n", b.out, len(results))
	return nil
}

func dash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func humanRate(r float64) string {
	if r >= 1e6 {
		return fmt.Sprintf("%.2fM", r/1e6)
	}
	return fmt.Sprintf("%.0fk", r/1e3)
}

func secsList(ms []Measurement) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = fmt.Sprintf("%.2f", m.Seconds)
	}
	return strings.Join(s, ", ")
}

// machineInfo describes the machine and the versions measured.
func machineInfo(ctx context.Context, python string) [][2]string {
	var info [][2]string
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				info = append(info, [2]string{"CPU", fmt.Sprintf("%s × %d", strings.TrimSpace(v), runtime.NumCPU())})
				break
			}
		}
		f.Close()
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(data), "\n")
		info = append(info, [2]string{"memory", strings.Join(strings.Fields(line)[1:], " ")})
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		info = append(info, [2]string{"kernel", strings.TrimSpace(string(out))})
	}
	info = append(info, [2]string{"Go", runtime.Version()})
	if db, err := sql.Open("duckdb", ""); err == nil {
		var v string
		if db.QueryRowContext(ctx, "SELECT version()").Scan(&v) == nil {
			info = append(info, [2]string{"DuckDB", v + " (duckdb-go, the same library cdw links)"})
		}
		db.Close()
	}
	for _, c := range [][]string{{"psql", "--version"}, {python, "-c", "import pandas, sys; print('pandas', pandas.__version__, 'on Python', sys.version.split()[0])"}} {
		if c[0] == "" {
			continue
		}
		if out, err := exec.Command(c[0], c[1:]...).Output(); err == nil {
			info = append(info, [2]string{filepath.Base(c[0]), strings.TrimSpace(string(out))})
		}
	}
	return info
}

// pgServer is the PostgreSQL of the postgres and cdc workloads, kept in
// DIR/pg so its tables are loaded once.
type pgServer struct {
	*pgtest.Server
	db *sql.DB
}

func (b *bench) startPostgres() (*pgServer, error) {
	s, err := pgtest.Keep(filepath.Join(b.dir, "pg"), "shared_buffers=1GB", "max_wal_size=8GB")
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("pgx", s.DSN)
	if err != nil {
		s.Stop()
		return nil, err
	}
	return &pgServer{Server: s, db: db}, nil
}

func (s *pgServer) stop() {
	s.db.Close()
	s.Stop()
}

// ExecOptions are the flags of `cdw bench exec MODE`.
type ExecOptions struct {
	Script      string   // sql: the SQL to run
	MemoryLimit string   // sql: DuckDB memory_limit
	Config      string   // extract, transform, direct: the config file
	DB          string   // direct: the DuckDB file to build
	Entities    []string // extract: only these entities
	Select      string   // transform: model selection
	CPUProfile  string   // write a CPU profile (pprof) of the run to this file
	FullRefresh bool     // transform: rebuild the selected models even when up to date
}

// Exec is what the measured child processes run besides plain cdw commands:
// "sql" (a script in a fresh DuckDB), "extract" (the extract step, for
// profiling), "transform" (the pipeline's transform step alone) and "direct"
// (the rendered models executed in DuckDB without cdw's runner: no run
// records, counts or data tests).
func Exec(ctx context.Context, mode string, o ExecOptions) error {
	script, memLimit, cfgPath, dbPath, sel, cpuProfile, fullRefresh := o.Script, o.MemoryLimit, o.Config, o.DB, o.Select, o.CPUProfile, o.FullRefresh
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	switch mode {
	case "extract":
		cfg, err := pipelines.LoadConfig(cfgPath)
		if err != nil {
			return err
		}
		_, err = (&pipelines.Runner{Cfg: cfg}).Run(ctx, pipelines.Options{Steps: pipelines.Steps{Extract: true}, Pipeline: "bench", Entities: o.Entities})
		return err
	case "sql":
		db, err := transform.Open(filepath.Join(os.TempDir(), fmt.Sprintf("cdw-bench-%d.duckdb", os.Getpid())), transform.Settings{MemoryLimit: memLimit})
		if err != nil {
			return err
		}
		defer func() {
			db.Close()
			os.Remove(filepath.Join(os.TempDir(), fmt.Sprintf("cdw-bench-%d.duckdb", os.Getpid())))
		}()
		_, err = db.ExecContext(ctx, script)
		return err
	case "transform":
		cfg, err := pipelines.LoadConfig(cfgPath)
		if err != nil {
			return err
		}
		_, err = (&pipelines.Runner{Cfg: cfg}).Run(ctx, pipelines.Options{Steps: pipelines.Steps{Transform: true}, Pipeline: "bench", Select: sel, FullRefresh: fullRefresh})
		return err
	case "direct":
		return runDirect(ctx, cfgPath, dbPath)
	}
	return fmt.Errorf("bench exec: unknown mode %q", mode)
}

// runDirect builds every model in a fresh DuckDB file the plain way: the raw
// views as cdw defines them (copied from the warehouse cdw built), then
// CREATE OR REPLACE TABLE/VIEW … AS <rendered model SQL> in dependency order;
// Go models call their own Build, as they have no SQL.
func runDirect(ctx context.Context, cfgPath, dbPath string) error {
	cfg, err := pipelines.LoadConfig(cfgPath)
	if err != nil {
		return err
	}
	project, err := (&pipelines.Runner{Cfg: cfg}).Project(ctx)
	if err != nil {
		return err
	}
	models, err := project.Select("")
	if err != nil {
		return err
	}
	db, err := transform.Open(dbPath, cfg.Settings())
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := transform.InstallFunctions(conn); err != nil {
		return err
	}
	src := filepath.Join(cfg.Warehouse, "warehouse.duckdb")
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("ATTACH '%s' AS cdw (READ_ONLY)", src)); err != nil {
		return fmt.Errorf("attaching %s (run the transform workload's cdw side first): %w", src, err)
	}
	rows, err := conn.QueryContext(ctx, "SELECT sql FROM duckdb_views() WHERE database_name = 'cdw' AND schema_name = 'raw' ORDER BY view_name")
	if err != nil {
		return err
	}
	var views []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		views = append(views, s)
	}
	rows.Close()
	if _, err := conn.ExecContext(ctx, "DETACH cdw; CREATE SCHEMA IF NOT EXISTS raw"); err != nil {
		return err
	}
	// raw.orders reads raw.shop_orders: create views until all resolve.
	for pending := views; len(pending) > 0; {
		var next []string
		var lastErr error
		for _, v := range pending {
			if _, err := conn.ExecContext(ctx, v); err != nil {
				next, lastErr = append(next, v), err
			}
		}
		if len(next) == len(pending) {
			return fmt.Errorf("creating raw views: %w", lastErr)
		}
		pending = next
	}
	vars := transform.Vars(cfg.Vars)
	for _, m := range models {
		if m.Go != nil {
			if _, _, err := m.Go.Build(ctx, conn, vars); err != nil {
				return fmt.Errorf("building Go model %s: %w", m.Name, err)
			}
			continue
		}
		body, err := transform.Render(m, vars)
		if err != nil {
			return err
		}
		kind := "TABLE"
		if m.Header.Materialized == transform.View {
			kind = "VIEW"
		}
		body = strings.TrimRight(strings.TrimSpace(body), ";")
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("CREATE OR REPLACE %s %q AS %s", kind, m.Name, body)); err != nil {
			return fmt.Errorf("building %s: %w", m.Name, err)
		}
	}
	return nil
}

// PandasPython finds a python3 that can import pandas: python3 on PATH first,
// then Debian's /usr/bin/python3. Both are tried because a version manager
// (pyenv, conda) often puts its own python3, without pandas, ahead of the
// system one that python3-pandas installs into.
func PandasPython() (string, error) {
	var tried []string
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append([]string{p}, candidates...)
	}
	for _, p := range candidates {
		if err := exec.Command(p, "-c", "import pandas").Run(); err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", p, err))
			continue
		}
		return p, nil
	}
	return "", fmt.Errorf("no python3 with pandas (tried %s)", strings.Join(tried, "; "))
}
