package postgres

import (
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cdwhq/cdw/extract"
)

// field is one source column as PostgreSQL describes it. The fields of the
// last read are remembered in the committed cursor, so a later read can tell
// whether the source schema changed in a way that would lose data.
type field struct {
	Name string `json:"name"`
	Type string `json:"type"` // format_type(oid, typmod), e.g. numeric(12,2)
	OID  uint32 `json:"oid"`
	Mod  int32  `json:"mod"` // type modifier, -1 when none
}

// Unconstrained numeric (no precision and scale declared) is written as
// decimal128(38, 9): 29 digits before the point and 9 after. A value that does
// not fit exactly is rejected to quarantine, never rounded.
const (
	looseNumericPrecision = 38
	looseNumericScale     = 9
)

// numericMod returns the declared precision and scale of a numeric column.
func (f field) numericMod() (precision, scale int32, declared bool) {
	if f.Mod < 4 {
		return 0, 0, false
	}
	m := f.Mod - 4
	return (m >> 16) & 0xffff, ((m & 0x7ff) ^ 1024) - 1024, true
}

// decimalType returns the Arrow decimal a numeric column is written as, or
// ok=false when no decimal128 holds it (precision over 38, negative scale or
// scale above precision): such columns are written as text.
func (f field) decimalType() (dt *arrow.Decimal128Type, ok bool) {
	p, s, declared := f.numericMod()
	if !declared {
		return &arrow.Decimal128Type{Precision: looseNumericPrecision, Scale: looseNumericScale}, true
	}
	if p < 1 || p > 38 || s < 0 || s > p {
		return nil, false
	}
	return &arrow.Decimal128Type{Precision: p, Scale: s}, true
}

// conv says how the bytes of one result column become Arrow values.
type conv int

const (
	convText            conv = iota // any type, text format → string
	convBool                        // bool
	convInt                         // int2, int4, int8, oid → int64
	convFloat32                     // float4
	convFloat64                     // float8, float4 widened
	convIntToFloat                  // int2, int4, int8 → float64 (int8 only when exact)
	convDecimal                     // numeric → decimal128
	convNumericToInt                // numeric(p≤18, 0) → int64
	convBytea                       // bytea → binary
	convDate                        // date → date32
	convDateToTimestamp             // date → midnight UTC
	convTime                        // time → time64[us]
	convTimestamp                   // timestamp, timestamptz → timestamp[us]
	convList                        // one-dimensional array → list
	convIntText                     // int2, int4, int8 read in binary → decimal text
)

// colSpec is the plan for one output column.
type colSpec struct {
	conv  conv
	arrow arrow.DataType
	elem  uint32 // element type of a convList; the source type of a convInt
}

func (c colSpec) format() int16 {
	if c.conv == convText {
		return pgtype.TextFormatCode
	}
	return pgtype.BinaryFormatCode
}

var (
	timestampUTC   = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	timestampNaive = &arrow.TimestampType{Unit: arrow.Microsecond}
)

// nativeSpec maps a column passed through under its own name onto the Arrow
// type that holds every value of its PostgreSQL type.
func nativeSpec(f field) colSpec {
	switch f.OID {
	case pgtype.BoolOID:
		return colSpec{conv: convBool, arrow: arrow.FixedWidthTypes.Boolean}
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.OIDOID:
		// Integers widen to int64, so a source migrating int4 to int8 keeps
		// one raw type.
		return colSpec{conv: convInt, arrow: arrow.PrimitiveTypes.Int64, elem: f.OID}
	case pgtype.Float4OID:
		return colSpec{conv: convFloat32, arrow: arrow.PrimitiveTypes.Float32}
	case pgtype.Float8OID:
		return colSpec{conv: convFloat64, arrow: arrow.PrimitiveTypes.Float64}
	case pgtype.NumericOID:
		if dt, ok := f.decimalType(); ok {
			return colSpec{conv: convDecimal, arrow: dt}
		}
	case pgtype.ByteaOID:
		return colSpec{conv: convBytea, arrow: arrow.BinaryTypes.Binary}
	case pgtype.DateOID:
		return colSpec{conv: convDate, arrow: arrow.FixedWidthTypes.Date32}
	case pgtype.TimeOID:
		return colSpec{conv: convTime, arrow: arrow.FixedWidthTypes.Time64us}
	case pgtype.TimestampOID:
		return colSpec{conv: convTimestamp, arrow: timestampNaive}
	case pgtype.TimestamptzOID:
		return colSpec{conv: convTimestamp, arrow: timestampUTC}
	case pgtype.TextArrayOID, pgtype.VarcharArrayOID, pgtype.BPCharArrayOID, pgtype.NameArrayOID:
		return colSpec{conv: convList, arrow: arrow.ListOf(arrow.BinaryTypes.String), elem: pgtype.TextOID}
	case pgtype.Int2ArrayOID, pgtype.Int4ArrayOID, pgtype.Int8ArrayOID:
		return colSpec{conv: convList, arrow: arrow.ListOf(arrow.PrimitiveTypes.Int64), elem: pgtype.Int8OID}
	case pgtype.Float4ArrayOID:
		return colSpec{conv: convList, arrow: arrow.ListOf(arrow.PrimitiveTypes.Float32), elem: pgtype.Float4OID}
	case pgtype.Float8ArrayOID:
		return colSpec{conv: convList, arrow: arrow.ListOf(arrow.PrimitiveTypes.Float64), elem: pgtype.Float8OID}
	case pgtype.BoolArrayOID:
		return colSpec{conv: convList, arrow: arrow.ListOf(arrow.FixedWidthTypes.Boolean), elem: pgtype.BoolOID}
	}
	// Text, varchar, uuid, json, jsonb, enums, intervals and everything else:
	// PostgreSQL's own text form, which its input functions read back exactly.
	return colSpec{conv: convText, arrow: arrow.BinaryTypes.String}
}

// canonicalSpec maps a source column onto a canonical entity column, or says
// why it cannot without losing data.
func canonicalSpec(f field, c extract.Column) (colSpec, error) {
	bad := func() (colSpec, error) {
		return colSpec{}, fmt.Errorf("source column %q has type %s, which does not map onto %s column %q; cast it in a query: %q",
			f.Name, f.Type, c.Type, c.Name, "SELECT …, "+f.Name+"::"+pgTypeFor(c.Type)+" AS "+f.Name+" …")
	}
	switch c.Type {
	case extract.String:
		switch f.OID {
		case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
			// Integer ids (order numbers) as text: formatting them is
			// cheaper here than on the server, which is half an extract's work.
			return colSpec{conv: convIntText, arrow: c.Type.Arrow()}, nil
		}
		return colSpec{conv: convText, arrow: c.Type.Arrow()}, nil
	case extract.Int:
		switch f.OID {
		case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.OIDOID:
			return colSpec{conv: convInt, arrow: c.Type.Arrow(), elem: f.OID}, nil
		case pgtype.NumericOID:
			if p, s, ok := f.numericMod(); ok && s == 0 && p <= 18 {
				return colSpec{conv: convNumericToInt, arrow: c.Type.Arrow()}, nil
			}
		}
	case extract.Float:
		switch f.OID {
		case pgtype.Float4OID, pgtype.Float8OID:
			return colSpec{conv: convFloat64, arrow: c.Type.Arrow()}, nil
		case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
			return colSpec{conv: convIntToFloat, arrow: c.Type.Arrow()}, nil
		case pgtype.NumericOID:
			// Money stays exact: a numeric keeps its decimal type under the
			// canonical name (DuckDB reads it wherever a DOUBLE is expected)
			// rather than being rounded to binary floating point.
			if dt, ok := f.decimalType(); ok {
				return colSpec{conv: convDecimal, arrow: dt}, nil
			}
		}
	case extract.Decimal:
		switch f.OID {
		case pgtype.NumericOID:
			// Exact: the numeric keeps its own decimal type; the raw
			// view casts it to the canonical DECIMAL(18,4).
			if dt, ok := f.decimalType(); ok {
				return colSpec{conv: convDecimal, arrow: dt}, nil
			}
		case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
			return colSpec{conv: convInt, arrow: arrow.PrimitiveTypes.Int64, elem: f.OID}, nil
		case pgtype.Float4OID, pgtype.Float8OID:
			// Binary floating point in the source already: kept as it is,
			// cast to the decimal (rounded to 4 places) by the raw view.
			return colSpec{conv: convFloat64, arrow: arrow.PrimitiveTypes.Float64}, nil
		}
	case extract.Bool:
		if f.OID == pgtype.BoolOID {
			return colSpec{conv: convBool, arrow: c.Type.Arrow()}, nil
		}
	case extract.Timestamp:
		switch f.OID {
		case pgtype.TimestamptzOID, pgtype.TimestampOID:
			// A timestamp without time zone is taken to be UTC.
			return colSpec{conv: convTimestamp, arrow: c.Type.Arrow()}, nil
		case pgtype.DateOID:
			return colSpec{conv: convDateToTimestamp, arrow: c.Type.Arrow()}, nil
		}
	}
	return bad()
}

func pgTypeFor(t extract.Type) string {
	switch t {
	case extract.Int:
		return "bigint"
	case extract.Float:
		return "float8"
	case extract.Decimal:
		return "numeric(18,4)"
	case extract.Bool:
		return "boolean"
	case extract.Timestamp:
		return "timestamptz"
	}
	return "text"
}

// compatible reports whether a source column may change type from old to new
// between reads without losing data in raw: integer widths, text kinds and
// json/jsonb are interchangeable, numeric may not lose decimal places, float8
// may not shrink to float4; any other change of type is refused.
func compatible(old, new field) bool {
	if old.OID == new.OID {
		if old.OID != pgtype.NumericOID {
			return true // e.g. varchar(20) → varchar(50), timestamp(3) → timestamp(6)
		}
		return numericScale(new) >= numericScale(old)
	}
	if old.OID == pgtype.Float4OID && new.OID == pgtype.Float8OID {
		return true
	}
	fo := family(old.OID)
	return fo != "" && fo == family(new.OID)
}

// numericScale is the declared scale; unconstrained numeric keeps any scale.
func numericScale(f field) int32 {
	if _, s, ok := f.numericMod(); ok {
		return s
	}
	return math.MaxInt32
}

func family(oid uint32) string {
	switch oid {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		return "integer"
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID:
		return "text"
	case pgtype.JSONOID, pgtype.JSONBOID:
		return "json"
	case pgtype.TextArrayOID, pgtype.VarcharArrayOID, pgtype.BPCharArrayOID, pgtype.NameArrayOID:
		return "text[]"
	case pgtype.Int2ArrayOID, pgtype.Int4ArrayOID, pgtype.Int8ArrayOID:
		return "integer[]"
	}
	return ""
}
