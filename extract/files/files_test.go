package files_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/cdwhq/cdw/extract"
	_ "github.com/cdwhq/cdw/extract/files"
	"github.com/cdwhq/cdw/internal/config"

	"github.com/cdwhq/cdw/internal/datasets"
)

// openSource opens a files source from a YAML snippet rooted at dir.
func openSource(t *testing.T, dir, yml string) extract.Source {
	t.Helper()
	n, err := config.Parse("cdw.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	k, err := extract.LookupKind("files")
	if err != nil {
		t.Fatal(err)
	}
	src, err := k.Open(context.Background(), extract.SourceConfig{Name: "shop", Options: n, BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func openErr(t *testing.T, dir, yml string) error {
	t.Helper()
	n, err := config.Parse("cdw.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := extract.LookupKind("files")
	_, err = k.Open(context.Background(), extract.SourceConfig{Name: "shop", Options: n, BaseDir: dir})
	return err
}

const ordersYAML = `
entities:
  orders:
    path: in/orders*.csv
    columns: {order_id: id, customer_id: cust, order_ts: ts, quantity: qty, unit_price: price}
`

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// rawRows counts committed raw rows and distinct (order_id, line_no) keys.
func rawQuery(t *testing.T, wh, source, entity, q string, args ...any) *sql.Row {
	t.Helper()
	st, err := extract.StateStore{Dir: wh}.Load(source, entity)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var files []string
	for _, f := range st.Files {
		files = append(files, "'"+filepath.Join(wh, f.Path)+"'")
	}
	from := "(SELECT NULL AS x WHERE false)"
	if len(files) > 0 {
		from = "read_parquet([" + strings.Join(files, ",") + "], union_by_name=true)"
	}
	return db.QueryRow(strings.ReplaceAll(q, "RAW", from), args...)
}

func TestGoodBadAndRerun(t *testing.T) {
	dir, wh := t.TempDir(), t.TempDir()
	write(t, filepath.Join(dir, "in/orders1.csv"), "id,cust,ts,qty,price\n"+
		"1,C1,2024-01-02 10:00:00,2,9.50\n"+
		"2,C2,2024-01-03,1,100\n"+
		"3,C3,not a date,1,1\n"+ // line 4: bad timestamp
		"4,C4,2024-01-04,x,1\n"+ // line 5: bad number
		",C5,2024-01-04,1,1\n"+ // line 6: missing required order_id
		"5,C5,2024-01-05,\"3\",2.25\n")
	src := openSource(t, dir, ordersYAML+"    max_rejected: 100%\n") // half the rows are bad on purpose
	x := &extract.Extractor{Dir: wh}
	res, err := x.Extract(context.Background(), "shop", src, "orders", false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 3 || res.Rejected != 3 {
		t.Fatalf("rows=%d rejected=%d, want 3 and 3", res.Rows, res.Rejected)
	}
	var n int
	var sum float64
	if err := rawQuery(t, wh, "shop", "orders", "SELECT count(*), sum(quantity*unit_price) FROM RAW").Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if n != 3 || sum != 2*9.5+100+3*2.25 {
		t.Fatalf("raw has %d rows summing %v", n, sum)
	}
	// Quarantine names file, line and reason.
	st, _ := extract.StateStore{Dir: wh}.Load("shop", "orders")
	if len(st.Quarantine) != 1 {
		t.Fatalf("quarantine files: %v", st.Quarantine)
	}
	db, _ := sql.Open("duckdb", "")
	defer db.Close()
	rows, err := db.Query("SELECT line, reason, file FROM read_parquet(?) ORDER BY line", filepath.Join(wh, st.Quarantine[0].Path))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var line int
		var reason, file string
		rows.Scan(&line, &reason, &file)
		if !strings.HasSuffix(file, "orders1.csv") {
			t.Errorf("quarantine file = %q", file)
		}
		got = append(got, strings.Fields(reason)[0]+"@"+string(rune('0'+line)))
	}
	if strings.Join(got, " ") != `column@4 column@5 required@6` {
		t.Fatalf("quarantine = %v", got)
	}
	// Rerun on unchanged files: nothing new.
	res, err = x.Extract(context.Background(), "shop", src, "orders", false)
	if err != nil || res.Rows != 0 || res.Files != 0 {
		t.Fatalf("rerun: %+v %v", res, err)
	}
	// Touching the file without changing it loads nothing either.
	now := st.UpdatedAt.Add(1e9)
	os.Chtimes(filepath.Join(dir, "in/orders1.csv"), now, now)
	res, err = x.Extract(context.Background(), "shop", src, "orders", false)
	if err != nil || res.Rows != 0 {
		t.Fatalf("touched rerun: %+v %v", res, err)
	}
	// A new file loads; the old one does not load again.
	write(t, filepath.Join(dir, "in/orders2.csv"), "id,cust,ts,qty,price\n6,C6,2024-02-01,1,1\n")
	res, err = x.Extract(context.Background(), "shop", src, "orders", false)
	if err != nil || res.Rows != 1 {
		t.Fatalf("new file: %+v %v", res, err)
	}
	if err := rawQuery(t, wh, "shop", "orders", "SELECT count(*) FROM RAW").Scan(&n); err != nil || n != 4 {
		t.Fatalf("raw rows = %d (%v), want 4", n, err)
	}
}

func TestChangedFilePolicy(t *testing.T) {
	for _, policy := range []string{"reload", "reject"} {
		t.Run(policy, func(t *testing.T) {
			dir, wh := t.TempDir(), t.TempDir()
			f := filepath.Join(dir, "in/orders.csv")
			write(t, f, "id,cust,ts,qty,price\n1,C1,2024-01-02,1,1\n")
			src := openSource(t, dir, ordersYAML+"    on_change: "+policy+"\n")
			x := &extract.Extractor{Dir: wh}
			if _, err := x.Extract(context.Background(), "shop", src, "orders", false); err != nil {
				t.Fatal(err)
			}
			write(t, f, "id,cust,ts,qty,price\n1,C1,2024-01-02,5,1\n2,C2,2024-01-03,1,1\n")
			res, err := x.Extract(context.Background(), "shop", src, "orders", false)
			if err != nil {
				t.Fatal(err)
			}
			if policy == "reload" && res.Rows != 2 {
				t.Fatalf("reload: rows=%d, want 2 (the new version)", res.Rows)
			}
			if policy == "reject" && (res.Rows != 0 || res.Rejected != 1) {
				t.Fatalf("reject: %+v, want 0 rows and 1 rejected file", res)
			}
			// Reported once, not on every run.
			res, err = x.Extract(context.Background(), "shop", src, "orders", false)
			if err != nil || res.Rows != 0 || res.Rejected != 0 {
				t.Fatalf("third run: %+v %v", res, err)
			}
		})
	}
}

func TestEncodingsGzipAndFixedWidth(t *testing.T) {
	dir, wh := t.TempDir(), t.TempDir()
	// GBK contacts with Chinese names, auto-detected.
	gbk, err := simplifiedchinese.GBK.NewEncoder().String("编号,姓名,电话\nK1,张伟,13800138000\nK2,王芳,13900139000\n")
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "gbk/contacts.csv"), gbk)
	// UTF-8 with BOM, gzip-compressed, semicolon-delimited.
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte("\xEF\xBB\xBFid;name\nB1;Zoë\n"))
	zw.Close()
	write(t, filepath.Join(dir, "bom/contacts.csv.gz"), buf.String())
	src := openSource(t, dir, `
entities:
  contacts:
    path: gbk/*.csv
    columns: {contact_id: 编号, name: 姓名, phone: 电话}
`)
	x := &extract.Extractor{Dir: wh}
	if _, err := x.Extract(context.Background(), "crm", src, "contacts", false); err != nil {
		t.Fatal(err)
	}
	var names string
	if err := rawQuery(t, wh, "crm", "contacts", "SELECT string_agg(name, ',' ORDER BY contact_id) FROM RAW").Scan(&names); err != nil {
		t.Fatal(err)
	}
	if names != "张伟,王芳" {
		t.Fatalf("GBK names = %q", names)
	}
	src = openSource(t, dir, `
entities:
  contacts:
    path: bom/*.csv.gz
    delimiter: ";"
    columns: {contact_id: id, name: name}
`)
	if _, err := x.Extract(context.Background(), "web", src, "contacts", false); err != nil {
		t.Fatal(err)
	}
	if err := rawQuery(t, wh, "web", "contacts", "SELECT string_agg(name, ',') FROM RAW").Scan(&names); err != nil || names != "Zoë" {
		t.Fatalf("BOM+gzip names = %q (%v)", names, err)
	}
	// Fixed width: the CDNOW master file layout.
	write(t, filepath.Join(dir, "fw/cdnow.txt"), "customer_id date number_of_cds dollar_value\r\n 00001 19970101 1  11.77\r\n 00002 19970112 2  29.33\r\n")
	src = openSource(t, dir, `
entities:
  orders:
    path: fw/*.txt
    format: fixed
    skip_lines: 1
    fields: [{name: cust, start: 1, width: 6}, {name: day, start: 8, width: 8}, {name: cds, start: 17, width: 2}, {name: usd, start: 19, width: 7}]
    columns: {order_id: day, customer_id: cust, order_ts: day, quantity: cds, amount: usd}
`)
	if _, err := x.Extract(context.Background(), "cdnow", src, "orders", false); err != nil {
		t.Fatal(err)
	}
	var total float64
	var cust string
	if err := rawQuery(t, wh, "cdnow", "orders", "SELECT sum(amount), min(customer_id) FROM RAW").Scan(&total, &cust); err != nil {
		t.Fatal(err)
	}
	if math.Abs(total-41.10) > 1e-9 || cust != "00001" {
		t.Fatalf("fixed width: total=%v cust=%q", total, cust)
	}
}

func TestFileNotAsConfigured(t *testing.T) {
	dir, wh := t.TempDir(), t.TempDir()
	write(t, filepath.Join(dir, "in/orders.csv"), "id;cust;ts;qty;price\n1;C1;2024-01-02;1;1\n")
	src := openSource(t, dir, ordersYAML)
	_, err := (&extract.Extractor{Dir: wh}).Extract(context.Background(), "shop", src, "orders", false)
	if err == nil || !strings.Contains(err.Error(), "orders.csv") || !strings.Contains(err.Error(), "delimiter") {
		t.Fatalf("want an error naming the file and the delimiter, got %v", err)
	}
	st, _ := extract.StateStore{Dir: wh}.Load("shop", "orders")
	if len(st.Files) != 0 || st.Cursor != nil {
		t.Fatalf("state changed after a failed read: %+v", st)
	}
	for yml, want := range map[string]string{
		"entities:\n  orders:\n    path: x\n    columns: {customer_id: c}\n":                      `required column "order_id"`,
		"entities:\n  orders:\n    path: x\n    colums: {order_id: c}\n":                          `unknown key "colums"`,
		"entities:\n  orders:\n    path: x\n    encoding: latin9\n    columns: {order_id: c}\n":   `unknown encoding`,
		"entities:\n  widgets:\n    path: x\n    columns: {id: c}\n":                              `widgets is a raw table (no entity of that name: contacts, orders, tickets)`,
		"entities:\n  orders:\n    path: x\n    columns: {order_id: c, colour: d, order_ts: t}\n": `no column "colour"`,
	} {
		err := openErr(t, dir, yml)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "cdw.yaml") {
			t.Errorf("config %q: got %v, want an error with %q naming cdw.yaml", yml, err, want)
		}
	}
}

// TestOnlineRetail loads the real UCI Online Retail export (541,909 lines)
// and checks row counts and net revenue against DuckDB's own CSV reader.
func TestOnlineRetail(t *testing.T) {
	path := datasets.Path(t, "online_retail/online_retail.csv.gz")
	dir, wh := filepath.Dir(path), t.TempDir()
	src := openSource(t, dir, `
entities:
  orders:
    path: online_retail.csv.gz
    timezone: Europe/London
    columns: {order_id: InvoiceNo, product_id: StockCode, product_name: Description, quantity: Quantity, order_ts: InvoiceDate, unit_price: UnitPrice, customer_id: CustomerID}
    extra: {country: Country}
`)
	res, err := (&extract.Extractor{Dir: wh}).Extract(context.Background(), "retail", src, "orders", false)
	if err != nil {
		t.Fatal(err)
	}
	db, _ := sql.Open("duckdb", "")
	defer db.Close()
	var want int64
	var wantNet float64
	if err := db.QueryRow(`SELECT count(*), sum(Quantity * UnitPrice) FROM read_csv(?, header=true, all_varchar=false)`, path).Scan(&want, &wantNet); err != nil {
		t.Fatal(err)
	}
	if res.Rows+res.Rejected != want || res.Rejected != 0 {
		t.Fatalf("rows %d + rejected %d, DuckDB reads %d", res.Rows, res.Rejected, want)
	}
	var net float64
	var cancels int64
	if err := rawQuery(t, wh, "retail", "orders", "SELECT sum(quantity*unit_price), count(*) FILTER (WHERE order_id LIKE 'C%' AND quantity < 0) FROM RAW").Scan(&net, &cancels); err != nil {
		t.Fatal(err)
	}
	if diff := net - wantNet; diff > 0.01 || diff < -0.01 {
		t.Fatalf("net revenue %.2f, DuckDB says %.2f", net, wantNet)
	}
	if cancels == 0 {
		t.Fatal("no cancellation lines (C… invoices with negative quantity) found")
	}
}
