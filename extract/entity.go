package extract

import (
	"fmt"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// Type is a column's logical type in an entity schema. Sources map their own
// types onto these; the raw layer stores them as the Arrow types below.
type Type string

// The logical types an entity column can have.
const (
	String    Type = "string"
	Int       Type = "int"
	Float     Type = "float"
	Decimal   Type = "decimal" // money and quantities: DECIMAL(18,4), exact
	Bool      Type = "bool"
	Timestamp Type = "timestamp"
)

// Valid reports whether t is a known type.
func (t Type) Valid() bool {
	switch t {
	case String, Int, Float, Decimal, Bool, Timestamp:
		return true
	}
	return false
}

// Arrow returns the Arrow type rows of this type are written with.
// Timestamps are UTC instants in microseconds, the precision DuckDB keeps.
func (t Type) Arrow() arrow.DataType {
	switch t {
	case Int:
		return arrow.PrimitiveTypes.Int64
	case Float:
		return arrow.PrimitiveTypes.Float64
	case Decimal:
		return DecimalArrow
	case Bool:
		return arrow.FixedWidthTypes.Boolean
	case Timestamp:
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	default:
		return arrow.BinaryTypes.String
	}
}

// DuckDB returns the DuckDB type name for t.
func (t Type) DuckDB() string {
	switch t {
	case Int:
		return "BIGINT"
	case Float:
		return "DOUBLE"
	case Decimal:
		return DecimalDuckDB
	case Bool:
		return "BOOLEAN"
	case Timestamp:
		return "TIMESTAMPTZ"
	default:
		return "VARCHAR"
	}
}

// Money and quantities are exact decimals from the source to the marts:
// DECIMAL(18,4), the type staging has always summed money in (binary
// floating point cannot hold 0.1, and sums of DOUBLE depend on the order
// threads add them in). Precision 18 is stored as a 64-bit integer in
// Parquet; four decimal places hold cents, tenths of cents and unit prices
// such as 0.0125; 14 integer digits hold any order line.
const (
	DecimalPrecision = 18
	DecimalScale     = 4
	DecimalDuckDB    = "DECIMAL(18,4)"
)

// DecimalArrow is the Arrow type of Decimal columns.
var DecimalArrow = &arrow.Decimal128Type{Precision: DecimalPrecision, Scale: DecimalScale}

// RawFormat is the layout of the raw files this version writes: 2 since
// money columns are Decimal (format 0, before, wrote them as DOUBLE). The
// raw views cast files of an older format on read, so a warehouse built by
// an earlier version keeps working without a full refresh.
const RawFormat = 2

// Column is one column of an entity's canonical schema.
type Column struct {
	Name     string
	Type     Type
	Required bool // a row without it is rejected to quarantine
	Doc      string
}

// Entity is one of the things cdw extracts: orders, tickets or contacts.
// Every source maps its rows onto the entity's canonical columns; sources may
// add columns of their own, which flow through to raw as extra nullable columns.
type Entity struct {
	Name    string
	Doc     string
	Columns []Column
	// Key identifies a source row; staging keeps the latest version per key.
	Key []string
	// Event is the timestamp column whose UTC day partitions the entity's
	// raw files when Extractor.EventDays is on (its Iceberg table is
	// partitioned by day(Event)); "" for raw tables, which have no
	// canonical columns.
	Event string
	// Raw marks a raw table (order_items, reviews): no canonical columns,
	// the source's columns land as they are, readable as
	// raw.<source>_<name>, for user models to map in SQL.
	Raw bool
}

// Column returns the named column and whether it exists.
func (e Entity) Column(name string) (Column, bool) {
	for _, c := range e.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// Schema returns the entity's canonical Arrow schema.
func (e Entity) Schema() *arrow.Schema {
	fields := make([]arrow.Field, len(e.Columns))
	for i, c := range e.Columns {
		fields[i] = arrow.Field{Name: c.Name, Type: c.Type.Arrow(), Nullable: true}
	}
	return arrow.NewSchema(fields, nil)
}

var entities = map[string]Entity{}

// registerEntity is called from init in entities.go; entities are part of cdw's
// contract with its SQL models, so they are declared in code, not config.
func registerEntity(e Entity) { entities[e.Name] = e }

// LookupEntity returns the named entity or an error listing the known ones.
func LookupEntity(name string) (Entity, error) {
	e, ok := entities[name]
	if !ok {
		return Entity{}, fmt.Errorf("unknown entity %q (known: %v)", name, EntityNames())
	}
	return e, nil
}

// ResolveEntity returns the named canonical entity, or a raw table of that
// name when it is none (a lower-case name: letters, digits and _).
func ResolveEntity(name string) (Entity, error) {
	if e, ok := entities[name]; ok {
		return e, nil
	}
	if !validRawName(name) {
		return Entity{}, fmt.Errorf("%q is neither an entity (%v) nor a raw table name (lower-case letters, digits and _, starting with a letter)",
			name, EntityNames())
	}
	return Entity{Name: name, Doc: "raw table", Raw: true}, nil
}

func validRawName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// EntityNames lists the entities in a stable order.
func EntityNames() []string {
	names := make([]string, 0, len(entities))
	for n := range entities {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// KeySeparator joins the parts of a composite key (order_id: [customer,
// day]). It is the ASCII unit separator, which no text export uses; a part
// that contains it anyway is refused (see JoinKey), so two different part
// lists never give the same key.
const KeySeparator = "\x1f"

// JoinKey joins the parts of a composite key with KeySeparator. It fails
// when a part is empty (a key needs all its parts) or contains the
// separator; the error names the part.
func JoinKey(names, parts []string) (string, error) {
	n := 0
	for i, p := range parts {
		if p == "" {
			return "", fmt.Errorf("key part %s is empty", names[i])
		}
		if strings.Contains(p, KeySeparator) {
			return "", fmt.Errorf("key part %s contains the key separator U+001F", names[i])
		}
		n += len(p) + 1
	}
	var b strings.Builder
	b.Grow(n)
	for i, p := range parts {
		if i > 0 {
			b.WriteString(KeySeparator)
		}
		b.WriteString(p)
	}
	return b.String(), nil
}
