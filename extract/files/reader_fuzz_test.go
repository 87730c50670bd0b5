package files_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/config"
)

// fuzzLayouts are the reader configurations the fuzzer feeds: CSV with a
// header, headerless TSV with timestamp formats and a time zone, GBK, and
// fixed width.
var fuzzLayouts = []string{
	`entities:
  orders:
    path: in/orders.csv
    columns: {order_id: id, customer_id: cust, order_ts: ts, quantity: qty, unit_price: price}
`,
	`entities:
  orders:
    path: in/orders.csv
    format: tsv
    header: false
    timezone: Asia/Shanghai
    timestamp_formats: ["2006-01-02 15:04", "02/01/2006"]
    columns: {order_id: "1", customer_id: "2", order_ts: "3", quantity: "4", unit_price: "5"}
`,
	`entities:
  contacts:
    path: in/orders.csv
    encoding: gbk
    columns: {contact_id: 编号, name: 姓名, phone: 电话}
`,
	`entities:
  orders:
    path: in/orders.csv
    format: fixed
    skip_lines: 1
    fields: [{name: cust, start: 1, width: 6}, {name: day, start: 8, width: 8}, {name: cds, start: 17, width: 2}, {name: usd, start: 19, width: 7}]
    columns: {order_id: day, customer_id: cust, order_ts: day, quantity: cds, amount: usd}
`,
}

// FuzzCSVReader feeds arbitrary file contents to the file source in each
// layout: it must never panic or hang; every line becomes a row or a
// quarantined reject (never more rows than lines); and a failing read names
// the file.
func FuzzCSVReader(f *testing.F) {
	f.Add([]byte("id,cust,ts,qty,price\nO1,C1,2024-01-02 10:00:00,2,1.5\n"), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, layout uint8) {
		yml := fuzzLayouts[int(layout)%len(fuzzLayouts)]
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "in"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "in", "orders.csv"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		n, err := config.Parse("cdw.yaml", []byte(yml))
		if err != nil {
			t.Fatal(err)
		}
		k, err := extract.LookupKind("files")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		src, err := k.Open(ctx, extract.SourceConfig{Name: "shop", Options: n, BaseDir: dir})
		if err != nil {
			t.Fatal(err) // the layouts are valid: only the data varies
		}
		defer src.Close()
		entity := src.Entities()[0]
		ent, _ := extract.LookupEntity(entity)
		rd, err := src.Read(ctx, extract.ReadRequest{Entity: ent, BatchRows: 7})
		if err != nil {
			checkNamesFile(t, err)
			return
		}
		defer rd.Close()
		var rows, rejects int64
		for {
			ch, err := rd.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("reading %d bytes did not finish in 20s", len(data))
			}
			if err != nil {
				checkNamesFile(t, err)
				return
			}
			if ch.Rows != nil {
				rows += ch.Rows.NumRows()
				ch.Rows.Release()
			}
			for _, r := range ch.Rejects {
				if r.Reason == "" || r.Line < 1 {
					t.Fatalf("reject without reason or line: %+v", r)
				}
			}
			rejects += int64(len(ch.Rejects))
		}
		if lines := int64(bytes.Count(data, []byte("\n"))) + 1; rows+rejects > lines {
			t.Fatalf("%d rows and %d rejects from %d lines", rows, rejects, lines)
		}
	})
}

func checkNamesFile(t *testing.T, err error) {
	t.Helper()
	if msg := err.Error(); !strings.Contains(msg, "orders.csv") {
		t.Fatalf("error does not name the file: %q", msg)
	}
}
