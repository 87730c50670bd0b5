package harness

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/extract/sample"
)

// cdc: the postgres source in mode: cdc, on the postgres workload's server.
//
// Throughput: cdc_orders (a copy of the orders table, --cdc-changes rows) is
// loaded once from the slot's snapshot; each run then updates every row (in
// transactions of 100k rows, untimed) and times the stream of those changes
// into raw, against a cursor-mode extract of the same changed rows and psql
// \copy of them, in the same run.
//
// Lag: pgbench updates random rows of a 100k-row table at a steady rate
// while cdw extract streams its slot back to back; a change's lag is the
// time from its commit to the commit of the raw file holding it.
func (b *bench) cdc(ctx context.Context) error {
	pg, err := b.startPostgres()
	if err != nil {
		return err
	}
	defer pg.stop()
	if err := b.pgLoad(ctx, pg); err != nil {
		return err
	}
	var total int64
	if err := pg.db.QueryRowContext(ctx, "SELECT count(*) FROM orders").Scan(&total); err != nil {
		return err
	}
	n := min(int64(b.cdcChanges), total)
	setup := fmt.Sprintf(`DROP TABLE IF EXISTS cdc_orders, cdc_load;
SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'cdw_bench%%';
DROP PUBLICATION IF EXISTS cdw_bench_orders, cdw_bench_load_rows;
CREATE TABLE cdc_orders AS SELECT * FROM orders ORDER BY order_no, line LIMIT %d;
ALTER TABLE cdc_orders ADD PRIMARY KEY (order_no, line);
CREATE INDEX ON cdc_orders (updated_at, order_no, line);
CREATE TABLE cdc_load (id int PRIMARY KEY, n int NOT NULL, note text, updated_at timestamptz NOT NULL);
INSERT INTO cdc_load SELECT g, 0, md5(g::text), now() FROM generate_series(1, 100000) g;
ANALYZE cdc_orders, cdc_load;`, n)
	if _, err := pg.db.ExecContext(ctx, setup); err != nil {
		return fmt.Errorf("setting up the cdc tables: %w", err)
	}
	conn := func(wh, mode string) string {
		return fmt.Sprintf(`warehouse: %s
sources:
  - name: bench
    kind: postgres
    host: %s
    port: %d
    database: postgres
    user: postgres
    sslmode: disable
    safety_lag: 0s
    entities:
      orders:
        table: public.cdc_orders
        %s
        key: [order_no, line]
        columns: {order_id: order_no, line_no: line, customer_id: customer, order_ts: ordered_at, product_id: sku, quantity: qty}
      load_rows:
        table: public.cdc_load
        mode: cdc
`, wh, pg.SocketDir(), pg.Port, mode)
	}
	whCDC, whCur := filepath.Join(b.dir, "wh-cdc"), filepath.Join(b.dir, "wh-cdc-cursor")
	os.RemoveAll(whCDC)
	os.RemoveAll(whCur)
	cfgCDC, cfgCur := filepath.Join(b.dir, "wh-cdc.yaml"), filepath.Join(b.dir, "wh-cdc-cursor.yaml")
	os.WriteFile(cfgCDC, []byte(conn(whCDC, "mode: cdc")), 0o644)
	os.WriteFile(cfgCur, []byte(conn(whCur, "cursor: updated_at")), 0o644)
	load, err := b.cdw(ctx, "cdc-initial", "extract", "--config", cfgCDC, "--entity", "orders")
	if err != nil {
		return err
	}
	fmt.Fprintf(b.w, "  initial load from the slot's snapshot: %d rows in %.2fs (cpu %.2fs) %.0f MB\n", n, load.Seconds, load.CPUSeconds, load.RSSMB)
	if _, err := b.cdw(ctx, "cdc-cursor-initial", "extract", "--config", cfgCur, "--entity", "orders"); err != nil {
		return err
	}
	psql, err := exec.LookPath("psql")
	if err != nil {
		return fmt.Errorf("the cdc workload needs psql: %w", err)
	}
	vsCursor := Result{Order: 1, Workload: fmt.Sprintf("PostgreSQL CDC stream → raw, %s row changes (orders, 13 columns)", human(int(n))), Rows: n,
		Ours: "cdw extract, mode: cdc (the slot's stream)", Baseline: "cdw extract, cursor mode, of the same changed rows",
		Note: fmt.Sprintf("initial load from the slot's snapshot: %.2fs, %.0f MB", load.Seconds, load.RSSMB)}
	vsPsql := vsCursor
	vsPsql.Baseline = `psql \copy (SELECT * … ORDER BY cursor, key) TO STDOUT CSV > /dev/null`
	vsPsql.Note = ""
	for i := 0; i < b.runs; i++ {
		// Every row changes, 100k rows a transaction: the change is untimed.
		var lo, hi int64
		if err := pg.db.QueryRowContext(ctx, "SELECT min(order_no), max(order_no) FROM cdc_orders").Scan(&lo, &hi); err != nil {
			return err
		}
		step := max((hi-lo+1)*100_000/n, 1)
		for a := lo; a <= hi; a += step {
			if _, err := pg.db.ExecContext(ctx, "UPDATE cdc_orders SET qty = qty + 1, updated_at = updated_at + interval '1 second' WHERE order_no >= $1 AND order_no < $2", a, a+step); err != nil {
				return fmt.Errorf("changing cdc_orders: %w", err)
			}
		}
		ours, err := b.cdw(ctx, "cdc-stream", "extract", "--config", cfgCDC, "--entity", "orders")
		if err != nil {
			return err
		}
		cur, err := b.cdw(ctx, "cdc-cursor", "extract", "--config", cfgCur, "--entity", "orders")
		if err != nil {
			return err
		}
		cp, err := b.child(ctx, "cdc-psql-devnull", nil, psql, "-h", pg.SocketDir(), "-p", strconv.Itoa(pg.Port), "-U", "postgres", "-d", "postgres",
			"-X", "-q", "-c", `\copy (SELECT * FROM cdc_orders ORDER BY updated_at, order_no, line) TO STDOUT CSV`)
		if err != nil {
			return err
		}
		fmt.Fprintf(b.w, "  run %d cdc %.2fs (cpu %.2fs) %.0f MB | cursor %.2fs (cpu %.2fs) %.0f MB | psql %.2fs (cpu %.2fs)\n",
			i+1, ours.Seconds, ours.CPUSeconds, ours.RSSMB, cur.Seconds, cur.CPUSeconds, cur.RSSMB, cp.Seconds, cp.CPUSeconds)
		vsCursor.OursRuns, vsCursor.BaseRuns = append(vsCursor.OursRuns, ours), append(vsCursor.BaseRuns, cur)
		vsPsql.OursRuns, vsPsql.BaseRuns = append(vsPsql.OursRuns, ours), append(vsPsql.BaseRuns, cp)
	}
	if err := b.save("1-postgres-cdc-0", vsCursor); err != nil {
		return err
	}
	if err := b.save("1-postgres-cdc-1", vsPsql); err != nil {
		return err
	}
	return b.cdcLag(ctx, pg, cfgCDC, whCDC)
}

// cdcLag measures replication lag under a steady pgbench write load.
func (b *bench) cdcLag(ctx context.Context, pg *pgServer, cfg, wh string) error {
	if _, err := b.cdw(ctx, "cdc-lag-initial", "extract", "--config", cfg, "--entity", "load_rows"); err != nil {
		return err
	}
	pgbench, err := exec.LookPath("pgbench")
	if err != nil {
		return fmt.Errorf("the cdc workload needs pgbench: %w", err)
	}
	script := filepath.Join(b.dir, "cdc-load.sql")
	os.WriteFile(script, []byte("\\set id random(1, 100000)\nUPDATE cdc_load SET n = n + 1, updated_at = clock_timestamp() WHERE id = :id;\n"), 0o644)
	dur := b.cdcSeconds
	load := exec.CommandContext(ctx, pgbench, "-n", "-h", pg.SocketDir(), "-p", strconv.Itoa(pg.Port), "-U", "postgres", "-c", "2", "-j", "1",
		"-R", strconv.Itoa(b.cdcRate), "-T", strconv.Itoa(dur), "-f", script, "postgres")
	logf, _ := os.Create(filepath.Join(b.dir, "logs", "cdc-pgbench.log"))
	defer logf.Close()
	load.Stdout, load.Stderr = logf, logf
	if err := load.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- load.Wait() }()
	var runs []Measurement
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("pgbench: %w (log %s)", err, filepath.Join(b.dir, "logs", "cdc-pgbench.log"))
			}
			running = false
		default:
		}
		m, err := b.cdw(ctx, "cdc-lag", "extract", "--config", cfg, "--entity", "load_rows")
		if err != nil {
			return err
		}
		runs = append(runs, m)
	}
	st, err := extract.StateStore{Dir: wh}.Load("bench", "load_rows")
	if err != nil {
		return err
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	var parts []string
	for _, f := range st.Files[1:] { // the first is the initial load
		parts = append(parts, fmt.Sprintf("SELECT epoch_us(TIMESTAMPTZ '%s') AS at_us, _cdw_commit_ts FROM read_parquet('%s')",
			f.At.Format(time.RFC3339Nano), filepath.Join(wh, f.Path)))
	}
	if len(parts) == 0 {
		return fmt.Errorf("the lag run streamed nothing")
	}
	var changes int64
	var p50, p95, pmax float64
	q := "SELECT count(*), quantile_cont(lag, 0.5), quantile_cont(lag, 0.95), max(lag) FROM (SELECT (at_us - epoch_us(_cdw_commit_ts)) / 1e6 AS lag FROM (" +
		strings.Join(parts, " UNION ALL ") + "))"
	if err := db.QueryRowContext(ctx, q).Scan(&changes, &p50, &p95, &pmax); err != nil {
		return fmt.Errorf("computing the lag: %w", err)
	}
	pb, _ := os.ReadFile(filepath.Join(b.dir, "logs", "cdc-pgbench.log"))
	tps := ""
	for _, l := range strings.Split(string(pb), "\n") {
		if strings.HasPrefix(l, "tps = ") {
			tps = strings.TrimSpace(l)
		}
	}
	med := median(runs)
	r := Result{Order: 1, Workload: fmt.Sprintf("PostgreSQL CDC replication lag, pgbench -R %d for %ds (2 clients, random single-row updates)", b.cdcRate, dur),
		Rows: changes, Ours: "cdw extract, mode: cdc, back to back", OursRuns: runs, Target: "–",
		Note: fmt.Sprintf("%d changes streamed by %d extracts (median %.2fs each); lag from commit to the raw file's commit: p50 %.2fs, p95 %.2fs, max %.2fs; pgbench %s",
			changes, len(runs), med.Seconds, p50, p95, pmax, tps)}
	fmt.Fprintf(b.w, "  %s\n", r.Note)
	return b.save("1-postgres-cdc-2", r)
}

// pgLoad fills the bench tables once per --pg-orders (a marker file says so).
func (b *bench) pgLoad(ctx context.Context, pg *pgServer) error {
	marker := filepath.Join(b.dir, "pg", fmt.Sprintf(".loaded-%d", b.pgOrders))
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	start := time.Now()
	// 0.4 tickets per order gives about one wide ticket per 5 order lines.
	n, err := sample.LoadPostgres(ctx, pg.DSN, sample.Options{Customers: max(b.pgOrders/10, 100), Orders: b.pgOrders, TicketRate: 0.4})
	if err != nil {
		return err
	}
	fmt.Fprintf(b.w, "  loaded %d order lines and %d tickets in %.1fs\n", n.OrderLines, n.Tickets, time.Since(start).Seconds())
	return os.WriteFile(marker, nil, 0o644)
}
