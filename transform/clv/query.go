package clv

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"sync"
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
// held-out ones, which is how opts.Model "auto" chooses (see chooseModel);
// with opts.Model set to one model, only that model's holdout fit runs (the
// other's holdout log-likelihood is NaN). Rows are streamed; identical
// (x, t_x, T) and (x, mbar) tuples are merged as they arrive, so memory
// grows with the number of distinct tuples, not with the customer count,
// and so does the cost of each likelihood evaluation. The fits run
// concurrently.
//
// Rows with NULL or invalid frequency/recency/T are skipped and counted.
// Errors come from the query, scanning, or invalid options; degenerate data
// give fallback models (see FitBGNBD, FitGammaGamma), not errors.
func FitFromQuery(ctx context.Context, conn *sql.Conn, query string, opts FitOptions) (Fit, error) {
	if _, err := opts.withDefaults(); err != nil {
		return Fit{}, fmt.Errorf("fitting CLV models: %w", err)
	}
	model := opts.Model
	switch model {
	case "":
		model = ModelAuto
	case ModelAuto, ModelBGNBD, ModelPNBD:
	default:
		return Fit{}, fmt.Errorf("fitting CLV models: model %q: want auto, bgnbd or pnbd", opts.Model)
	}
	in, err := readFitInput(ctx, conn, query)
	if err != nil {
		return Fit{}, fmt.Errorf("fitting CLV models: %w", err)
	}
	f, err := in.fit(model, opts)
	if err != nil {
		return Fit{}, err
	}
	if err := ctx.Err(); err != nil {
		return Fit{}, fmt.Errorf("fitting CLV models: %w", err)
	}
	f.Model, f.ModelReason = chooseModel(model, f)
	return f, nil
}

// fitInput is what FitFromQuery read: the merged tuples of all rows, of
// the training and held-out rows, and of the repeaters' spend.
type fitInput struct {
	all, train, held *bgAccumulator
	gg               *ggAccumulator
	corr             pearson
	holdout          bool // the query has the holdout column
}

// readFitInput streams the query's rows into merged tuples.
func readFitInput(ctx context.Context, conn *sql.Conn, query string) (*fitInput, error) {
	rows, err := conn.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("running query: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("reading columns: %w", err)
	}
	if len(cols) != 4 && len(cols) != 5 {
		return nil, fmt.Errorf("query returns %d columns %v, want 4 (frequency, recency, T, monetary) and an optional holdout flag", len(cols), cols)
	}
	in := &fitInput{all: newBGAccumulator(), train: newBGAccumulator(), held: newBGAccumulator(),
		gg: newGGAccumulator(), holdout: len(cols) == 5}
	var vals [4]sql.NullFloat64
	var hold sql.NullBool
	dest := []any{&vals[0], &vals[1], &vals[2], &vals[3]}
	if in.holdout {
		dest = append(dest, &hold)
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("scanning row: %w", err)
		}
		in.add(vals, hold.Valid && hold.Bool)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading rows: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return in, nil
}

// add records one row (frequency, recency, T, monetary).
func (in *fitInput) add(vals [4]sql.NullFloat64, held bool) {
	if !vals[0].Valid || !vals[1].Valid || !vals[2].Valid {
		in.all.skipped++
		return
	}
	x, tx, T, ok := normalizeRFM(vals[0].Float64, vals[1].Float64, vals[2].Float64)
	if !ok {
		in.all.skipped++
		return
	}
	in.all.add(x, tx, T)
	if in.holdout {
		if held {
			in.held.add(x, tx, T)
		} else {
			in.train.add(x, tx, T)
		}
	}
	if x == 0 {
		return
	}
	if m := vals[3].Float64; !vals[3].Valid {
		in.gg.skipped++
	} else {
		in.gg.add(x, m)
		if finite(m) && m > 0 {
			in.corr.add(x, m)
		}
	}
}

// fit runs the fits concurrently: both purchase models and Gamma-Gamma on
// all rows, and the purchase models the choice needs (both for auto, else
// the configured one) on the training rows, scored on the held-out ones.
func (in *fitInput) fit(model string, opts FitOptions) (Fit, error) {
	all := in.all.build()
	f := Fit{BGHoldoutLL: math.NaN(), PNBDHoldoutLL: math.NaN(), Customers: int(all.n), Repeaters: int(all.rep), Skipped: in.all.skipped}
	f.FreqMonetaryCorr, _ = in.corr.value()
	var train, held *bgData
	if len(in.train.counts) > 0 && len(in.held.counts) > 0 {
		train, held = in.train.build(), in.held.build()
		f.HoldoutCustomers = int(held.n)
	}
	var bgErr, ggErr, pnErr error
	var wg sync.WaitGroup
	wg.Go(func() { f.BG, bgErr = fitBG(all, in.all.skipped, opts) })
	wg.Go(func() { f.PNBD, pnErr = fitPareto(all, opts) })
	wg.Go(func() { f.GG, ggErr = fitGG(in.gg.build(), in.gg.skipped, opts) })
	if train != nil && model != ModelPNBD {
		wg.Go(func() {
			if m, err := fitBG(train, 0, opts); err == nil && m.Fallback == "" {
				f.BGHoldoutLL = held.bgLogLikAt(m.R, m.Alpha, m.A, m.B)
			}
		})
	}
	if train != nil && model != ModelBGNBD {
		wg.Go(func() {
			if m, err := fitPareto(train, opts); err == nil && m.Fallback == "" {
				f.PNBDHoldoutLL = held.paretoLogLikAt(m.R, m.Alpha, m.S, m.Beta)
			}
		})
	}
	wg.Wait()
	switch {
	case bgErr != nil:
		return Fit{}, fmt.Errorf("fitting BG/NBD: %w", bgErr)
	case ggErr != nil:
		return Fit{}, fmt.Errorf("fitting Gamma-Gamma: %w", ggErr)
	case pnErr != nil:
		return Fit{}, fmt.Errorf("fitting Pareto/NBD: %w", pnErr)
	}
	var parts []string
	if f.BG.Fallback != "" {
		parts = append(parts, "BG/NBD: "+f.BG.Fallback)
	}
	if f.GG.Fallback != "" {
		parts = append(parts, "Gamma-Gamma: "+f.GG.Fallback)
	}
	f.Fallback = strings.Join(parts, "; ")
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
