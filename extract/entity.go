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
	Bool      Type = "bool"
	Timestamp Type = "timestamp"
)

// Valid reports whether t is a known type.
func (t Type) Valid() bool {
	switch t {
	case String, Int, Float, Bool, Timestamp:
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
	case Bool:
		return "BOOLEAN"
	case Timestamp:
		return "TIMESTAMPTZ"
	default:
		return "VARCHAR"
	}
}

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
