package files_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/config"
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
		"7,C7,2024-01-04,1,99999999999999\n"+ // the largest whole DECIMAL(18,4) value: loads
		"8,C8,2024-01-04,1e8,1e7\n") // line 9: each in range, but the product (the amount) is not
	src := openSource(t, dir, ordersYAML+"    max_rejected: 100%\n")
	res, err := (&extract.Extractor{Dir: wh}).Extract(context.Background(), "shop", src, "orders", false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 2 || res.Rejected != 6 {
		t.Fatalf("rows=%d rejected=%d, want 2 and 6", res.Rows, res.Rejected)
	}
	got := quarantined(t, wh, "orders")
	want := []string{`3:column "unit_price" (price)`, `4:column "unit_price" (price)`, `5:column "unit_price" (price)`,
		`6:column "unit_price" (price)`, `7:column "quantity" (qty)`, `9:quantity × unit_price (qty × price) is out of range`}
	for i, w := range want {
		if i >= len(got) || !strings.HasPrefix(got[i], w) {
			t.Fatalf("quarantine = %q, want entries starting %q", got, want)
		}
	}
	if !strings.Contains(got[0], "not a finite number") || !strings.Contains(got[3], "out of range") {
		t.Errorf("reasons do not say why: %q", got)
	}
}

// openLogged is openSource with the source's log written to buf.
func openLogged(t *testing.T, dir, yml string, buf *bytes.Buffer) extract.Source {
	t.Helper()
	n, err := config.Parse("cdw.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := extract.LookupKind("files")
	src, err := k.Open(context.Background(), extract.SourceConfig{Name: "shop", Options: n, BaseDir: dir,
		Log: slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

const contactsYAML = `
entities:
  contacts:
    path: in/contacts.csv
    columns: {contact_id: id, name: name}
    max_rejected: 100%
`

// Issue 16.2: encoding auto read a UTF-8 file with one invalid byte as
// GB18030 (`Müller Küche` → `M眉ller K眉che`), with no reject and no log line.
func TestAutoEncodingKeepsUTF8WithAFewBadBytes(t *testing.T) {
	for _, tc := range []struct {
		name, body, enc string
		names           []string // loaded, in file order
		rejected        int64
	}{
		{"UTF-8 with one Latin-1 byte", "id,name\n1,Müller Küche\n2,Gr\xfc\xdfe\n3,Jörg Straße\n", "utf-8", []string{"Müller Küche", "Jörg Straße"}, 1},
		{"Latin-1", "id,name\n1,M\xfcller\n2,Smith\n3,K\xf6ln\n", "utf-8", []string{"Smith"}, 2},
		{"GB18030", gbk(t, "id,name\n1,张伟\n2,王芳\n"), "gb18030", []string{"张伟", "王芳"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, wh := t.TempDir(), t.TempDir()
			write(t, filepath.Join(dir, "in/contacts.csv"), tc.body)
			var log bytes.Buffer
			src := openLogged(t, dir, contactsYAML, &log)
			res, err := (&extract.Extractor{Dir: wh}).Extract(context.Background(), "shop", src, "contacts", false)
			if err != nil {
				t.Fatal(err)
			}
			if res.Rejected != tc.rejected {
				t.Errorf("rejected %d rows, want %d", res.Rejected, tc.rejected)
			}
			var names string
			if err := rawQuery(t, wh, "shop", "contacts", "SELECT coalesce(string_agg(name, '|' ORDER BY _source_line), '') FROM RAW").Scan(&names); err != nil {
				t.Fatal(err)
			}
			if names != strings.Join(tc.names, "|") {
				t.Errorf("names = %q, want %q", names, strings.Join(tc.names, "|"))
			}
			if !strings.Contains(log.String(), "encoding chosen") || !strings.Contains(log.String(), "encoding="+tc.enc) {
				t.Errorf("log does not say encoding %s was chosen:\n%s", tc.enc, log.String())
			}
		})
	}
}

func gbk(t *testing.T, s string) string {
	t.Helper()
	out, err := simplifiedchinese.GBK.NewEncoder().String(s)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Issue 16.3: a row with more fields than the header loaded silently with
// the extras dropped.
func TestExtraFieldsAreRejectedOrKept(t *testing.T) {
	body := "id,cust,ts,qty,price\n" +
		"1,C1,2024-01-02,2,9.50\n" +
		"2,C2,2024-01-03,1,5,\n" + // a trailing delimiter loses nothing: loads
		"3,C3,2024-01-03,1,3,\"gift wrap, red\",7\n" // line 4: two extra fields
	for _, policy := range []string{"", "keep"} {
		t.Run("extra_fields="+policy, func(t *testing.T) {
			dir, wh := t.TempDir(), t.TempDir()
			write(t, filepath.Join(dir, "in/orders1.csv"), body)
			yml := ordersYAML + "    max_rejected: 100%\n"
			if policy != "" {
				yml += "    extra_fields: " + policy + "\n"
			}
			res, err := (&extract.Extractor{Dir: wh}).Extract(context.Background(), "shop", openSource(t, dir, yml), "orders", false)
			if err != nil {
				t.Fatal(err)
			}
			if policy == "" {
				got := quarantined(t, wh, "orders")
				if res.Rows != 2 || len(got) != 1 || !strings.HasPrefix(got[0], "4:row has 7 fields, the header has 5") || !strings.Contains(got[0], "extra_fields: keep") {
					t.Fatalf("rows=%d quarantine=%q, want 2 rows and line 4 rejected for its 7 fields", res.Rows, got)
				}
				return
			}
			var extra string
			if err := rawQuery(t, wh, "shop", "orders", "SELECT string_agg(coalesce(_extra, '-'), '|' ORDER BY _source_line) FROM RAW").Scan(&extra); err != nil {
				t.Fatal(err)
			}
			if res.Rows != 3 || extra != `-|-|["gift wrap, red","7"]` {
				t.Fatalf("rows=%d _extra=%s, want 3 rows and the two extras of line 4", res.Rows, extra)
			}
		})
	}
	if err := openErr(t, t.TempDir(), ordersYAML+"    extra_fields: drop\n"); err == nil || !strings.Contains(err.Error(), "extra_fields") {
		t.Fatalf("extra_fields: drop: %v", err)
	}
}

// Issue 17.2: a file whose every row was quarantined loaded "successfully".
// Over max_rejected (default 1 %), the extract fails naming the file, the
// count, the top reasons with an example line each and the key to change,
// and commits nothing of the file.
func TestRejectBudget(t *testing.T) {
	var body strings.Builder
	body.WriteString("id,cust,ts,qty,price\n")
	for i := 1; i <= 100; i++ {
		ts := "2024-01-02"
		if i%20 == 0 {
			ts = "2011/04/02 14:15:17.000x" // 5 rows: no timestamp layout reads this
		}
		fmt.Fprintf(&body, "%d,C%d,%s,1,2\n", i, i, ts)
	}
	for _, tc := range []struct {
		budget string
		fail   bool
		rows   int64
	}{{"", true, 0}, {"0", true, 0}, {"4", true, 0}, {"5", false, 95}, {"5%", false, 95}, {"100%", false, 95}} {
		t.Run("max_rejected="+tc.budget, func(t *testing.T) {
			dir, wh := t.TempDir(), t.TempDir()
			write(t, filepath.Join(dir, "in/orders1.csv"), body.String())
			yml := ordersYAML
			if tc.budget != "" {
				yml += "    max_rejected: \"" + tc.budget + "\"\n"
			}
			res, err := (&extract.Extractor{Dir: wh}).Extract(context.Background(), "shop", openSource(t, dir, yml), "orders", false)
			st, _ := extract.StateStore{Dir: wh}.Load("shop", "orders")
			if !tc.fail {
				if err != nil || res.Rows != tc.rows || res.Rejected != 5 {
					t.Fatalf("rows=%d rejected=%d err=%v, want %d rows, 5 rejected", res.Rows, res.Rejected, err, tc.rows)
				}
				return
			}
			var be *extract.BudgetError
			if !errors.As(err, &be) {
				t.Fatalf("err = %v, want a BudgetError", err)
			}
			msg := err.Error()
			for _, want := range []string{"orders1.csv", "5 of 100 rows rejected", `5× column "order_ts" (ts)`, "line 21", "max_rejected"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error does not say %q: %s", want, msg)
				}
			}
			if len(st.Files) != 0 || len(st.Quarantine) != 0 || st.Cursor != nil {
				t.Errorf("state committed despite the failure: %+v", st)
			}
		})
	}
	if err := openErr(t, t.TempDir(), ordersYAML+"    max_rejected: lots\n"); err == nil || !strings.Contains(err.Error(), "max_rejected") {
		t.Fatalf("max_rejected: lots: %v", err)
	}
}

// Issue 17.2: a path matching no file was one WARN line in a run that
// published empty marts and exited 0.
func TestNoFileMatchesIsAnError(t *testing.T) {
	dir, wh := t.TempDir(), t.TempDir()
	x := &extract.Extractor{Dir: wh}
	_, err := x.Extract(context.Background(), "shop", openSource(t, dir, ordersYAML), "orders", false)
	if err == nil || !strings.Contains(err.Error(), "no file matches") || !strings.Contains(err.Error(), "allow_empty") {
		t.Fatalf("err = %v, want one naming the path and allow_empty", err)
	}
	res, err := x.Extract(context.Background(), "shop", openSource(t, dir, ordersYAML+"    allow_empty: true\n"), "orders", false)
	if err != nil || res.Rows != 0 {
		t.Fatalf("allow_empty: %+v %v", res, err)
	}
}

// Issue 17.3: after fixing the config (adding timestamp_formats), the next
// run loaded nothing: the file was in the ledger as loaded. Files read with
// other parse settings are read again, once, as a new version that
// supersedes the old rows and rejects.
func TestChangedSettingsReadFilesAgainOnce(t *testing.T) {
	dir, wh := t.TempDir(), t.TempDir()
	write(t, filepath.Join(dir, "in/orders1.csv"), "id,cust,ts,qty,price\n"+
		"1,C1,2024-01-02,1,2\n"+
		"2,C2,02-Apr-2011 14h15,1,3\n"+
		"3,C3,03-Apr-2011 09h00,1,4\n")
	write(t, filepath.Join(dir, "in/orders2.csv"), "id,cust,ts,qty,price\n4,C4,2024-01-03,1,5\n")
	x := &extract.Extractor{Dir: wh}
	extractWith := func(extra string) extract.Result {
		t.Helper()
		res, err := x.Extract(context.Background(), "shop", openSource(t, dir, ordersYAML+"    max_rejected: 100%\n"+extra), "orders", false)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := extractWith(""); res.Rows != 2 || res.Rejected != 2 {
		t.Fatalf("first run: %+v, want 2 rows and 2 rejects", res)
	}
	// A setting that does not change how files are read re-reads nothing.
	if res := extractWith("    on_change: reload\n"); res.Rows != 0 {
		t.Fatalf("on_change is no parse setting, yet %d rows were read again", res.Rows)
	}
	fixed := "    timestamp_formats: [\"02-Jan-2006 15h04\"]\n"
	if res := extractWith(fixed); res.Rows != 4 || res.Rejected != 0 {
		t.Fatalf("after the fix: %+v, want both files read again (4 rows), no rejects", res)
	}
	var n int
	var sum float64
	if err := rawQuery(t, wh, "shop", "orders", "SELECT count(*), sum(unit_price) FROM RAW").Scan(&n, &sum); err != nil || n != 4 || sum != 14 {
		t.Fatalf("raw: %d rows summing %v (%v), want 4 and 14: the old version superseded, not duplicated", n, sum, err)
	}
	if got := quarantined(t, wh, "orders"); len(got) != 0 {
		t.Fatalf("the old version's rejects are still listed: %q", got)
	}
	if res := extractWith(fixed); res.Rows != 0 {
		t.Fatalf("third run read %d rows again; want 0 (exactly once)", res.Rows)
	}
}
