package clv

import (
	"bufio"
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/internal/datasets"
)

// loadSummaryCSV reads a CDNOW summary CSV. Columns are matched by name:
// frequency|x, recency|t_x, T, and optionally monetary_value|zbar.
func loadSummaryCSV(tb testing.TB, name string) []Customer {
	tb.Helper()
	f, err := os.Open(filepath.Join(datasets.Path(tb, "cdnow"), name))
	if err != nil {
		tb.Fatalf("open %s: %v", name, err)
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	recs, err := r.ReadAll()
	if err != nil {
		tb.Fatalf("read %s: %v", name, err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[strings.TrimSpace(h)] = i
	}
	pick := func(names ...string) int {
		for _, n := range names {
			if i, ok := col[n]; ok {
				return i
			}
		}
		return -1
	}
	ix, itx, iT, im := pick("frequency", "x"), pick("recency", "t_x"), pick("T"), pick("monetary_value", "zbar")
	if ix < 0 || itx < 0 || iT < 0 {
		tb.Fatalf("%s: missing columns in header %v", name, recs[0])
	}
	num := func(s string) float64 {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			tb.Fatalf("%s: bad number %q: %v", name, s, err)
		}
		return v
	}
	out := make([]Customer, 0, len(recs)-1)
	for _, rec := range recs[1:] {
		c := Customer{Frequency: num(rec[ix]), Recency: num(rec[itx]), T: num(rec[iT])}
		if im >= 0 {
			c.Monetary = num(rec[im])
		}
		out = append(out, c)
	}
	return out
}

// round rounds v to the given number of decimals.
func round(v float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	return math.Round(v*p) / p
}

// relErr is |a−b|/max(|b|, tiny).
func relErr(a, b float64) float64 {
	return math.Abs(a-b) / math.Max(math.Abs(b), 1e-300)
}
