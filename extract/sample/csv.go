package sample

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Column headers of the generated CSV files (what the demo config maps).
var (
	orderHeader   = []string{"order_no", "line", "customer", "ordered_at", "status", "sku", "product", "category", "qty", "unit_price", "cost", "business_unit", "channel", "updated_at"}
	ticketHeader  = []string{"ticket_id", "customer", "created_at", "resolved_at", "status", "priority", "category", "csat", "business_unit", "updated_at"}
	contactHeader = []string{"contact_id", "customer_no", "name", "email", "phone", "company", "type", "business_unit", "channel", "country", "created", "last_contact", "updated"}
	signupHeader  = []string{"signup_id", "email", "mobile", "full_name", "signed_up_at"}
)

// csvSink writes the four demo CSV files. Lines are built with strconv.Append*
// into one reused buffer: encoding/csv and time.Format cost three times as
// much per line in the profile.
type csvSink struct {
	orders, tickets, contacts, signups *csvFile
}

func newCSVSink(f Files) (*csvSink, error) {
	s := &csvSink{}
	var err error
	open := func(path string, header []string) *csvFile {
		if err != nil {
			return nil
		}
		var c *csvFile
		c, err = newCSV(path, header)
		return c
	}
	s.orders = open(f.Orders, orderHeader)
	s.tickets = open(f.Tickets, ticketHeader)
	s.contacts = open(f.CRMContacts, contactHeader)
	s.signups = open(f.WebSignups, signupHeader)
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *csvSink) Order(o *OrderLine) error {
	w := s.orders
	b := w.buf[:0]
	b = strconv.AppendInt(b, o.OrderNo, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(o.Line), 10)
	b = append(b, ',')
	b = appendField(b, o.Customer)
	b = append(b, ',')
	b = appendTime(b, o.OrderedAt, ' ', false)
	b = append(b, ',')
	b = appendField(b, o.Status)
	b = append(b, ',')
	b = appendField(b, o.SKU)
	b = append(b, ',')
	b = appendField(b, o.Product)
	b = append(b, ',')
	b = appendField(b, o.Category)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(o.Qty), 10)
	b = append(b, ',')
	b = strconv.AppendFloat(b, o.UnitPrice, 'f', 2, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, o.Cost, 'f', 2, 64)
	b = append(b, ',')
	b = appendField(b, o.Unit)
	b = append(b, ',')
	b = appendField(b, o.Channel)
	b = append(b, ',')
	b = appendTime(b, o.UpdatedAt, 'T', true)
	return w.line(b)
}

func (s *csvSink) Ticket(t *Ticket) error {
	w := s.tickets
	b := append(w.buf[:0], 'T')
	b = appendPadded(b, t.No, 6)
	b = append(b, ',')
	b = appendField(b, t.Customer)
	b = append(b, ',')
	b = appendTime(b, t.Created, 'T', true)
	b = append(b, ',')
	if !t.Resolved.IsZero() {
		b = appendTime(b, t.Resolved, 'T', true)
	}
	b = append(b, ',')
	b = appendField(b, t.Status)
	b = append(b, ',')
	b = appendField(b, t.Priority)
	b = append(b, ',')
	b = appendField(b, t.Category)
	b = append(b, ',')
	if t.CSAT > 0 {
		b = strconv.AppendInt(b, int64(t.CSAT), 10)
	}
	b = append(b, ',')
	b = appendField(b, t.Unit)
	b = append(b, ',')
	b = appendTime(b, t.Updated, 'T', true)
	return w.line(b)
}

func (s *csvSink) Contact(c *Contact) error {
	w := s.contacts
	b := append(w.buf[:0], "CRM-"...)
	b = appendPadded(b, int64(c.No), 5)
	for _, f := range []string{c.Customer, c.Name, c.Email, c.Phone, c.Company, c.Type, c.Unit, c.Channel, c.Country} {
		b = append(b, ',')
		b = appendField(b, f)
	}
	b = append(b, ',')
	b = appendDate(b, c.Created)
	b = append(b, ',')
	if !c.LastContact.IsZero() {
		b = appendDate(b, c.LastContact)
	}
	b = append(b, ',')
	b = appendTime(b, c.Created, 'T', true)
	return w.line(b)
}

func (s *csvSink) Signup(u *Signup) error {
	w := s.signups
	b := append(w.buf[:0], 'W')
	b = appendPadded(b, int64(u.No), 6)
	for _, f := range []string{u.Email, u.Mobile, u.Name} {
		b = append(b, ',')
		b = appendField(b, f)
	}
	b = append(b, ',')
	b = appendTime(b, u.SignedUp, 'T', true)
	return w.line(b)
}

// badRows appends malformed order rows: the demo shows them land in
// quarantine with their line.
func (s *csvSink) badRows(n int) error {
	for i := 0; i < n; i++ {
		row := "999999,1,C00001,31/31/2026,completed,SKU-101,x,Garden,1,9.99,5,North,direct,2026-01-01T00:00:00Z"
		if i%2 == 1 {
			row = "999998,1,C00002,2026-01-05 10:00:00,completed,SKU-101,x,Garden,two,9.99,5,North,direct,2026-01-05T10:00:00Z"
		}
		if err := s.orders.line(append(s.orders.buf[:0], row...)); err != nil {
			return err
		}
	}
	return nil
}

// Close flushes and closes every file; it returns the first error.
func (s *csvSink) Close() error {
	var first error
	for _, w := range []*csvFile{s.orders, s.tickets, s.contacts, s.signups} {
		if w == nil {
			continue
		}
		if err := w.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// csvFile is a buffered CSV file written line by line.
type csvFile struct {
	f   *os.File
	b   *bufio.Writer
	buf []byte
	err error
}

func newCSV(path string, header []string) (*csvFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", path, err)
	}
	c := &csvFile{f: f, b: bufio.NewWriterSize(f, 1<<20), buf: make([]byte, 0, 512)}
	b := c.buf[:0]
	for i, h := range header {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendField(b, h)
	}
	return c, c.line(b)
}

// line writes b and a newline, keeping b's storage for the next line.
func (c *csvFile) line(b []byte) error {
	c.buf = b[:0]
	if c.err != nil {
		return c.err
	}
	b = append(b, '\n')
	if _, err := c.b.Write(b); err != nil {
		c.err = fmt.Errorf("writing %s: %w", c.f.Name(), err)
	}
	return c.err
}

func (c *csvFile) Close() error {
	if c.err == nil {
		if err := c.b.Flush(); err != nil {
			c.err = fmt.Errorf("writing %s: %w", c.f.Name(), err)
		}
	}
	if err := c.f.Close(); err != nil && c.err == nil {
		c.err = fmt.Errorf("closing %s: %w", c.f.Name(), err)
	}
	return c.err
}

// appendField appends s, quoted the way encoding/csv quotes: when it holds a
// comma, quote or line break, or starts with a space.
func appendField(b []byte, s string) []byte {
	quote := len(s) > 0 && (s[0] == ' ' || s[0] == '\t')
	for i := 0; i < len(s) && !quote; i++ {
		switch s[i] {
		case ',', '"', '\n', '\r':
			quote = true
		}
	}
	if !quote {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// appendPadded appends a non-negative n with at least width digits.
func appendPadded(b []byte, n int64, width int) []byte {
	var d [20]byte
	s := strconv.AppendInt(d[:0], n, 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// appendTime appends t (UTC, whole seconds) as "2006-01-02<sep>15:04:05",
// with a trailing Z when z is set (RFC 3339).
func appendTime(b []byte, t time.Time, sep byte, z bool) []byte {
	b = appendDate(b, t)
	h, m, s := t.UTC().Clock()
	b = append(b, sep, byte('0'+h/10), byte('0'+h%10), ':', byte('0'+m/10), byte('0'+m%10), ':', byte('0'+s/10), byte('0'+s%10))
	if z {
		b = append(b, 'Z')
	}
	return b
}

// appendDate appends t's UTC date as 2006-01-02.
func appendDate(b []byte, t time.Time) []byte {
	y, mo, d := t.UTC().Date()
	return append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+int(mo)/10), byte('0'+int(mo)%10), '-', byte('0'+d/10), byte('0'+d%10))
}
