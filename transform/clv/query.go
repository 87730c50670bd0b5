package clv

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
)

// Fit is the result of FitFromQuery: both models plus data statistics for
// the run summary.
type Fit struct {
	BG BGNBD
	GG GammaGamma
	// Customers is the number of valid rows; Repeaters those with x > 0.
	Customers, Repeaters int
	// Skipped counts rows that were NULL or invalid in frequency, recency
	// or T (they enter neither model).
	Skipped int
	// FreqMonetaryCorr is the Pearson correlation between frequency and
	// mean spend over repeaters with positive spend (0 when undefined).
	// Gamma-Gamma assumes it is near 0; log it.
	FreqMonetaryCorr float64
	// Fallback joins the models' Fallback strings ("" when both are MLEs).
	Fallback string

	// PNBD is the Pareto/NBD fit on the same rows; Model names the
	// purchase model chosen for prediction ("bgnbd" or "pnbd") and
	// ModelReason why (see ChooseModel).
	PNBD        ParetoNBD
	Model       string
	ModelReason string
	// Holdout: the customers of the query's holdout column, and each
	// model's log-likelihood on them when fitted on the other rows (NaN
	// when there is no holdout or that fit is a fallback).
	HoldoutCustomers           int
	BGHoldoutLL, PNBDHoldoutLL float64
}

// Purchase models FitFromQuery chooses between.
const (
	ModelAuto  = "auto"
	ModelBGNBD = "bgnbd"
	ModelPNBD  = "pnbd"
)

// FitFromQuery runs query on conn and fits BG/NBD, Pareto/NBD and
// Gamma-Gamma to its rows. The query must return four numeric columns, in
// order: frequency (x), recency (t_x), T and monetary (mean repeat spend,
// may be NULL or 0 for x = 0), all in one time unit, and optionally a fifth,
// a BOOLEAN that puts the row in the holdout: both purchase models are then
// also fitted on the other rows and scored by their log-likelihood on the
// held-out ones, which is how opts.Model "auto" chooses (see chooseModel).
// Rows are streamed; identical
// (x, t_x, T) and (x, mbar) tuples are merged as they arrive, so memory
// grows with the number of distinct tuples, not with the customer count.
//
// Rows with NULL or invalid frequency/recency/T are skipped and counted.
// Errors come from the query, scanning, or invalid options; degenerate data
// give fallback models (see FitBGNBD, FitGammaGamma), not errors.
func FitFromQuery(ctx context.Context, conn *sql.Conn, query string, opts FitOptions) (Fit, error) {
	if _, err := opts.withDefaults(); err != nil {
		return Fit{}, fmt.Errorf("fitting CLV models: %w", err)
	}
	rows, err := conn.QueryContext(ctx, query)
	if err != nil {
		return Fit{}, fmt.Errorf("fitting CLV models: running query: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return Fit{}, fmt.Errorf("fitting CLV models: reading columns: %w", err)
	}
	if len(cols) != 4 && len(cols) != 5 {
		return Fit{}, fmt.Errorf("fitting CLV models: query returns %d columns %v, want 4 (frequency, recency, T, monetary) and an optional holdout flag", len(cols), cols)
	}
	model := opts.Model
	switch model {
	case "":
		model = ModelAuto
	case ModelAuto, ModelBGNBD, ModelPNBD:
	default:
		return Fit{}, fmt.Errorf("fitting CLV models: model %q: want auto, bgnbd or pnbd", opts.Model)
	}

	bgAcc, ggAcc := newBGAccumulator(), newGGAccumulator()
	trainAcc, holdAcc := newBGAccumulator(), newBGAccumulator()
	var corr pearson
	var vals [4]sql.NullFloat64
	var hold sql.NullBool
	dest := []any{&vals[0], &vals[1], &vals[2], &vals[3]}
	if len(cols) == 5 {
		dest = append(dest, &hold)
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return Fit{}, fmt.Errorf("fitting CLV models: scanning row: %w", err)
		}
		if !vals[0].Valid || !vals[1].Valid || !vals[2].Valid {
			bgAcc.skipped++
			continue
		}
		x, tx, T, ok := normalizeRFM(vals[0].Float64, vals[1].Float64, vals[2].Float64)
		if !ok {
			bgAcc.skipped++
			continue
		}
		bgAcc.add(x, tx, T)
		if len(cols) == 5 {
			if hold.Valid && hold.Bool {
				holdAcc.add(x, tx, T)
			} else {
				trainAcc.add(x, tx, T)
			}
		}
		if x > 0 {
			m := vals[3].Float64
			if !vals[3].Valid {
				ggAcc.skipped++
				continue
			}
			ggAcc.add(x, m)
			if finite(m) && m > 0 {
				corr.add(x, m)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return Fit{}, fmt.Errorf("fitting CLV models: reading rows: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Fit{}, fmt.Errorf("fitting CLV models: %w", err)
	}

	bgData := bgAcc.build()
	bg, err := fitBG(bgData, bgAcc.skipped, opts)
	if err != nil {
		return Fit{}, fmt.Errorf("fitting BG/NBD: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Fit{}, fmt.Errorf("fitting CLV models: %w", err)
	}
	gg, err := fitGG(ggAcc.build(), ggAcc.skipped, opts)
	if err != nil {
		return Fit{}, fmt.Errorf("fitting Gamma-Gamma: %w", err)
	}
	pn, err := fitPareto(bgData, opts)
	if err != nil {
		return Fit{}, fmt.Errorf("fitting Pareto/NBD: %w", err)
	}
	rho, _ := corr.value()
	f := Fit{
		PNBD:             pn,
		BGHoldoutLL:      math.NaN(),
		PNBDHoldoutLL:    math.NaN(),
		BG:               bg,
		GG:               gg,
		Customers:        int(bgData.n),
		Repeaters:        int(bgData.rep),
		Skipped:          bgAcc.skipped,
		FreqMonetaryCorr: rho,
	}
	var parts []string
	if bg.Fallback != "" {
		parts = append(parts, "BG/NBD: "+bg.Fallback)
	}
	if gg.Fallback != "" {
		parts = append(parts, "Gamma-Gamma: "+gg.Fallback)
	}
	f.Fallback = strings.Join(parts, "; ")
	if len(trainAcc.counts) > 0 && len(holdAcc.counts) > 0 {
		train, held := trainAcc.build(), holdAcc.build()
		f.HoldoutCustomers = int(held.n)
		if m, err := fitBG(train, 0, opts); err == nil && m.Fallback == "" {
			f.BGHoldoutLL = held.bgLogLikAt(m.R, m.Alpha, m.A, m.B)
		}
		if err := ctx.Err(); err != nil {
			return Fit{}, fmt.Errorf("fitting CLV models: %w", err)
		}
		if m, err := fitPareto(train, opts); err == nil && m.Fallback == "" {
			f.PNBDHoldoutLL = held.paretoLogLikAt(m.R, m.Alpha, m.S, m.Beta)
		}
	}
	f.Model, f.ModelReason = chooseModel(model, f)
	return f, nil
}

// chooseModel picks the purchase model for prediction. A forced choice
// (config clv_model) wins. Otherwise a maximum-likelihood fit beats a
// fallback, and between two MLEs the higher holdout log-likelihood wins
// (both models are densities of the same (x, t_x) given T, with four
// parameters each); without a holdout, the full-data log-likelihood
// decides. Ties and double fallbacks keep BG/NBD.
func chooseModel(choice string, f Fit) (string, string) {
	bgOK, pnOK := f.BG.Fallback == "", f.PNBD.Fallback == ""
	lls := fmt.Sprintf("log-likelihood bgnbd %.2f, pnbd %.2f", f.BG.LogLik, f.PNBD.LogLik)
	switch {
	case choice == ModelBGNBD || choice == ModelPNBD:
		return choice, "set by config (clv_model: " + choice + "); " + lls
	case !bgOK && !pnOK:
		return ModelBGNBD, "neither model could be fitted (both use the no-dropout fallback)"
	case !pnOK:
		return ModelBGNBD, "Pareto/NBD fit fell back (" + f.PNBD.Fallback + "); BG/NBD " + lls
	case !bgOK:
		return ModelPNBD, "BG/NBD fit fell back (" + f.BG.Fallback + "); Pareto/NBD " + lls
	case finite(f.BGHoldoutLL) && finite(f.PNBDHoldoutLL):
		w := ModelBGNBD
		if f.PNBDHoldoutLL > f.BGHoldoutLL {
			w = ModelPNBD
		}
		return w, fmt.Sprintf("higher holdout log-likelihood: bgnbd %.2f, pnbd %.2f on %d held-out customers (fitted on the others); full-data %s",
			f.BGHoldoutLL, f.PNBDHoldoutLL, f.HoldoutCustomers, lls)
	default:
		w := ModelBGNBD
		if f.PNBD.LogLik > f.BG.LogLik {
			w = ModelPNBD
		}
		return w, "higher full-data " + lls + " (no holdout fit)"
	}
}
