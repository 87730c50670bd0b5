package httpapi

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/cdwhq/cdw/extract"
)

// A raw table (an entity of no canonical name: order_items, reviews) lands
// every top-level field of the records as a column named after it (lower
// case, letters, digits and _), typed from the values: integers BIGINT,
// numbers of at most 4 places DECIMAL(18,4), other numbers DOUBLE, true/false
// BOOLEAN, RFC 3339 text TIMESTAMPTZ, other text VARCHAR, objects and arrays
// their JSON text (DuckDB's json functions read it). The types widen as
// pages come (an integer field that later has a fraction becomes a decimal,
// values of mixed kinds become text), so no value is refused for its type;
// a page that widens the schema starts a new raw file, and the raw view
// reads the files by name.

// newRawMapper starts a raw table's mapper with no columns.
func newRawMapper() *mapper {
	m := &mapper{raw: true}
	m.schema = arrow.NewSchema(nil, nil)
	return m
}

// infer widens the columns to hold every record of a page and reports
// whether the schema changed.
func (m *mapper) infer(records []any) bool {
	changed := false
	byKey := map[string]int{}
	taken := map[string]bool{}
	for i, c := range m.cols {
		byKey[c.from] = i
		taken[c.name] = true
	}
	for _, rec := range records {
		obj, ok := rec.(map[string]any)
		if !ok {
			continue // rejected by mapRecord, with the reason
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		// a stable column order whatever the map order: as the first
		// record with new keys lists them, sorted
		slices.Sort(keys)
		for _, k := range keys {
			t, known := jsonType(obj[k])
			i, ok := byKey[k]
			if !ok {
				byKey[k] = len(m.cols)
				m.cols = append(m.cols, column{name: rawName(k, taken), from: k, path: []string{k}, typ: extract.String})
				i = len(m.cols) - 1
				if known {
					m.cols[i].typ = t
				} else {
					m.cols[i].typ = "" // only nulls so far
				}
				changed = true
				continue
			}
			if !known {
				continue
			}
			if w := widen(m.cols[i].typ, t); w != m.cols[i].typ {
				m.cols[i].typ = w
				changed = true
			}
		}
	}
	if changed {
		fields := make([]arrow.Field, len(m.cols))
		for i := range m.cols {
			c := &m.cols[i]
			typ := c.typ
			if typ == "" {
				typ = extract.String
			}
			c.passthrough = typ == extract.String
			fields[i] = arrow.Field{Name: c.name, Type: typ.Arrow(), Nullable: true}
		}
		m.schema = arrow.NewSchema(fields, nil)
	}
	return changed
}

// jsonType is the narrowest type holding v; false for null.
func jsonType(v any) (extract.Type, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case bool:
		return extract.Bool, true
	case json.Number:
		s := x.String()
		if _, err := strconv.ParseInt(s, 10, 64); err == nil {
			return extract.Int, true
		}
		if _, rounded, err := extract.ParseDecimal(s); err == nil && !rounded && !strings.ContainsAny(s, "eE") {
			return extract.Decimal, true
		}
		return extract.Float, true
	case string:
		if _, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(x)); err == nil {
			return extract.Timestamp, true
		}
	}
	return extract.String, true
}

// widen is the type holding values of types a and b.
func widen(a, b extract.Type) extract.Type {
	switch {
	case a == "" || a == b:
		return b
	case (a == extract.Int && b == extract.Decimal) || (a == extract.Decimal && b == extract.Int):
		return extract.Decimal
	case (a == extract.Int || a == extract.Decimal || a == extract.Float) && (b == extract.Int || b == extract.Decimal || b == extract.Float):
		return extract.Float
	}
	return extract.String
}

// rawName makes a JSON key a column name models can use unquoted.
func rawName(k string, taken map[string]bool) string {
	var b strings.Builder
	for _, r := range k {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(unicode.ToLower(r))
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "_"):
			b.WriteByte('_')
		}
	}
	name := strings.TrimSuffix(b.String(), "_")
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		name = "c_" + name
	}
	if strings.HasPrefix(name, "_") {
		name = "c" + name
	}
	out := name
	for n := 2; taken[out]; n++ {
		out = name + "_" + strconv.Itoa(n)
	}
	taken[out] = true
	return out
}
