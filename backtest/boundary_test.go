package backtest_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
)

// clvBoundary is one purchase model's boundary flag in clv_params.
type clvBoundary struct {
	model, reason     string
	boundary          bool
	loglik, nodropout float64
	dropout           float64 // BG/NBD a, Pareto/NBD s
	fallback          string
}

// boundaries reads both purchase models' boundary flags from clv_params.
func boundaries(t *testing.T, conn interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) []clvBoundary {
	t.Helper()
	var bg, pn clvBoundary
	bg.model, pn.model = "bgnbd", "pnbd"
	var nd sql.NullFloat64
	if err := conn.QueryRowContext(context.Background(), `SELECT bg_boundary, bg_boundary_reason, bg_loglik, bg_fallback,
		pnbd_boundary, pnbd_boundary_reason, pnbd_loglik, pnbd_fallback, nodropout_loglik, a, pnbd_s FROM clv_params`).Scan(
		&bg.boundary, &bg.reason, &bg.loglik, &bg.fallback, &pn.boundary, &pn.reason, &pn.loglik, &pn.fallback, &nd, &bg.dropout, &pn.dropout); err != nil {
		t.Fatal(err)
	}
	bg.nodropout, pn.nodropout = nd.Float64, nd.Float64
	for _, m := range []clvBoundary{bg, pn} {
		t.Logf("%s: at_boundary %v (%s); a or s = %.3g; loglik %.2f, no-dropout NBD %.2f; fallback %q", m.model, m.boundary, m.reason, m.dropout, m.loglik, m.nodropout, m.fallback)
		if m.boundary != (m.reason != "") {
			t.Errorf("%s: at_boundary %v with reason %q", m.model, m.boundary, m.reason)
		}
	}
	return []clvBoundary{bg, pn}
}

// The boundary flag of clv_model on the shared data, through the pipeline
// (the backtests' scratch builds as of their cutoffs): CDNOW master has
// real dropout (neither fit is flagged); Online Retail's fits run toward
// "no dropout" (BG/NBD a ≈ 2e-5) and the likelihood-ratio test says so.
func TestCLVBoundaryOnSharedData(t *testing.T) {
	s, _ := shared(t, "cdnow_master")
	for _, m := range boundaries(t, s.Conn()) {
		if m.boundary {
			t.Errorf("CDNOW master: %s flagged at_boundary (%s); customers there do drop out", m.model, m.reason)
		}
	}
	s, _ = shared(t, "online_retail")
	bs := boundaries(t, s.Conn())
	if bg := bs[0]; !bg.boundary || !strings.Contains(bg.reason, "dropout not identified") {
		t.Errorf("Online Retail: BG/NBD at_boundary %v (%q), want the ΔLL reason (a ≈ 2e-5)", bg.boundary, bg.reason)
	}
}
