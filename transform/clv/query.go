package clv

import (
	"context"
	"database/sql"
	"fmt"
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
}

// FitFromQuery runs query on conn and fits BG/NBD and Gamma-Gamma to its
// rows. The query must return exactly four numeric columns, in order:
// frequency (x), recency (t_x), T and monetary (mean repeat spend, may be
// NULL or 0 for x = 0), all in one time unit. Rows are streamed; identical
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
	if len(cols) != 4 {
		return Fit{}, fmt.Errorf("fitting CLV models: query returns %d columns %v, want 4 (frequency, recency, T, monetary)", len(cols), cols)
	}

	bgAcc, ggAcc := newBGAccumulator(), newGGAccumulator()
	var corr pearson
	var vals [4]sql.NullFloat64
	dest := []any{&vals[0], &vals[1], &vals[2], &vals[3]}
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
	rho, _ := corr.value()
	f := Fit{
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
	return f, nil
}
