package clv

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2" // registers the "duckdb" driver

	"github.com/cdwhq/cdw/internal/datasets"
)

// openDuckDB returns a connection to a fresh in-memory DuckDB with the UDFs
// registered.
func openDuckDB(tb testing.TB) *sql.Conn {
	tb.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		tb.Fatalf("open duckdb: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	conn, err := db.Conn(context.Background())
	if err != nil {
		tb.Fatalf("conn: %v", err)
	}
	tb.Cleanup(func() { conn.Close() })
	if err := RegisterUDFs(conn); err != nil {
		tb.Fatalf("RegisterUDFs: %v", err)
	}
	return conn
}

// queryFloat runs a single-value query; ok is false for NULL.
func queryFloat(tb testing.TB, conn *sql.Conn, q string, args ...any) (float64, bool) {
	tb.Helper()
	var v sql.NullFloat64
	if err := conn.QueryRowContext(context.Background(), q, args...).Scan(&v); err != nil {
		tb.Fatalf("%s: %v", q, err)
	}
	return v.Float64, v.Valid
}

func TestUDFsScalar(t *testing.T) {
	conn := openDuckDB(t)
	bg := BGNBD{R: 0.243, Alpha: 4.414, A: 0.793, B: 2.426}
	gg := GammaGamma{P: 6.25, Q: 3.74, Gamma: 15.44}
	const bgArgs = "0.243, 4.414, 0.793, 2.426"
	const ggArgs = "6.25, 3.74, 15.44"
	cases := []struct {
		sql  string
		want float64 // NaN means NULL expected
	}{
		{"bgnbd_p_alive(" + bgArgs + ", 2, 30.43, 38.86)", bg.ProbabilityAlive(2, 30.43, 38.86)},
		{"bgnbd_p_alive(" + bgArgs + ", 0, 0, 38.86)", 1},
		{"bgnbd_p_alive(1, 2, 1, 2, 0, 0, 10)", 1}, // INTEGER args cast to DOUBLE
		{"bgnbd_expected_purchases(" + bgArgs + ", 39, 2, 30.43, 38.86)", bg.ExpectedPurchases(39, 2, 30.43, 38.86)},
		{"bgnbd_expected_purchases(" + bgArgs + ", 400, 0, 0, 0)", bg.ExpectedPurchases(400, 0, 0, 0)},
		{"bgnbd_p_purchase(" + bgArgs + ", 39, 2, 30.43, 38.86)", bg.ProbabilityPurchase(39, 2, 30.43, 38.86)},
		{"pnbd_p_purchase(0.553, 10.578, 0.606, 11.669, 39, 2, 30.43, 38.86)",
			ParetoNBD{R: 0.553, Alpha: 10.578, S: 0.606, Beta: 11.669}.ProbabilityPurchase(39, 2, 30.43, 38.86)},
		{"pnbd_p_purchase(0.553, 10.578, 0.606, 11.669, -1, 2, 30.43, 38.86)", math.NaN()},
		{"gg_expected_spend(" + ggArgs + ", 2, 22.35)", gg.ConditionalExpectedSpend(2, 22.35)},
		{"gg_expected_spend(" + ggArgs + ", 0, 0)", gg.ConditionalExpectedSpend(0, 0)},
		{"clv_value(" + bgArgs + ", " + ggArgs + ", 2, 30.43, 38.86, 22.35, 12, 0.01, 4.345)", CLV(bg, gg, 2, 30.43, 38.86, 22.35, 12, 0.01, 4.345)},
		// NULL in → NULL out.
		{"bgnbd_p_alive(" + bgArgs + ", NULL, 30.43, 38.86)", math.NaN()},
		{"bgnbd_expected_purchases(NULL, 4.414, 0.793, 2.426, 39, 2, 30.43, 38.86)", math.NaN()},
		{"gg_expected_spend(" + ggArgs + ", 2, NULL)", math.NaN()},
		{"clv_value(" + bgArgs + ", " + ggArgs + ", 2, 30.43, 38.86, 22.35, NULL, 0.01, 4.345)", math.NaN()},
		// Invalid input → NULL, never NaN.
		{"bgnbd_p_alive(-0.243, 4.414, 0.793, 2.426, 2, 30.43, 38.86)", math.NaN()},
		{"bgnbd_p_alive(" + bgArgs + ", 2.5, 30.43, 38.86)", math.NaN()},
		{"bgnbd_p_alive(" + bgArgs + ", 'nan'::DOUBLE, 30.43, 38.86)", math.NaN()},
		{"bgnbd_expected_purchases(" + bgArgs + ", 'inf'::DOUBLE, 2, 30.43, 38.86)", math.NaN()},
		{"bgnbd_expected_purchases(" + bgArgs + ", -1, 2, 30.43, 38.86)", math.NaN()},
		{"gg_expected_spend(6.25, 0.9, 15.44, 0, 0)", math.NaN()}, // q ≤ 1: infinite population mean
		{"clv_value(" + bgArgs + ", " + ggArgs + ", 2, 30.43, 38.86, 22.35, 12.5, 0.01, 4.345)", math.NaN()},
		{"clv_value(" + bgArgs + ", " + ggArgs + ", 2, 30.43, 38.86, 22.35, 12, -1, 4.345)", math.NaN()},
		{"clv_value(" + bgArgs + ", " + ggArgs + ", 2, 30.43, 38.86, 22.35, 12, 0.01, 0)", math.NaN()},
	}
	for _, c := range cases {
		got, ok := queryFloat(t, conn, "SELECT "+c.sql)
		switch {
		case math.IsNaN(c.want) && ok:
			t.Errorf("%s = %v, want NULL", c.sql, got)
		case !math.IsNaN(c.want) && !ok:
			t.Errorf("%s = NULL, want %v", c.sql, c.want)
		case ok && relErr(got, c.want) > 1e-12:
			t.Errorf("%s = %.15g, want %.15g", c.sql, got, c.want)
		}
	}
}

// cdnowCSVSQL returns a DuckDB table expression over the CDNOW summary
// file with money (columns x, t_x, T, zbar).
func cdnowCSVSQL(tb testing.TB) string {
	path := filepath.Join(datasets.Path(tb, "cdnow"), "cdnow_customers_summary_with_transactions.csv")
	return fmt.Sprintf("read_csv('%s', header = true, columns = {'ID': 'INTEGER', 'x': 'DOUBLE', 't_x': 'DOUBLE', 'T': 'DOUBLE', 'zbar': 'DOUBLE'})",
		strings.ReplaceAll(path, "'", "''"))
}

// FitFromQuery reproduces the in-memory fits, and the UDFs evaluated over
// the whole table with the fitted parameters agree with the Go methods row
// by row.
func TestFitFromQueryAndUDFsOnCDNOW(t *testing.T) {
	ctx := context.Background()
	conn := openDuckDB(t)
	src := cdnowCSVSQL(t)
	fit, err := FitFromQuery(ctx, conn, "SELECT x, t_x, T, zbar FROM "+src, FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cs := loadSummaryCSV(t, "cdnow_customers_summary_with_transactions.csv")
	bg, _ := FitBGNBD(cs, FitOptions{})
	gg, _ := FitGammaGamma(cs, FitOptions{})
	if fit.BG.R != bg.R || fit.BG.Alpha != bg.Alpha || fit.BG.A != bg.A || fit.BG.B != bg.B || fit.BG.LogLik != bg.LogLik {
		t.Errorf("FitFromQuery BG %+v, FitBGNBD %+v", fit.BG, bg)
	}
	if fit.GG.P != gg.P || fit.GG.Q != gg.Q || fit.GG.Gamma != gg.Gamma {
		t.Errorf("FitFromQuery GG %+v, FitGammaGamma %+v", fit.GG, gg)
	}
	if fit.Customers != 2357 || fit.Repeaters != 946 || fit.Skipped != 0 || fit.Fallback != "" {
		t.Errorf("fit summary: %+v", fit)
	}
	if round(fit.FreqMonetaryCorr, 6) != 0.113884 {
		t.Errorf("corr %v, lifetimes 0.113884", fit.FreqMonetaryCorr)
	}
	t.Logf("FitFromQuery: BG r=%.4f α=%.4f a=%.4f b=%.4f (%d tuples), GG p=%.3f q=%.3f γ=%.3f, corr=%.4f",
		fit.BG.R, fit.BG.Alpha, fit.BG.A, fit.BG.B, fit.BG.Tuples, fit.GG.P, fit.GG.Q, fit.GG.Gamma, fit.FreqMonetaryCorr)

	q := fmt.Sprintf(`SELECT x, t_x, T, zbar,
		bgnbd_p_alive($1, $2, $3, $4, x, t_x, T),
		bgnbd_expected_purchases($1, $2, $3, $4, 39, x, t_x, T),
		gg_expected_spend($5, $6, $7, x, zbar),
		clv_value($1, $2, $3, $4, $5, $6, $7, x, t_x, T, zbar, 12, 0.01, 4.345)
		FROM %s`, src)
	rows, err := conn.QueryContext(ctx, q, fit.BG.R, fit.BG.Alpha, fit.BG.A, fit.BG.B, fit.GG.P, fit.GG.Q, fit.GG.Gamma)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n int
	var total float64
	for rows.Next() {
		var x, tx, T, m float64
		var pa, ep, sp, cl sql.NullFloat64
		if err := rows.Scan(&x, &tx, &T, &m, &pa, &ep, &sp, &cl); err != nil {
			t.Fatal(err)
		}
		for i, c := range []struct {
			got  sql.NullFloat64
			want float64
		}{
			{pa, fit.BG.ProbabilityAlive(x, tx, T)},
			{ep, fit.BG.ExpectedPurchases(39, x, tx, T)},
			{sp, fit.GG.ConditionalExpectedSpend(x, m)},
			{cl, CLV(fit.BG, fit.GG, x, tx, T, m, 12, 0.01, 4.345)},
		} {
			if !c.got.Valid || !finite(c.got.Float64) || relErr(c.got.Float64, c.want) > 1e-12 {
				t.Fatalf("row %d col %d: SQL %v, Go %v", n, i, c.got, c.want)
			}
		}
		total += cl.Float64
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 2357 {
		t.Errorf("%d rows", n)
	}
	t.Logf("total 12-month CLV of the cohort (1%%/month, 4.345 weeks/month): %.2f", total)
}

func TestFitFromQueryEdgeCases(t *testing.T) {
	ctx := context.Background()
	conn := openDuckDB(t)

	// Wrong shape and bad SQL are errors with context.
	if _, err := FitFromQuery(ctx, conn, "SELECT 1, 2, 3", FitOptions{}); err == nil || !strings.Contains(err.Error(), "want 4") {
		t.Errorf("3 columns: err = %v", err)
	}
	if _, err := FitFromQuery(ctx, conn, "SELECT * FROM no_such_table", FitOptions{}); err == nil || !strings.Contains(err.Error(), "running query") {
		t.Errorf("bad SQL: err = %v", err)
	}
	if _, err := FitFromQuery(ctx, conn, "SELECT 1, 2, 3, 4", FitOptions{Penalizer: -1}); err == nil {
		t.Error("invalid options accepted")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := FitFromQuery(cctx, conn, "SELECT 1.0, 1.0, 2.0, 3.0", FitOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: err = %v", err)
	}

	// Empty result: fallback, no error.
	fit, err := FitFromQuery(ctx, conn, "SELECT 1.0, 1.0, 2.0, 3.0 WHERE false", FitOptions{})
	if err != nil || fit.Customers != 0 || !strings.Contains(fit.Fallback, "BG/NBD") || !strings.Contains(fit.Fallback, "Gamma-Gamma") {
		t.Errorf("empty: %+v %v", fit, err)
	}

	// NULLs and invalid rows are skipped; integer and DECIMAL columns work;
	// NULL monetary only removes the row from Gamma-Gamma.
	fit, err = FitFromQuery(ctx, conn, `SELECT * FROM (VALUES
		(2::INTEGER, 10.5::DECIMAL(8,2), 20::BIGINT, 12.5::DECIMAL(8,2)),
		(NULL, 1, 2, 3),
		(-1, 0, 5, 0),
		(1.5, 1, 5, 3),
		(1, 3, 4, NULL),
		(0, 0, 7, NULL)) t(f, r, a, m)`, FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fit.Customers != 3 || fit.Repeaters != 2 || fit.Skipped != 3 || fit.GG.Customers != 1 || fit.GG.Skipped != 1 {
		t.Errorf("edge rows: customers=%d repeaters=%d skipped=%d gg.customers=%d gg.skipped=%d",
			fit.Customers, fit.Repeaters, fit.Skipped, fit.GG.Customers, fit.GG.Skipped)
	}
	if fit.Fallback == "" || fit.GG.PopulationMean != 12.5 {
		t.Errorf("edge rows: %+v", fit)
	}
}

// The README's end-to-end example runs as written.
func TestREADMEExample(t *testing.T) {
	ctx := context.Background()
	conn := openDuckDB(t)
	if _, err := conn.ExecContext(ctx, `CREATE TABLE customer_rfm_weeks AS
		SELECT ID AS customer_id, x AS frequency, t_x AS recency, T, zbar AS monetary FROM `+cdnowCSVSQL(t)); err != nil {
		t.Fatal(err)
	}
	fit, err := FitFromQuery(ctx, conn,
		`SELECT frequency, recency, T, monetary FROM customer_rfm_weeks`, FitOptions{})
	if err != nil || fit.Fallback != "" {
		t.Fatalf("fit: %v %q", err, fit.Fallback)
	}
	_, err = conn.ExecContext(ctx, `
    CREATE TABLE customer_clv AS
    SELECT customer_id,
           bgnbd_p_alive($1, $2, $3, $4, frequency, recency, T)                AS p_alive,
           bgnbd_expected_purchases($1, $2, $3, $4, 52, frequency, recency, T) AS purchases_52w,
           clv_value($1, $2, $3, $4, $5, $6, $7, frequency, recency, T, monetary,
                     12, 0.01, 4.345)                                          AS clv_12m
    FROM customer_rfm_weeks`,
		fit.BG.R, fit.BG.Alpha, fit.BG.A, fit.BG.B, fit.GG.P, fit.GG.Q, fit.GG.Gamma)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := queryFloat(t, conn, `SELECT clv_12m FROM customer_clv WHERE customer_id = 1`)
	want := CLV(fit.BG, fit.GG, 2, 30.43, 38.86, 22.35, 12, 0.01, 4.345)
	if !ok || relErr(got, want) > 1e-12 {
		t.Errorf("clv_12m for customer 1 = %v, want %v", got, want)
	}
	n, _ := queryFloat(t, conn, `SELECT count(*) FROM customer_clv WHERE p_alive IS NULL OR isnan(clv_12m) OR clv_12m < 0`)
	if n != 0 {
		t.Errorf("%v rows with NULL/NaN/negative outputs", n)
	}
}
