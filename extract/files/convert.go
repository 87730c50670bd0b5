package files

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/cdwhq/cdw/extract"
)

// convert appends a source record of of to rb as one row; it returns a
// reason when the row must be rejected, and then leaves rb as it was.
// utf8OK says the fields are known to be valid UTF-8.
func (p *plan) convert(of *openFile, fields [][]byte, line int64, rb *rowsBuilder, utf8OK bool) string {
	if p.format != "fixed" && len(fields) < of.need {
		return fmt.Sprintf("row has %d fields, expected at least %d (check the delimiter and quoting)", len(fields), of.need)
	}
	if p.extraCol < 0 && of.width > 0 && len(fields) > of.width && !allEmpty(fields[of.width:]) {
		return fmt.Sprintf("row has %d fields, the header has %d: the extras would be lost (check the quoting, or set extra_fields: keep to keep them in %s)", len(fields), of.width, colExtra)
	}
	if reason := p.appendRow(of, fields, line, rb, utf8OK); reason != "" {
		rb.rollback()
		return reason
	}
	if reason := p.checkProduct(rb); reason != "" {
		rb.rollback()
		return reason
	}
	rb.commit(line)
	return ""
}

func (p *plan) appendRow(of *openFile, fields [][]byte, line int64, rb *rowsBuilder, utf8OK bool) string {
	row := rb.n
	for i, c := range p.columns {
		col := rb.cols[i]
		if i == p.lineNoCol {
			col.ints = append(col.ints, p.lineKey(of, fields))
			continue
		}
		if parts := of.partIdx[i]; parts != nil {
			if reason := appendKey(col, c, parts, fields); reason != "" {
				return reason
			}
			continue
		}
		if i == p.extraCol {
			if of.width > 0 && len(fields) > of.width && !allEmpty(fields[of.width:]) {
				col.appendString(extraJSON(fields[of.width:]))
			} else {
				col.appendNull(row)
			}
			continue
		}
		var raw []byte
		if idx := of.colIdx[i]; idx >= 0 {
			raw = bytes.TrimSpace(fields[idx])
		} else if c.constant != nil {
			raw = c.constant
		}
		if len(raw) == 0 {
			if c.req {
				return fmt.Sprintf("required column %q (%s) is empty", c.name, c.source)
			}
			col.appendNull(row)
			continue
		}
		if !utf8OK && !utf8.Valid(raw) {
			return fmt.Sprintf("column %q (%s) is not valid text in the file's encoding", c.name, c.source)
		}
		if c.typ == extract.String {
			col.appendString(raw)
			continue
		}
		// A view of the field, not a copy: nothing below keeps it, and
		// the reasons are formatted into new strings.
		s := unsafe.String(&raw[0], len(raw))
		var err error
		switch c.typ {
		case extract.Int:
			var v int64
			if n, ok := of.num[i].normalize(s); ok {
				v, err = parseInt(n)
			} else {
				err = fmt.Errorf("not a whole number written with a %s", of.num[i])
			}
			col.ints = append(col.ints, v)
		case extract.Float:
			var v float64
			n, ok := of.num[i].normalize(s)
			if !ok {
				err = fmt.Errorf("not a number written with a %s", of.num[i])
			} else if v, err = strconv.ParseFloat(n, 64); err != nil {
				err = fmt.Errorf("not a number")
			} else {
				err = checkRange(v)
			}
			col.floats = append(col.floats, v)
		case extract.Decimal:
			var v int64
			n, ok := of.num[i].normalize(s)
			if !ok {
				err = fmt.Errorf("not a number written with a %s", of.num[i])
			} else {
				var rounded bool
				if v, rounded, err = extract.ParseDecimal(n); rounded && rb.rowRoundedEx == "" {
					rb.rowRoundedEx = fmt.Sprintf("column %q (%s) %q → %s", c.name, c.source, truncate(s, 40), extract.FormatDecimal(v))
				}
			}
			col.ints = append(col.ints, v)
		case extract.Bool:
			var v bool
			v, err = parseBool(s)
			col.bools = append(col.bools, v)
		case extract.Timestamp:
			var v int64
			v, err = of.ts[i].micros(s, p.loc)
			col.ints = append(col.ints, v)
		}
		if err != nil {
			return fmt.Sprintf("column %q (%s): %q %v", c.name, c.source, truncate(s, 80), err)
		}
	}
	return ""
}

// appendKey appends a composite key: its parts joined with
// extract.KeySeparator. Every part must be present, and none may contain the
// separator, so that different parts never make the same key.
func appendKey(col *column, c mapped, parts []int, fields [][]byte) string {
	start := len(col.data)
	for j, idx := range parts {
		var raw []byte
		if idx >= 0 && idx < len(fields) {
			raw = bytes.TrimSpace(fields[idx])
		}
		reason := ""
		switch {
		case len(raw) == 0:
			reason = fmt.Sprintf("column %q: key part %q is empty", c.name, c.parts[j])
		case bytes.Contains(raw, []byte(extract.KeySeparator)):
			reason = fmt.Sprintf("column %q: key part %q contains the key separator U+001F", c.name, c.parts[j])
		case !utf8.Valid(raw):
			reason = fmt.Sprintf("column %q: key part %q is not valid text in the file's encoding", c.name, c.parts[j])
		}
		if reason != "" {
			col.data = col.data[:start]
			return reason
		}
		if j > 0 {
			col.data = append(col.data, extract.KeySeparator...)
		}
		col.data = append(col.data, raw...)
	}
	col.offsets = append(col.offsets, int32(len(col.data)))
	return ""
}

// maxNumber bounds numbers: staging keeps money as DECIMAL(18,4), whose
// largest value is just below 1e14. A larger value, or NaN or ±Inf (which
// strconv accepts), loaded into raw and then failed every later run at the
// cast, naming neither file nor row; here it is a reject with both.
const maxNumber = 1e14

func checkRange(v float64) error {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Errorf("is not a finite number")
	case math.Abs(v) >= maxNumber:
		return fmt.Errorf("is out of range (the warehouse keeps numbers below 1e14 in magnitude)")
	}
	return nil
}

// checkProduct applies the range check to quantity × unit_price of the row
// being appended, when that product is the line's amount in staging.
func (p *plan) checkProduct(rb *rowsBuilder) string {
	if p.qtyCol < 0 || p.priceCol < 0 {
		return ""
	}
	q, okQ := rb.cols[p.qtyCol].lastFloat(rb.n)
	u, okU := rb.cols[p.priceCol].lastFloat(rb.n)
	if okQ && okU && checkRange(q*u) != nil {
		return fmt.Sprintf("quantity × unit_price (%s × %s) %v", p.columns[p.qtyCol].source, p.columns[p.priceCol].source, checkRange(q*u))
	}
	return ""
}

// lastFloat is the value of row in a Float or Decimal column (approximate:
// for range checks only), false when it is NULL.
func (c *column) lastFloat(row int) (float64, bool) {
	if len(c.nulls) > 0 && c.nulls[len(c.nulls)-1] == row {
		return 0, false
	}
	if c.typ == extract.Decimal {
		if row >= len(c.ints) {
			return 0, false
		}
		return float64(c.ints[row]) / 1e4, true
	}
	if row >= len(c.floats) {
		return 0, false
	}
	return c.floats[row], true
}

func maxIndex(idx []int) int {
	m := -1
	for _, i := range idx {
		if i > m {
			m = i
		}
	}
	return m
}

// parseInt accepts integers and numbers with a zero fraction ("17850.0"),
// which spreadsheets produce for id columns.
func parseInt(s string) (int64, error) {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != float64(int64(f)) {
		return 0, fmt.Errorf("not a whole number")
	}
	return int64(f), nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "t", "yes", "y", "1":
		return true, nil
	case "false", "f", "no", "n", "0":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean (true/false, yes/no, 1/0)")
}

// parseTime parses s with the first layout that fits; with isoFormats, ISO
// dates and times take a fast path (trying layouts one by one through
// time.Parse was 13% of an extract's CPU profile).
func parseTime(s string, layouts []string, loc *time.Location) (time.Time, error) {
	if len(layouts) > 0 && &layouts[0] == &isoFormats[0] {
		if t, ok := parseISO(s, loc); ok {
			return t, nil
		}
	}
	for _, l := range layouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("is not a timestamp in any of the formats %v", layouts[:min(len(layouts), 3)])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// parseISO reads "2006-01-02", "2006-01-02 15:04:05" and
// "2006-01-02T15:04:05", each optionally followed by "Z", exactly as the
// matching default layouts do (no zone: loc; Z: UTC). Anything else, such as
// fractions or offsets, reports false and goes through the layouts.
func parseISO(s string, loc *time.Location) (time.Time, bool) {
	n := len(s)
	z := n > 0 && s[n-1] == 'Z'
	if z {
		n--
	}
	if n != 10 && n != 19 {
		return time.Time{}, false
	}
	if s[4] != '-' || s[7] != '-' {
		return time.Time{}, false
	}
	y, ok1 := digits(s[0:4])
	mo, ok2 := digits(s[5:7])
	d, ok3 := digits(s[8:10])
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, false
	}
	var h, mi, sec int
	if n == 19 {
		if (s[10] != ' ' && s[10] != 'T') || s[13] != ':' || s[16] != ':' {
			return time.Time{}, false
		}
		var ok4, ok5, ok6 bool
		h, ok4 = digits(s[11:13])
		mi, ok5 = digits(s[14:16])
		sec, ok6 = digits(s[17:19])
		if !ok4 || !ok5 || !ok6 || h > 23 || mi > 59 || sec > 59 {
			return time.Time{}, false
		}
	} else if z {
		return time.Time{}, false // "2006-01-02Z" is no default layout
	}
	if mo < 1 || mo > 12 || d < 1 {
		return time.Time{}, false
	}
	if z {
		loc = time.UTC
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, 0, loc)
	if t.Day() != d { // 31 April and the like: time.Date normalised it
		return time.Time{}, false
	}
	return t.UTC(), true
}

// parseISOMicrosUTC is parseISO in UTC, computed without time.Date: the
// days since the epoch come from the civil date (Howard Hinnant's
// days_from_civil), so it gives exactly what parseISO gives.
func parseISOMicrosUTC(s string) (int64, bool) {
	n := len(s)
	if n > 0 && s[n-1] == 'Z' {
		n--
		if n == 10 {
			return 0, false // "2006-01-02Z" is no default layout
		}
	}
	if n != 10 && n != 19 {
		return 0, false
	}
	if s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	y, ok1 := digits(s[0:4])
	mo, ok2 := digits(s[5:7])
	d, ok3 := digits(s[8:10])
	if !ok1 || !ok2 || !ok3 || mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) {
		return 0, false
	}
	var h, mi, sec int
	if n == 19 {
		if (s[10] != ' ' && s[10] != 'T') || s[13] != ':' || s[16] != ':' {
			return 0, false
		}
		var ok4, ok5, ok6 bool
		h, ok4 = digits(s[11:13])
		mi, ok5 = digits(s[14:16])
		sec, ok6 = digits(s[17:19])
		if !ok4 || !ok5 || !ok6 || h > 23 || mi > 59 || sec > 59 {
			return 0, false
		}
	}
	yy := int64(y)
	if mo <= 2 {
		yy--
	}
	era := yy
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := yy - era*400
	mp := int64(mo+9) % 12
	doy := (153*mp+2)/5 + int64(d) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	days := era*146097 + doe - 719468
	return ((days*24+int64(h))*60+int64(mi))*60*1_000_000 + int64(sec)*1_000_000, true
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// digits parses a short run of ASCII digits.
func digits(s string) (int, bool) {
	v := 0
	for i := 0; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, false
		}
		v = v*10 + int(c)
	}
	return v, true
}
