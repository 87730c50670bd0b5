package sample

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/cdwhq/cdw/extract"
)

// The Parquet files carry the CSV files' columns under the same names, typed:
// ids and codes as strings exactly as in the CSV, times as UTC timestamps,
// money as DECIMAL(12,2), and empty CSV fields as NULL.
var (
	moneyType = &arrow.Decimal128Type{Precision: 12, Scale: 2}
	utc       = &arrow.TimestampType{Unit: arrow.Second, TimeZone: "UTC"}
	str       = arrow.BinaryTypes.String
	dateType  = arrow.FixedWidthTypes.Date32

	orderSchema = schemaOf(orderHeader, []arrow.DataType{arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Int32, str, utc, str, str, str, str,
		arrow.PrimitiveTypes.Int32, moneyType, moneyType, str, str, utc})
	ticketSchema  = schemaOf(ticketHeader, []arrow.DataType{str, str, utc, utc, str, str, str, arrow.PrimitiveTypes.Int32, str, utc})
	contactSchema = schemaOf(contactHeader, []arrow.DataType{str, str, str, str, str, str, str, str, str, str, dateType, dateType, utc})
	signupSchema  = schemaOf(signupHeader, []arrow.DataType{str, str, str, str, utc})
)

func schemaOf(names []string, types []arrow.DataType) *arrow.Schema {
	if len(names) != len(types) {
		panic(fmt.Sprintf("sample: %d column names for %d types", len(names), len(types)))
	}
	fields := make([]arrow.Field, len(names))
	for i := range names {
		fields[i] = arrow.Field{Name: names[i], Type: types[i], Nullable: true}
	}
	return arrow.NewSchema(fields, nil)
}

// WriteParquet generates the same rows as Write (same options, same seed)
// into orders.parquet, tickets.parquet, crm_contacts.parquet and
// web_signups.parquet in dir. Malformed rows (Options.BadRows) cannot exist
// in a typed file, so they are refused.
func WriteParquet(dir string, o Options) (Files, error) {
	if o.BadRows > 0 {
		return Files{}, errors.New("malformed rows (BadRows) can only be written to CSV")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Files{}, fmt.Errorf("creating %s: %w", dir, err)
	}
	f := Files{
		Orders:      filepath.Join(dir, "orders.parquet"),
		Tickets:     filepath.Join(dir, "tickets.parquet"),
		CRMContacts: filepath.Join(dir, "crm_contacts.parquet"),
		WebSignups:  filepath.Join(dir, "web_signups.parquet"),
	}
	s := &parquetSink{}
	var err error
	for _, t := range []struct {
		dst    **parquetTable
		path   string
		schema *arrow.Schema
	}{{&s.orders, f.Orders, orderSchema}, {&s.tickets, f.Tickets, ticketSchema},
		{&s.contacts, f.CRMContacts, contactSchema}, {&s.signups, f.WebSignups, signupSchema}} {
		if *t.dst, err = newParquetTable(t.path, t.schema); err != nil {
			s.abort()
			return f, err
		}
	}
	n, err := Generate(o, s)
	if err != nil {
		s.abort()
		return f, err
	}
	if err := s.finish(); err != nil {
		return f, err
	}
	// Sample data, not warehouse content: readable like the CSV files.
	for _, p := range []string{f.Orders, f.Tickets, f.CRMContacts, f.WebSignups} {
		if err := os.Chmod(p, 0o644); err != nil {
			return f, fmt.Errorf("setting permissions on %s: %w", p, err)
		}
	}
	f.OrderLines, f.TicketRows, f.ContactRows = n.OrderLines, n.Tickets, n.Contacts+n.Signups
	return f, nil
}

// parquetSink appends rows to one Arrow record builder per file and writes a
// record every flushRows rows, so memory stays bounded.
type parquetSink struct {
	orders, tickets, contacts, signups *parquetTable
	buf                                []byte
}

const flushRows = 64 * 1024

type parquetTable struct {
	file *extract.ParquetFile
	b    *array.RecordBuilder
	n    int
}

func newParquetTable(path string, schema *arrow.Schema) (*parquetTable, error) {
	pf, err := extract.CreateParquet(path, schema)
	if err != nil {
		return nil, err
	}
	return &parquetTable{file: pf, b: array.NewRecordBuilder(memory.DefaultAllocator, schema)}, nil
}

// row counts a finished row and writes a record when enough are buffered.
func (t *parquetTable) row() error {
	if t.n++; t.n < flushRows {
		return nil
	}
	return t.flush()
}

func (t *parquetTable) flush() error {
	if t.n == 0 {
		return nil
	}
	rec := t.b.NewRecordBatch()
	defer rec.Release()
	t.n = 0
	return t.file.Write(rec)
}

func (s *parquetSink) tables() []*parquetTable {
	return []*parquetTable{s.orders, s.tickets, s.contacts, s.signups}
}

func (s *parquetSink) finish() error {
	for _, t := range s.tables() {
		if err := t.flush(); err != nil {
			s.abort()
			return err
		}
	}
	for i, t := range s.tables() {
		t.b.Release()
		if err := t.file.Finish(); err != nil {
			for _, rest := range s.tables()[i+1:] {
				rest.file.Abort()
			}
			return err
		}
	}
	return nil
}

func (s *parquetSink) abort() {
	for _, t := range s.tables() {
		if t != nil {
			t.b.Release()
			t.file.Abort()
		}
	}
}

func (s *parquetSink) Order(o *OrderLine) error {
	b := s.orders.b
	b.Field(0).(*array.Int64Builder).Append(o.OrderNo)
	b.Field(1).(*array.Int32Builder).Append(int32(o.Line))
	appendString(b.Field(2), o.Customer)
	appendTimestamp(b.Field(3), o.OrderedAt)
	appendString(b.Field(4), o.Status)
	appendString(b.Field(5), o.SKU)
	appendString(b.Field(6), o.Product)
	appendString(b.Field(7), o.Category)
	b.Field(8).(*array.Int32Builder).Append(int32(o.Qty))
	s.appendMoney(b.Field(9), o.UnitPrice)
	s.appendMoney(b.Field(10), o.Cost)
	appendString(b.Field(11), o.Unit)
	appendString(b.Field(12), o.Channel)
	appendTimestamp(b.Field(13), o.UpdatedAt)
	return s.orders.row()
}

func (s *parquetSink) Ticket(t *Ticket) error {
	b := s.tickets.b
	s.buf = appendPadded(append(s.buf[:0], 'T'), t.No, 6)
	appendString(b.Field(0), string(s.buf))
	appendString(b.Field(1), t.Customer)
	appendTimestamp(b.Field(2), t.Created)
	appendTimestamp(b.Field(3), t.Resolved)
	appendString(b.Field(4), t.Status)
	appendString(b.Field(5), t.Priority)
	appendString(b.Field(6), t.Category)
	if t.CSAT > 0 {
		b.Field(7).(*array.Int32Builder).Append(int32(t.CSAT))
	} else {
		b.Field(7).AppendNull()
	}
	appendString(b.Field(8), t.Unit)
	appendTimestamp(b.Field(9), t.Updated)
	return s.tickets.row()
}

func (s *parquetSink) Contact(c *Contact) error {
	b := s.contacts.b
	s.buf = appendPadded(append(s.buf[:0], "CRM-"...), int64(c.No), 5)
	appendString(b.Field(0), string(s.buf))
	for i, v := range []string{c.Customer, c.Name, c.Email, c.Phone, c.Company, c.Type, c.Unit, c.Channel, c.Country} {
		appendString(b.Field(1+i), v)
	}
	appendDate32(b.Field(10), c.Created)
	appendDate32(b.Field(11), c.LastContact)
	appendTimestamp(b.Field(12), c.Created)
	return s.contacts.row()
}

func (s *parquetSink) Signup(u *Signup) error {
	b := s.signups.b
	s.buf = appendPadded(append(s.buf[:0], 'W'), int64(u.No), 6)
	appendString(b.Field(0), string(s.buf))
	appendString(b.Field(1), u.Email)
	appendString(b.Field(2), u.Mobile)
	appendString(b.Field(3), u.Name)
	appendTimestamp(b.Field(4), u.SignedUp)
	return s.signups.row()
}

// appendString writes "" as NULL, as an empty CSV field reads.
func appendString(b array.Builder, v string) {
	if v == "" {
		b.AppendNull()
		return
	}
	b.(*array.StringBuilder).Append(v)
}

// appendTimestamp writes whole UTC seconds, as the CSV has them; the zero
// time is NULL.
func appendTimestamp(b array.Builder, t time.Time) {
	if t.IsZero() {
		b.AppendNull()
		return
	}
	b.(*array.TimestampBuilder).Append(arrow.Timestamp(t.Unix()))
}

func appendDate32(b array.Builder, t time.Time) {
	if t.IsZero() {
		b.AppendNull()
		return
	}
	b.(*array.Date32Builder).Append(arrow.Date32FromTime(t.UTC()))
}

// appendMoney rounds to cents through the same formatting the CSV sink uses,
// so both files hold the same amounts to the cent (v*100 rounded can differ
// from %.2f on halves).
func (s *parquetSink) appendMoney(b array.Builder, v float64) {
	s.buf = strconv.AppendFloat(s.buf[:0], v, 'f', 2, 64)
	var cents int64
	neg := false
	for _, c := range s.buf {
		switch {
		case c == '-':
			neg = true
		case c >= '0' && c <= '9':
			cents = cents*10 + int64(c-'0')
		}
	}
	if neg {
		cents = -cents
	}
	b.(*array.Decimal128Builder).Append(decimal128.FromI64(cents))
}
