package files_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/extract"
)

// quarantined returns the committed rejects of shop.<entity> as "line:reason".
func quarantined(t *testing.T, wh, entity string) []string {
	t.Helper()
	st, err := extract.StateStore{Dir: wh}.Load("shop", entity)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out []string
	for _, q := range st.Quarantine {
		rows, err := db.Query("SELECT line, reason, file FROM read_parquet(?) ORDER BY line", filepath.Join(wh, q.Path))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var line int
			var reason, file string
			if err := rows.Scan(&line, &reason, &file); err != nil {
				t.Fatal(err)
			}
			if file == "" {
				t.Errorf("reject at line %d names no file", line)
			}
			out = append(out, strconv.Itoa(line)+":"+reason)
		}
		rows.Close()
	}
	return out
}

// Issue 16.5: NaN, ±Inf or 1e20 as a price loaded into raw and then blocked
// every run at stg_orders' DECIMAL cast, naming neither file nor row.
func TestNonFiniteAndOutOfRangeNumbersAreRejected(t *testing.T) {
	dir, wh := t.TempDir(), t.TempDir()
	write(t, filepath.Join(dir, "in/orders1.csv"), "id,cust,ts,qty,price\n"+
		"1,C1,2024-01-02,2,9.50\n"+
		"2,C2,2024-01-03,1,NaN\n"+ // line 3
		"3,C3,2024-01-03,1,+Inf\n"+ // line 4
		"4,C4,2024-01-03,1,-infinity\n"+ // line 5
		"5,C5,2024-01-03,1,1e20\n"+ // line 6
		"6,C6,2024-01-03,-1e15,1\n"+ // line 7
		"7,C7,2024-01-04,1,99999999999999\n") // the largest whole DECIMAL(18,4) value: loads
	src := openSource(t, dir, ordersYAML)
	res, err := (&extract.Extractor{Dir: wh}).Extract(context.Background(), "shop", src, "orders", false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 2 || res.Rejected != 5 {
		t.Fatalf("rows=%d rejected=%d, want 2 and 5", res.Rows, res.Rejected)
	}
	got := quarantined(t, wh, "orders")
	want := []string{`3:column "unit_price" (price)`, `4:column "unit_price" (price)`, `5:column "unit_price" (price)`,
		`6:column "unit_price" (price)`, `7:column "quantity" (qty)`}
	for i, w := range want {
		if i >= len(got) || !strings.HasPrefix(got[i], w) {
			t.Fatalf("quarantine = %q, want entries starting %q", got, want)
		}
	}
	if !strings.Contains(got[0], "not a finite number") || !strings.Contains(got[3], "out of range") {
		t.Errorf("reasons do not say why: %q", got)
	}
}
