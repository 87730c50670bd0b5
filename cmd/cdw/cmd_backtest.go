package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"

	"github.com/cdwhq/cdw/backtest"
	"github.com/cdwhq/cdw/pipelines"
)

func init() {
	register(&command{
		name:    "backtest",
		summary: "Build the marts as of a past date from raw (nothing published) and score churn, P(alive), purchases and spend against what happened next.",
		setup: func(fs *pflag.FlagSet) func(context.Context, []string) error {
			cfgPath := configFlag(fs)
			cutoff := fs.String("cutoff", "", "the day the marts are built as of (YYYY-MM-DD), required")
			horizon := fs.String("horizon", "90d", "how long after the cutoff the outcome is measured: days (90d) or weeks (39w)")
			format := fs.String("format", "table", "output format: table or json")
			return func(ctx context.Context, _ []string) error {
				if *cutoff == "" {
					return errors.New("--cutoff is required, e.g. --cutoff 2011-09-09")
				}
				day, err := time.Parse(time.DateOnly, *cutoff)
				if err != nil {
					return fmt.Errorf("--cutoff %q: want YYYY-MM-DD", *cutoff)
				}
				h, err := backtest.ParseHorizon(*horizon)
				if err != nil {
					return fmt.Errorf("--horizon: %w", err)
				}
				if *format != "table" && *format != "json" {
					return fmt.Errorf("--format %q: use table or json", *format)
				}
				cfg, err := pipelines.LoadConfig(*cfgPath)
				if err != nil {
					return err
				}
				res, err := backtest.Run(ctx, &pipelines.Runner{Cfg: cfg}, backtest.Options{Cutoff: day, Horizon: h})
				if err != nil {
					return err
				}
				if *format == "json" {
					enc := json.NewEncoder(out)
					enc.SetIndent("", "  ")
					return enc.Encode(res)
				}
				printBacktest(out, res)
				return nil
			}
		},
	})
}

// printBacktest writes the result for people: the headline first, then the
// tables.
func printBacktest(w io.Writer, r *backtest.Result) {
	fmt.Fprintf(w, "Backtest: marts as of %s, outcome %d days to %s (last order %s), model %s\n",
		r.Cutoff, r.Horizon, mustDate(r.Cutoff).AddDate(0, 0, r.Horizon).Format(time.DateOnly), r.LastOrder, r.Model)
	if r.ModelReason != "" {
		fmt.Fprintf(w, "purchase model %s: %s\n", r.Model, r.ModelReason)
	}
	fmt.Fprintf(w, "%d customers, %d churned (no purchase in the horizon): base rate %.3f\n\n", r.Customers, r.Churned, r.BaseRate)
	t := &table{header: []string{"churn ranking", "AUC", "top-decile precision", "top-decile lift"}}
	for _, k := range append([]backtest.Ranking{r.Churn}, r.Baselines...) {
		t.add(k.Name, f3(k.AUC), f3(k.TopDecilePrecision), f3(k.TopDecileLift))
	}
	t.print(w)
	fmt.Fprint(w, "\nchurn rate by band:")
	for _, b := range r.Bands {
		fmt.Fprintf(w, " %s %.3f (%d)", b.Band, b.ChurnRate, b.Customers)
	}
	fmt.Fprintf(w, "\nearly_warning: %d flagged, churn rate %.3f; high-value customers %d, churn rate %.3f; lift %.2f\n",
		r.Early.Flagged, r.Early.Precision, r.Early.HighValue, r.Early.HighValueRate, r.Early.Lift)
	fmt.Fprintf(w, "customers buying again: predicted %.1f (sum of p_repurchase), actual %d (%+.1f%%)\n\n",
		r.RepurchasePred, r.Customers-r.Churned, pct(r.RepurchasePred, float64(r.Customers-r.Churned)))
	t = &table{header: []string{"decile", "customers", "mean P(alive)", "bought again", "predicted purchases", "actual purchases", "predicted spend", "actual spend"}}
	for i := range r.Purchases {
		row := []string{fmt.Sprint(r.Purchases[i].Decile), fmt.Sprint(r.Purchases[i].Customers)}
		for _, d := range [][]backtest.Decile{r.PAlive, r.Purchases, r.CLV} {
			if i < len(d) {
				row = append(row, f3(d[i].Predicted), f3(d[i].Actual))
			} else {
				row = append(row, "", "")
			}
		}
		t.add(row...)
	}
	t.print(w)
	fmt.Fprintf(w, "(each pair of columns is sorted by its own prediction, highest decile first)\n")
	fmt.Fprintf(w, "total purchase days: predicted %.1f, actual %.0f (%+.1f%%); spend: predicted %.2f, actual %.2f (%+.1f%%)\n",
		r.TotalPred, r.TotalActual, pct(r.TotalPred, r.TotalActual), r.SpendPred, r.SpendActual, pct(r.SpendPred, r.SpendActual))
}

func f3(v float64) string { return fmt.Sprintf("%.3f", v) }

func pct(pred, actual float64) float64 {
	if actual == 0 {
		return 0
	}
	return 100 * (pred - actual) / actual
}

func mustDate(s string) time.Time {
	t, _ := time.Parse(time.DateOnly, s)
	return t
}
