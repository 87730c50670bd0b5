package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"gopkg.in/yaml.v3"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/config"
)

// maxRawBytes bounds the raw JSON kept with a rejected record.
const maxRawBytes = 4096

// mapper turns JSON records into rows of the entity's canonical schema plus
// pass-through columns.
type mapper struct {
	schema  *arrow.Schema
	cols    []column // one per schema field
	layouts []string // extra timestamp layouts, tried after RFC 3339
	epoch   string   // "", "seconds" or "millis": how numbers in timestamp columns are read
	// rounded counts values with more than the warehouse's 4 decimal
	// places (rounded); roundedEx is the first, for the log line.
	rounded   int64
	roundedEx string
	// raw: a raw table (order_items, reviews): every top-level field of
	// the records is a column, typed from the values seen (see infer).
	raw bool
}

// column maps one output column from a JSON path.
type column struct {
	name        string
	from        string   // the JSON path as configured, for messages
	path        []string // nil = not mapped: always null (required columns are always mapped)
	typ         extract.Type
	required    bool
	passthrough bool // extra column: any JSON value, kept as text
	// parts, when not nil, are the JSON paths of a composite key whose
	// values are joined with extract.KeySeparator (path is then empty).
	parts     [][]string
	partNames []string
	// constant, when not nil, is every record's value (quantity: 1,
	// channel: {value: online}), converted like a JSON value.
	constant any
}

// keyPaths reads a composite key mapping such as ticket_id: [desk, number].
func keyPaths(v config.Node, c extract.Column) ([]string, error) {
	if c.Type != extract.String {
		return nil, v.Errorf("%s is a %s column; only text columns such as ids take a list of JSON paths", c.Name, c.Type)
	}
	if len(v.Y.Content) < 2 {
		return nil, v.Errorf("a composite key needs at least two JSON paths (or give one path without brackets)")
	}
	var ps []string
	for _, item := range v.Y.Content {
		if item.Kind != yaml.ScalarNode || item.Value == "" {
			return nil, v.Errorf("expected a list of JSON paths, e.g. [desk, number]")
		}
		for _, p := range ps {
			if p == item.Value {
				return nil, v.Errorf("JSON path %q listed twice", item.Value)
			}
		}
		ps = append(ps, item.Value)
	}
	return ps, nil
}

// key joins the text of a composite key's parts; a part that is missing,
// empty or not a string or number is an error naming it.
func (c *column) key(obj map[string]any) (value, error) {
	texts := make([]string, len(c.parts))
	for i, p := range c.parts {
		raw, _ := lookup(obj, p)
		switch x := raw.(type) {
		case nil:
		case string:
			texts[i] = strings.TrimSpace(x)
		case json.Number:
			texts[i] = x.String()
		default:
			return value{}, fmt.Errorf("key part %s: %w", c.partNames[i], wrongType("a string or number", raw))
		}
	}
	k, err := extract.JoinKey(c.partNames, texts)
	if err != nil {
		return value{}, err
	}
	return value{s: k}, nil
}

func newMapper(n config.Node, ent extract.Entity, o entityOptions) (*mapper, error) {
	m := &mapper{layouts: o.TimestampLayouts, epoch: o.Epoch}
	switch m.epoch {
	case "", "seconds", "millis":
	default:
		return nil, n.Get("epoch").Errorf("expected seconds or millis, found %q", o.Epoch)
	}
	for i, l := range m.layouts {
		if !validLayout(l) {
			return nil, n.Get("timestamp_layouts").Errorf("entry %d: %q is not a Go time layout (write the reference time, e.g. 2006-01-02 15:04:05)", i+1, l)
		}
	}
	fn := n.Get("fields")
	if fn.Y == nil || fn.Y.Kind != yaml.MappingNode {
		return nil, fn.Errorf("expected a mapping of canonical column to JSON path, e.g. {ticket_id: id}")
	}
	paths := map[string]string{}
	parts := map[string][]string{}
	constants := map[string]any{}
	for _, k := range fn.Keys() {
		v := fn.Get(k)
		c, ok := ent.Column(k)
		if !ok {
			names := make([]string, len(ent.Columns))
			for i, c := range ent.Columns {
				names[i] = c.Name
			}
			return nil, v.Errorf("%s has no column %q (columns: %s); extra fields go in passthrough", ent.Name, k, strings.Join(names, ", "))
		}
		if v.Y.Kind == yaml.SequenceNode {
			ps, err := keyPaths(v, c)
			if err != nil {
				return nil, err
			}
			parts[k] = ps
			paths[k] = strings.Join(ps, "+")
			continue
		}
		if _, ok, err := extract.MappingSQL(v, c); ok || err != nil {
			if err != nil {
				return nil, err
			}
			continue // computed in the raw view from the columns landed
		}
		if v.Y.Kind == yaml.MappingNode {
			var cv struct {
				Value *string `yaml:"value" required:"true"`
			}
			if err := v.Decode(&cv); err != nil {
				return nil, err
			}
			constants[k] = *cv.Value
			paths[k] = "constant " + strconv.Quote(*cv.Value)
			continue
		}
		if v.Y.Kind != yaml.ScalarNode || v.Y.Value == "" {
			return nil, v.Errorf("expected a JSON path such as requester.external_id, a list of them for a composite key, a constant ({value: online}) or an expression ({sql: \"price * qty\"})")
		}
		switch v.Y.ShortTag() {
		case "!!int", "!!float":
			// An unquoted number is a constant (quantity: 1), read as
			// exactly as a JSON number.
			constants[k] = json.Number(v.Y.Value)
			paths[k] = "constant " + v.Y.Value
			continue
		case "!!bool":
			b, _ := strconv.ParseBool(v.Y.Value)
			constants[k] = b
			paths[k] = "constant " + v.Y.Value
			continue
		}
		paths[k] = v.Y.Value
	}
	for _, c := range ent.Columns {
		p, ok := paths[c.Name]
		if c.Required && !ok {
			return nil, fn.Errorf("required column %q of %s is not mapped", c.Name, ent.Name)
		}
		col := column{name: c.Name, from: p, path: splitPath(p), typ: c.Type, required: c.Required}
		for _, part := range parts[c.Name] {
			col.parts = append(col.parts, splitPath(part))
		}
		if col.parts != nil {
			col.path, col.partNames = []string{}, parts[c.Name]
		}
		if cv, ok := constants[c.Name]; ok {
			col.path, col.constant = []string{}, cv
			if _, err := m.convert(&col, cv); err != nil {
				return nil, fn.Get(c.Name).Errorf("constant: %v", err)
			}
		}
		m.cols = append(m.cols, col)
	}
	for i, p := range o.Passthrough {
		name := strings.ReplaceAll(p, ".", "_")
		if p == "" || m.columnIndex(name) >= 0 {
			return nil, n.Get("passthrough").Errorf("entry %d: %q is empty or names a column twice", i+1, p)
		}
		m.cols = append(m.cols, column{name: name, from: p, path: splitPath(p), typ: extract.String, passthrough: true})
	}
	fields := make([]arrow.Field, len(m.cols))
	for i, c := range m.cols {
		fields[i] = arrow.Field{Name: c.name, Type: c.typ.Arrow(), Nullable: true}
	}
	m.schema = arrow.NewSchema(fields, nil)
	return m, nil
}

func (m *mapper) columnIndex(name string) int {
	for i, c := range m.cols {
		if c.name == name {
			return i
		}
	}
	return -1
}

// value is one converted cell.
type value struct {
	null bool
	s    string
	i    int64
	f    float64
	d    int64 // Decimal, unscaled
	b    bool
	t    time.Time
}

// mapRecord converts one record into vals (len(m.cols)), or says why it cannot.
func (m *mapper) mapRecord(rec any, vals []value) error {
	obj, ok := rec.(map[string]any)
	if !ok {
		return fmt.Errorf("record is %s, not a JSON object", jsonKind(rec))
	}
	for i := range m.cols {
		c := &m.cols[i]
		if c.path == nil {
			vals[i] = value{null: true}
			continue
		}
		var v value
		var err error
		if m.raw {
			raw := obj[c.from]
			v, err = m.convert(c, raw)
		} else if c.constant != nil {
			v, err = m.convert(c, c.constant)
		} else if c.parts != nil {
			v, err = c.key(obj)
		} else {
			raw, _ := lookup(obj, c.path)
			v, err = m.convert(c, raw)
		}
		if err != nil {
			return fmt.Errorf("column %s (from %s): %w", c.name, c.from, err)
		}
		if v.null && c.required {
			return fmt.Errorf("column %s (from %s): required value is missing", c.name, c.from)
		}
		vals[i] = v
	}
	return nil
}

func (m *mapper) convert(c *column, raw any) (value, error) {
	if raw == nil {
		return value{null: true}, nil
	}
	if c.passthrough {
		if s, ok := raw.(string); ok {
			return value{s: s}, nil
		}
		b, err := json.Marshal(raw)
		if err != nil {
			return value{}, fmt.Errorf("encoding %s: %w", jsonKind(raw), err)
		}
		return value{s: string(b)}, nil
	}
	// An empty string means "no value" for every type but string.
	if s, ok := raw.(string); ok && c.typ != extract.String && strings.TrimSpace(s) == "" {
		return value{null: true}, nil
	}
	switch c.typ {
	case extract.String:
		switch x := raw.(type) {
		case string:
			return value{s: x}, nil
		case json.Number:
			return value{s: x.String()}, nil
		case bool:
			return value{s: strconv.FormatBool(x)}, nil
		}
		return value{}, wrongType("a string", raw)
	case extract.Int:
		if n, ok := numberText(raw); ok {
			if i, err := strconv.ParseInt(n, 10, 64); err == nil {
				return value{i: i}, nil
			}
			if f, err := strconv.ParseFloat(n, 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
				return value{i: int64(f)}, nil
			}
		}
		return value{}, wrongType("an integer", raw)
	case extract.Float:
		if n, ok := numberText(raw); ok {
			if f, err := strconv.ParseFloat(n, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				return value{f: f}, nil
			}
		}
		return value{}, wrongType("a number", raw)
	case extract.Decimal:
		// Exactly as written: JSON numbers are decoded as json.Number,
		// never through float64.
		if n, ok := numberText(raw); ok {
			d, rounded, err := extract.ParseDecimal(n)
			if err == nil {
				if rounded {
					if m.rounded == 0 {
						m.roundedEx = fmt.Sprintf("%s (from %s) %s → %s", c.name, c.from, truncate(n, 40), extract.FormatDecimal(d))
					}
					m.rounded++
				}
				return value{d: d}, nil
			}
			if errors.Is(err, extract.ErrOutOfRange) || errors.Is(err, extract.ErrNotFinite) {
				return value{}, fmt.Errorf("%s %w", preview(raw), err)
			}
		}
		return value{}, wrongType("a number", raw)
	case extract.Bool:
		switch x := raw.(type) {
		case bool:
			return value{b: x}, nil
		case string:
			if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
				return value{b: b}, nil
			}
		case json.Number:
			switch x.String() {
			case "0":
				return value{b: false}, nil
			case "1":
				return value{b: true}, nil
			}
		}
		return value{}, wrongType("a boolean", raw)
	case extract.Timestamp:
		t, err := m.timestamp(raw)
		if err != nil {
			return value{}, err
		}
		return value{t: t}, nil
	}
	return value{}, fmt.Errorf("unsupported column type %s", c.typ)
}

// timestamp reads RFC 3339 text, the configured layouts (zone-less layouts are
// UTC) or, when epoch is set, seconds or milliseconds since 1970.
func (m *mapper) timestamp(raw any) (time.Time, error) {
	if n, ok := raw.(json.Number); ok {
		return m.epochTime(n.String(), raw)
	}
	s, ok := raw.(string)
	if !ok {
		return time.Time{}, wrongType("a timestamp", raw)
	}
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	for _, l := range m.layouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	if m.epoch != "" {
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return m.epochTime(s, raw)
		}
	}
	want := "an RFC 3339 timestamp"
	if len(m.layouts) > 0 {
		want += " or one of timestamp_layouts"
	}
	return time.Time{}, wrongType(want, raw)
}

func (m *mapper) epochTime(n string, raw any) (time.Time, error) {
	if m.epoch == "" {
		return time.Time{}, wrongType("an RFC 3339 timestamp (set epoch: seconds or millis to read numbers)", raw)
	}
	f, err := strconv.ParseFloat(n, 64)
	if err != nil {
		return time.Time{}, wrongType("epoch "+m.epoch, raw)
	}
	if m.epoch == "millis" {
		f /= 1000
	}
	// Keep within years 1..9999 so the value fits a TIMESTAMP.
	if f < -62135596800 || f > 253402300799 {
		return time.Time{}, wrongType("epoch "+m.epoch+" within years 1 to 9999", raw)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1000).UTC(), nil
}

// numberText returns the text of a JSON number, or of a string holding one.
func numberText(raw any) (string, bool) {
	switch x := raw.(type) {
	case json.Number:
		return x.String(), true
	case string:
		return strings.TrimSpace(x), true
	}
	return "", false
}

func wrongType(want string, raw any) error {
	return fmt.Errorf("expected %s, found %s", want, preview(raw))
}

// preview shows a value in a message: short, valid UTF-8.
func preview(raw any) string {
	b, err := json.Marshal(raw)
	if err != nil {
		return jsonKind(raw)
	}
	return truncate(string(b), 80)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

// lookup follows a dotted path through objects (and arrays, by index).
func lookup(doc any, path []string) (any, bool) {
	cur := doc
	for _, p := range path {
		switch x := cur.(type) {
		case map[string]any:
			v, ok := x[p]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			cur = x[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// rowBuilder accumulates mapped rows into Arrow records.
type rowBuilder struct {
	m    *mapper
	b    *array.RecordBuilder
	rows int
}

func newRowBuilder(m *mapper, mem memory.Allocator) *rowBuilder {
	return &rowBuilder{m: m, b: array.NewRecordBuilder(mem, m.schema)}
}

func (rb *rowBuilder) append(vals []value) {
	for i, v := range vals {
		f := rb.b.Field(i)
		if v.null {
			f.AppendNull()
			continue
		}
		switch fb := f.(type) {
		case *array.StringBuilder:
			fb.Append(v.s)
		case *array.Int64Builder:
			fb.Append(v.i)
		case *array.Float64Builder:
			fb.Append(v.f)
		case *array.Decimal128Builder:
			fb.Append(extract.DecimalNum(v.d))
		case *array.BooleanBuilder:
			fb.Append(v.b)
		case *array.TimestampBuilder:
			fb.Append(arrow.Timestamp(v.t.UnixMicro()))
		}
	}
	rb.rows++
}

// flush returns the rows appended so far as one record (nil when none).
func (rb *rowBuilder) flush() arrow.RecordBatch {
	if rb.rows == 0 {
		return nil
	}
	rb.rows = 0
	return rb.b.NewRecordBatch()
}

func (rb *rowBuilder) release() { rb.b.Release() }

// rawText is a record as kept in quarantine: compact JSON, truncated.
func rawText(rec any) string {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Sprintf("%v", rec)
	}
	return truncate(string(b), maxRawBytes)
}
