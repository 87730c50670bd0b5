package files

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/cdwhq/cdw/extract"
)

// value is one converted field, kept unboxed so a row costs no allocations
// beyond its strings.
type value struct {
	null bool
	typ  extract.Type
	s    string
	i    int64
	f    float64
	b    bool
	t    int64 // microseconds since the epoch, UTC
}

func (v value) append(b array.Builder) {
	if v.null {
		b.AppendNull()
		return
	}
	switch v.typ {
	case extract.Int:
		b.(*array.Int64Builder).Append(v.i)
	case extract.Float:
		b.(*array.Float64Builder).Append(v.f)
	case extract.Bool:
		b.(*array.BooleanBuilder).Append(v.b)
	case extract.Timestamp:
		b.(*array.TimestampBuilder).Append(arrow.Timestamp(v.t))
	default:
		b.(*array.StringBuilder).Append(v.s)
	}
}

// convert fills vals from a source record; it returns a reason when the row
// must be rejected.
func (r *reader) convert(of *openFile, fields []string, line int64, vals []value) string {
	p := r.plan
	if p.format != "fixed" && len(fields) < maxIndex(of.colIdx)+1 {
		return fmt.Sprintf("row has %d fields, expected at least %d (check the delimiter and quoting)", len(fields), maxIndex(of.colIdx)+1)
	}
	for i, c := range p.columns {
		v := value{typ: c.typ}
		raw := ""
		if idx := of.colIdx[i]; idx >= 0 {
			raw = strings.TrimSpace(fields[idx])
		}
		if i == p.lineNoCol {
			v.i = line
			vals[i] = v
			continue
		}
		if raw == "" {
			if c.req {
				return fmt.Sprintf("required column %q (%s) is empty", c.name, c.source)
			}
			v.null = true
			vals[i] = v
			continue
		}
		if !utf8.ValidString(raw) {
			return fmt.Sprintf("column %q (%s) is not valid text in the file's encoding", c.name, c.source)
		}
		var err error
		switch c.typ {
		case extract.Int:
			v.i, err = parseInt(raw)
		case extract.Float:
			v.f, err = strconv.ParseFloat(raw, 64)
			if err != nil {
				err = fmt.Errorf("not a number")
			}
		case extract.Bool:
			v.b, err = parseBool(raw)
		case extract.Timestamp:
			var t time.Time
			t, err = parseTime(raw, p.formats, p.loc)
			v.t = t.UnixMicro()
		default:
			v.s = raw
		}
		if err != nil {
			return fmt.Sprintf("column %q (%s): %q %v", c.name, c.source, truncate(raw, 80), err)
		}
		vals[i] = v
	}
	return ""
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

func parseTime(s string, layouts []string, loc *time.Location) (time.Time, error) {
	// With the default layouts only, ISO dates and times take a fast path:
	// trying layouts one by one through time.Parse was 13% of an extract's
	// CPU profile. User layouts come first, so they disable it.
	if len(layouts) == len(defaultFormats) {
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
