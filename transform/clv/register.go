package clv

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cdwhq/cdw/transform"
)

// InputModel is the SQL model whose rows (frequency, recency, t, monetary per
// customer, in days) the clv_params Go model fits on.
const InputModel = "customer_summary"

// TimeUnit is the time unit of InputModel's recency and t, and so of the
// fitted alpha.
const TimeUnit = "day"

// Every warehouse connection gets the CLV SQL functions, and every project
// gets the clv_params model, by importing this package.
func init() {
	transform.RegisterFunctions("clv", RegisterUDFs)
	transform.RegisterGoModel(transform.GoModel{
		Name: "clv_params",
		Deps: []string{InputModel},
		Description: "The BG/NBD, Pareto/NBD and Gamma-Gamma parameters fitted by maximum likelihood on " + InputModel +
			" (time unit: days); one row. customer_value scores every customer with them, using the purchase model in " +
			"model: var clv_model (auto, bgnbd or pnbd; default auto = the higher log-likelihood on a holdout of a fifth " +
			"of the customers, by hash of customer_key, when both models are fitted on the rest). fallback is empty " +
			"when the BG/NBD and Gamma-Gamma fits are MLEs, otherwise it says which documented fallback was used and why.",
		Columns: []transform.ColumnDoc{
			{Name: "r", Description: "BG/NBD shape of the purchase-rate Gamma distribution"},
			{Name: "alpha", Description: "BG/NBD rate (scale) of the purchase-rate Gamma distribution, per day"},
			{Name: "a", Description: "BG/NBD Beta parameter a of the dropout probability"},
			{Name: "b", Description: "BG/NBD Beta parameter b of the dropout probability"},
			{Name: "p", Description: "Gamma-Gamma shape of transaction values"},
			{Name: "q", Description: "Gamma-Gamma shape of the spend-scale distribution"},
			{Name: "gamma", Description: "Gamma-Gamma scale of the spend-scale distribution"},
			{Name: "gg_population_mean", Description: "mean repeat spend over the customers in the Gamma-Gamma fit"},
			{Name: "bg_loglik", Description: "BG/NBD maximised log-likelihood (0 for a fallback)"},
			{Name: "gg_loglik", Description: "Gamma-Gamma maximised log-likelihood (0 for a fallback)"},
			{Name: "customers", Description: "customers in the BG/NBD fit"},
			{Name: "repeaters", Description: "customers with at least one repeat purchase day"},
			{Name: "gg_customers", Description: "repeat customers with positive mean spend (the Gamma-Gamma fit)"},
			{Name: "freq_monetary_corr", Description: "correlation of frequency and mean spend; Gamma-Gamma assumes ≈ 0"},
			{Name: "time_unit", Description: "the time unit of recency, T and alpha (day)"},
			{Name: "fallback", Description: "empty for MLE fits, else the fallback used and why"},
			{Name: "model", Description: "the purchase model customer_value predicts with: bgnbd or pnbd"},
			{Name: "model_reason", Description: "why that model: config, a fallback, or both log-likelihoods"},
			{Name: "pnbd_r", Description: "Pareto/NBD shape of the purchase-rate Gamma distribution"},
			{Name: "pnbd_alpha", Description: "Pareto/NBD rate of the purchase-rate Gamma distribution, per day"},
			{Name: "pnbd_s", Description: "Pareto/NBD shape of the dropout-rate Gamma distribution"},
			{Name: "pnbd_beta", Description: "Pareto/NBD rate of the dropout-rate Gamma distribution, per day"},
			{Name: "pnbd_loglik", Description: "Pareto/NBD maximised log-likelihood (0 for a fallback)"},
			{Name: "pnbd_fallback", Description: "empty for a Pareto/NBD MLE, else the fallback used and why"},
			{Name: "bg_fallback", Description: "empty for a BG/NBD MLE, else the fallback used and why"},
			{Name: "gg_fallback", Description: "empty for a Gamma-Gamma MLE, else the fallback used and why"},
			{Name: "bg_boundary", Description: "the BG/NBD fit is at a boundary: an estimate with |log θ| > 20 (the fallback is used), or a likelihood-ratio test cannot reject the no-dropout NBD (a → 0): 2·(bg_loglik − nodropout_loglik) < 3.84 (informational: the fit is kept)"},
			{Name: "pnbd_boundary", Description: "the Pareto/NBD fit is at a boundary, as bg_boundary (the no-dropout limit is s → 0)"},
			{Name: "bg_boundary_reason", Description: "which boundary test fired for BG/NBD, with the numbers (empty when not at a boundary)"},
			{Name: "pnbd_boundary_reason", Description: "which boundary test fired for Pareto/NBD, with the numbers (empty when not at a boundary)"},
			{Name: "nodropout_loglik", Description: "maximised log-likelihood of the no-dropout NBD, the limit both purchase models share (NULL when nobody repeated)"},
			{Name: "holdout_customers", Description: "customers held out for the model choice"},
			{Name: "bg_holdout_loglik", Description: "BG/NBD log-likelihood on the holdout when fitted on the other customers (NULL: no holdout or a fallback)"},
			{Name: "pnbd_holdout_loglik", Description: "Pareto/NBD log-likelihood on the holdout when fitted on the other customers"},
			{Name: "fitted_at", Description: "when the fit ran"},
		},
		Tags:  []string{"clv"},
		Build: buildParams,
	})
}

// buildParams fits both models on InputModel and writes the one-row
// clv_params table. The var clv_penalizer (default 0) sets
// FitOptions.Penalizer for small or noisy data.
func buildParams(ctx context.Context, conn *sql.Conn, vars transform.Vars) (int64, string, error) {
	var opts FitOptions
	if v, ok := vars["clv_penalizer"]; ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, "", fmt.Errorf("var clv_penalizer: %q is not a number", v)
		}
		opts.Penalizer = f
	}
	if v, ok := vars["clv_model"]; ok {
		opts.Model = strings.ToLower(strings.TrimSpace(v))
	}
	// a fixed fifth of the customers, by key, is the model-choice holdout
	fit, err := FitFromQuery(ctx, conn, "SELECT frequency, recency, t, monetary, hash(customer_key) % 5 = 0 FROM "+InputModel, opts)
	if err != nil {
		return 0, "", fmt.Errorf("fitting on %s: %w", InputModel, err)
	}
	if _, err := conn.ExecContext(ctx, `CREATE OR REPLACE TABLE clv_params (
		r DOUBLE, alpha DOUBLE, a DOUBLE, b DOUBLE, p DOUBLE, q DOUBLE, gamma DOUBLE,
		gg_population_mean DOUBLE, bg_loglik DOUBLE, gg_loglik DOUBLE,
		customers BIGINT, repeaters BIGINT, gg_customers BIGINT, freq_monetary_corr DOUBLE,
		time_unit VARCHAR, fallback VARCHAR, fitted_at TIMESTAMPTZ,
		model VARCHAR, model_reason VARCHAR, pnbd_r DOUBLE, pnbd_alpha DOUBLE, pnbd_s DOUBLE, pnbd_beta DOUBLE,
		pnbd_loglik DOUBLE, pnbd_fallback VARCHAR, bg_fallback VARCHAR, gg_fallback VARCHAR, bg_boundary BOOLEAN, pnbd_boundary BOOLEAN,
		holdout_customers BIGINT, bg_holdout_loglik DOUBLE, pnbd_holdout_loglik DOUBLE,
		bg_boundary_reason VARCHAR, pnbd_boundary_reason VARCHAR, nodropout_loglik DOUBLE)`); err != nil {
		return 0, "", fmt.Errorf("creating clv_params: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `INSERT INTO clv_params VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
		?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		fit.BG.R, fit.BG.Alpha, fit.BG.A, fit.BG.B, fit.GG.P, fit.GG.Q, fit.GG.Gamma,
		finiteOrNil(fit.GG.PopulationMean), finiteOrNil(fit.BG.LogLik), finiteOrNil(fit.GG.LogLik),
		int64(fit.Customers), int64(fit.Repeaters), int64(fit.GG.Customers), finiteOrNil(fit.FreqMonetaryCorr),
		TimeUnit, fit.Fallback, time.Now().UTC(),
		fit.Model, fit.ModelReason, fit.PNBD.R, fit.PNBD.Alpha, fit.PNBD.S, fit.PNBD.Beta,
		finiteOrNil(fit.PNBD.LogLik), fit.PNBD.Fallback, fit.BG.Fallback, fit.GG.Fallback, fit.BG.Boundary, fit.PNBD.Boundary,
		int64(fit.HoldoutCustomers), finiteOrNil(fit.BGHoldoutLL), finiteOrNil(fit.PNBDHoldoutLL),
		fit.BG.BoundaryReason, fit.PNBD.BoundaryReason, noDropoutOrNil(fit)); err != nil {
		return 0, "", fmt.Errorf("writing clv_params: %w", err)
	}
	notes := fmt.Sprintf("%d customers, %d repeaters; model %s: %s", fit.Customers, fit.Repeaters, fit.Model, fit.ModelReason)
	if fit.Fallback != "" {
		notes += "; fallback: " + fit.Fallback
	}
	return 1, notes, nil
}

// noDropoutOrNil is the no-dropout NBD log-likelihood of whichever
// purchase model fitted (both share it), else NULL.
func noDropoutOrNil(fit Fit) any {
	for _, v := range []float64{fit.BG.NoDropoutLogLik, fit.PNBD.NoDropoutLogLik} {
		if v != 0 {
			return finiteOrNil(v)
		}
	}
	return nil
}

// finiteOrNil keeps NaN and ±Inf out of the table: they would surface in
// marts as NaN.
func finiteOrNil(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return f
}
