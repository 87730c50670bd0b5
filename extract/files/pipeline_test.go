package files

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/config"

	"github.com/cdwhq/cdw/internal/datasets"
)

// readAll reads an entity through the files source with text blocks of size
// bytes and returns every row (its fields and lineage, as text) and every
// reject, in the order the reader handed them over, plus the checkpoints.
func readAll(t *testing.T, dir, yml string, size, batchRows int) (rows, rejects []string, checkpoints int) {
	t.Helper()
	defer func(was int) { blockSize = was }(blockSize)
	blockSize = size
	n, err := config.Parse("cdw.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	k, err := extract.LookupKind("files")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src, err := k.Open(ctx, extract.SourceConfig{Name: "shop", Options: n, BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ent, _ := extract.LookupEntity(src.Entities()[0])
	rd, err := src.Read(ctx, extract.ReadRequest{Entity: ent, BatchRows: batchRows})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for {
		ch, err := rd.Next(ctx)
		if errors.Is(err, io.EOF) {
			return rows, rejects, checkpoints
		}
		if err != nil {
			t.Fatal(err)
		}
		if ch.Checkpoint != nil {
			checkpoints++
		}
		for _, r := range ch.Rejects {
			rejects = append(rejects, fmt.Sprintf("%s:%d %s [%s]", filepath.Base(r.File), r.Line, r.Reason, r.Raw))
		}
		if ch.Rows != nil {
			if ch.Rows.NumRows() > int64(batchRows) {
				t.Fatalf("a chunk of %d rows, asked for at most %d", ch.Rows.NumRows(), batchRows)
			}
			rows = append(rows, recordRows(ch.Rows)...)
			ch.Rows.Release()
		}
	}
}

// recordRows renders each row of rec as "name=value|…".
func recordRows(rec arrow.RecordBatch) []string {
	out := make([]string, rec.NumRows())
	for i := range out {
		var sb strings.Builder
		for c, col := range rec.Columns() {
			if col.IsNull(i) {
				continue
			}
			v := col.ValueStr(i)
			if d, ok := col.(*array.Dictionary); ok {
				v = d.Dictionary().ValueStr(d.GetValueIndex(i))
				v = filepath.Base(v)
			}
			fmt.Fprintf(&sb, "%s=%s|", rec.ColumnName(c), v)
		}
		out[i] = sb.String()
	}
	return out
}

const quotedYAML = `entities:
  contacts:
    path: in/*.csv*
    columns: {contact_id: id, name: name, email: email}
    extra: {note: note}
`

// quotedCSV has what makes CSV hard to cut into blocks: quoted delimiters,
// quoted line breaks (LF and CRLF), escaped quotes, empty lines, a bare quote
// and an unterminated quote at the very end, with rows around each.
var quotedCSV = "id,name,email,note\r\n" +
	"1,Ann,ann@x.org,plain\r\n" +
	`2,"Lee, Bo",bo@x.org,"says ""hi"""` + "\r\n" +
	`3,"Multi` + "\nline\r\nname" + `",m@x.org,"a,b` + "\n" + `c"` + "\n" +
	"\n\r\n" +
	`4,Bad"quote,b@x.org,x` + "\n" +
	`5,"closed"junk,j@x.org,x` + "\n" +
	`6,"",e@x.org,""` + "\n" +
	strings.Repeat(`7,"long `+strings.Repeat("x", 50)+"\n"+`quoted",l@x.org,"`+strings.Repeat("y,", 20)+`"`+"\n", 20) +
	`8,Zoë,z@x.org,ünïcode` + "\n" +
	`9,"open quote,o@x.org,never closed` + "\n" + "10,after,a@x.org,x\n"

// TestParallelCSVMatchesOneBlock reads files whose records cross every
// possible block boundary and checks that rows, lines and rejects are those
// of a single block, and that the single block agrees with encoding/csv.
func TestParallelCSVMatchesOneBlock(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) {
		if err := os.MkdirAll(filepath.Join(dir, "in"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "in", name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.csv", []byte(quotedCSV))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("\xEF\xBB\xBF" + quotedCSV)) // BOM
	zw.Close()
	write("b.csv.gz", gz.Bytes())
	gbk, err := simplifiedchinese.GBK.NewEncoder().String(strings.NewReplacer("Zoë", "张伟", "ünïcode", "好").Replace(quotedCSV))
	if err != nil {
		t.Fatal(err)
	}
	write("c.csv", []byte(gbk))

	wantRows, wantRejects, cps := readAll(t, dir, quotedYAML, 1<<20, 1000)
	if cps != 3 {
		t.Fatalf("%d checkpoints, want one per file", cps)
	}
	// The single block against encoding/csv: every record is a row or a
	// reject, on the line encoding/csv says it starts on.
	std := stdRecords([]byte(quotedCSV), ',')[1:] // less the header
	var stdRows, stdErrs int
	for _, r := range std {
		if r.err != nil {
			stdErrs++
			want := fmt.Sprintf("a.csv:%d %s", r.line, r.err)
			if !strings.Contains(strings.Join(wantRejects, "\n"), want) {
				t.Errorf("reject %q missing from %q", want, wantRejects)
			}
			continue
		}
		stdRows++
		id := strings.Split(r.fields, "\x00")[0]
		want := fmt.Sprintf("contact_id=%s|", id)
		found := false
		for _, row := range wantRows {
			if strings.HasPrefix(row, want) && strings.Contains(row, fmt.Sprintf("_source_file=a.csv|_source_line=%d|", r.line)) {
				found = true
			}
		}
		if !found {
			t.Errorf("no row of a.csv for record %v", r)
		}
	}
	if stdRows != 25 || stdErrs != 3 || len(wantRows) != 3*stdRows || len(wantRejects) != 3*stdErrs {
		t.Fatalf("encoding/csv: %d rows, %d errors; read %d rows and %d rejects from three copies", stdRows, stdErrs, len(wantRows), len(wantRejects))
	}
	if !strings.Contains(strings.Join(wantRows, "\n"), "name=Multi\nline\nname|") {
		t.Errorf("quoted line breaks not kept (CRLF inside quotes read as LF, as encoding/csv does): %q", wantRows[2])
	}
	for _, size := range []int{1, 2, 3, 7, 16, 64, 100, 333} {
		for _, batch := range []int{1, 3, 1000} {
			rows, rejects, _ := readAll(t, dir, quotedYAML, size, batch)
			if strings.Join(rows, "\n") != strings.Join(wantRows, "\n") || strings.Join(rejects, "\n") != strings.Join(wantRejects, "\n") {
				t.Fatalf("blocks of %d bytes, batches of %d rows: rows or rejects differ\ngot  %q\n%q\nwant %q\n%q", size, batch, rows, rejects, wantRows, wantRejects)
			}
		}
	}
}

// TestParallelCSVOnlineRetail reads the UCI Online Retail export (541,909
// lines, quoted descriptions with delimiters) in blocks of 64 KiB, hundreds of
// them in flight over the run, and in one block per 4 MiB, and compares every
// row, line number and reject; and both against encoding/csv's record count.
func TestParallelCSVOnlineRetail(t *testing.T) {
	path := datasets.Path(t, "online_retail/online_retail.csv.gz")
	yml := `entities:
  orders:
    path: ` + path + `
    timezone: Europe/London
    columns: {order_id: InvoiceNo, product_id: StockCode, product_name: Description, quantity: Quantity, order_ts: InvoiceDate, unit_price: UnitPrice, customer_id: CustomerID}
    extra: {country: Country}
`
	small, smallRejects, _ := readAll(t, t.TempDir(), yml, 64<<10, 50_000)
	big, bigRejects, _ := readAll(t, t.TempDir(), yml, 4<<20, 50_000)
	if len(small) != len(big) || len(smallRejects) != len(bigRejects) {
		t.Fatalf("64 KiB blocks: %d rows, %d rejects; 4 MiB blocks: %d rows, %d rejects", len(small), len(smallRejects), len(big), len(bigRejects))
	}
	for i := range small {
		if small[i] != big[i] {
			t.Fatalf("row %d differs:\n%s\n%s", i, small[i], big[i])
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	cr := csv.NewReader(zr)
	cr.FieldsPerRecord = -1
	records := -1 // the header
	for {
		_, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		records++
	}
	if len(small)+len(smallRejects) != records {
		t.Fatalf("%d rows and %d rejects from %d records", len(small), len(smallRejects), records)
	}
	if !strings.Contains(small[len(small)-1], fmt.Sprintf("_source_line=%d|", records+1)) {
		t.Fatalf("last row is not on the file's last line %d: %s", records+1, small[len(small)-1])
	}
}
