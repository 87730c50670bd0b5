package files_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/extract"
)

// TestTimestampLayoutDetected loads the timestamp shapes real exports write,
// with no timestamp_formats: each column's layout is detected from a sample of
// the file and logged, and every value lands at the instant it means.
func TestTimestampLayoutDetected(t *testing.T) {
	for _, tc := range []struct {
		name, layout string
		values       []string // the same two instants: 2011-04-02 14:15:17 and 2011-12-31 09:05:00 UTC
	}{
		{"helpdesk", "YYYY/MM/DD hh:mm:ss", []string{"2011/04/02 14:15:17.000", "2011/12/31 09:05:00.000"}},
		{"iso space", "ISO 8601", []string{"2011-04-02 14:15:17", "2011-12-31 09:05:00"}},
		{"iso offset", "ISO 8601", []string{"2011-04-02T16:15:17.000+02:00", "2011-12-31T09:05:00Z"}},
		{"german", "DD.MM.YYYY hh:mm:ss", []string{"02.04.2011 14:15:17", "31.12.2011 09:05"}},
		{"uk", "DD/MM/YYYY hh:mm:ss", []string{"02/04/2011 14:15:17", "31/12/2011 09:05"}},
		{"us", "MM/DD/YYYY hh:mm:ss", []string{"4/2/2011 2:15:17 PM", "12/31/2011 9:05 AM"}},
		{"epoch seconds", "epoch seconds", []string{"1301753717", "1325322300"}},
		{"epoch millis", "epoch milliseconds", []string{"1301753717000", "1325322300000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, wh := t.TempDir(), t.TempDir()
			write(t, filepath.Join(dir, "t.csv"), "id,opened\nT1,"+tc.values[0]+"\nT2,"+tc.values[1]+"\n")
			var logs bytes.Buffer
			old := slog.Default()
			slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
			defer slog.SetDefault(old)
			src := openSource(t, dir, "entities:\n  tickets:\n    path: t.csv\n    columns: {ticket_id: id, created_at: opened}\n")
			res, err := (&extract.Extractor{Dir: wh}).Extract(context.Background(), "desk", src, "tickets", false)
			if err != nil {
				t.Fatal(err)
			}
			if res.Rows != 2 || res.Rejected != 0 {
				t.Fatalf("rows=%d rejected=%d", res.Rows, res.Rejected)
			}
			var got string
			if err := rawQuery(t, wh, "desk", "tickets", "SELECT string_agg(strftime(created_at AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S'), ',' ORDER BY ticket_id) FROM RAW").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if want := "2011-04-02 14:15:17,2011-12-31 09:05:00"; got != want {
				t.Fatalf("created_at = %s, want %s", got, want)
			}
			if !strings.Contains(logs.String(), `msg="detected timestamp layout"`) || !strings.Contains(logs.String(), `column=created_at source=opened layout="`+tc.layout) {
				t.Fatalf("layout %q not logged:\n%s", tc.layout, logs.String())
			}
		})
	}
}

// TestTimestampLayoutAmbiguous: dates whose days are all 12 or less could be
// DD/MM or MM/DD; that is an error asking for timestamp_formats, which then
// decides. A value that fits no layout of the sample's is rejected naming the
// detected layout.
func TestTimestampLayoutAmbiguous(t *testing.T) {
	dir, wh := t.TempDir(), t.TempDir()
	write(t, filepath.Join(dir, "t.csv"), "id,opened\nT1,03/04/2011 10:00\nT2,05/06/2011 11:00\nT3,2011-06-05\n")
	const yml = "entities:\n  tickets:\n    path: t.csv\n    columns: {ticket_id: id, created_at: opened}\n"
	_, err := (&extract.Extractor{Dir: wh}).Extract(context.Background(), "desk", openSource(t, dir, yml), "tickets", false)
	want := `t.csv: column "created_at" (opened): the dates could be day/month or month/day`
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `set timestamp_formats: ["02/01/2006 15:04:05"] or ["01/02/2006 15:04:05"]`) {
		t.Fatalf("ambiguous dates: %v", err)
	}
	src := openSource(t, dir, yml+"    timestamp_formats: [\"02/01/2006 15:04\"]\n")
	res, err := (&extract.Extractor{Dir: wh}).Extract(context.Background(), "desk", src, "tickets", false)
	if err != nil {
		t.Fatal(err)
	}
	// ISO 8601 (T3) is read besides timestamp_formats: it cannot be taken
	// for another layout, and the fix for the odd rows must not reject it.
	if res.Rows != 3 || res.Rejected != 0 {
		t.Fatalf("rows=%d rejected=%d, want 3 and 0", res.Rows, res.Rejected)
	}
	var got string
	if err := rawQuery(t, wh, "desk", "tickets", "SELECT string_agg(strftime(created_at AT TIME ZONE 'UTC', '%Y-%m-%d'), ',' ORDER BY ticket_id) FROM RAW").Scan(&got); err != nil || got != "2011-04-03,2011-06-05,2011-06-05" {
		t.Fatalf("day/month dates = %q (%v)", got, err)
	}

	// No layout fits at all: one error naming file, column and an example.
	write(t, filepath.Join(dir, "u.csv"), "id,opened\nT1,next tuesday\n")
	_, err = (&extract.Extractor{Dir: wh}).Extract(context.Background(), "desk2",
		openSource(t, dir, strings.Replace(yml, "t.csv", "u.csv", 1)), "tickets", false)
	if err == nil || !strings.Contains(err.Error(), `u.csv: column "created_at" (opened): none of the 1 sampled values (e.g. "next tuesday") is a timestamp`) {
		t.Fatalf("no layout: %v", err)
	}
}

// TestDecimalCommaDetected loads a German ERP export (semicolons, decimal
// commas, thousands points, DD.MM.YYYY) without telling cdw any of it but
// the delimiter, and a US export with thousands commas.
func TestDecimalCommaDetected(t *testing.T) {
	wh := t.TempDir()
	src := openSource(t, "testdata/de", `
entities:
  orders:
    path: bestellungen.csv
    delimiter: ";"
    columns: {order_id: Bestellnr, customer_id: Kunde, order_ts: Datum, quantity: Menge, unit_price: Einzelpreis, amount: Betrag}
`)
	res, err := (&extract.Extractor{Dir: wh}).Extract(context.Background(), "erp", src, "orders", false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 4 || res.Rejected != 0 {
		t.Fatalf("rows=%d rejected=%d", res.Rows, res.Rejected)
	}
	var got string
	if err := rawQuery(t, wh, "erp", "orders", `SELECT string_agg(concat_ws('|', quantity, unit_price, amount, strftime(order_ts AT TIME ZONE 'UTC', '%Y-%m-%d')), ' ' ORDER BY order_id) FROM RAW`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := "1200.0000|0.8500|1020.0000|2011-04-02 2.0000|12.5000|25.0000|2011-04-03 1.0000|1234.5600|1234.5600|2011-04-04 3.0000|9.9900|29.9700|2011-04-05"; got != want {
		t.Fatalf("rows\n got %s\nwant %s", got, want)
	}

	dir := t.TempDir()
	write(t, filepath.Join(dir, "us.csv"), "id,ts,qty,price\n1,2011-04-02,\"1,200\",\"1,234.50\"\n2,2011-04-03,2,0.5\n3,2011-04-03,2,\"12,34,5\"\n")
	src = openSource(t, dir, ordersYAML[:strings.Index(ordersYAML, "path:")]+"path: us.csv\n    max_rejected: 100%\n    columns: {order_id: id, order_ts: ts, quantity: qty, unit_price: price}\n")
	res, err = (&extract.Extractor{Dir: wh}).Extract(context.Background(), "us", src, "orders", false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 2 || res.Rejected != 1 {
		t.Fatalf("rows=%d rejected=%d, want 2 and 1 (\"12,34,5\" is no number)", res.Rows, res.Rejected)
	}
	if err := rawQuery(t, wh, "us", "orders", "SELECT string_agg(concat_ws('|', quantity, unit_price), ' ' ORDER BY order_id) FROM RAW").Scan(&got); err != nil || got != "1200.0000|1234.5000 2.0000|0.5000" {
		t.Fatalf("US numbers %q (%v)", got, err)
	}

	// "1,234" alone could be either: an error asking for decimal_separator, which decides.
	write(t, filepath.Join(dir, "amb.csv"), "id,ts,qty\n1,2011-04-02,\"1,234\"\n")
	yml := "entities:\n  orders:\n    path: amb.csv\n    columns: {order_id: id, order_ts: ts, quantity: qty}\n"
	_, err = (&extract.Extractor{Dir: wh}).Extract(context.Background(), "amb", openSource(t, dir, yml), "orders", false)
	if err == nil || !strings.Contains(err.Error(), `amb.csv: column "quantity" (qty): "1,234" could be 1234 with a thousands separator or with a decimal comma`) {
		t.Fatalf("ambiguous number: %v", err)
	}
	if _, err := (&extract.Extractor{Dir: wh}).Extract(context.Background(), "amb", openSource(t, dir, yml+"    decimal_separator: \",\"\n"), "orders", false); err != nil {
		t.Fatal(err)
	}
	var q float64
	if err := rawQuery(t, wh, "amb", "orders", "SELECT quantity FROM RAW").Scan(&q); err != nil || q != 1.234 {
		t.Fatalf("decimal_separator: , gives %v (%v)", q, err)
	}
}
