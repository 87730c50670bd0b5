package postgres

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cdwhq/cdw/extract"
)

// PostgreSQL counts time from 2000-01-01; Arrow from 1970-01-01.
const (
	pgEpochMicros = 946_684_800_000_000
	pgEpochDays   = 10_957
	microsPerDay  = 86_400_000_000
)

// DuckDB spells ±infinity as the extreme int64 (timestamps) and int32 (dates)
// values, so PostgreSQL's infinities survive the trip into raw.
const (
	tsInfinity    = math.MaxInt64
	tsNegInfinity = -math.MaxInt64
	dateInfinity  = math.MaxInt32
	dateNegInf    = -math.MaxInt32
)

func pgTimestamp(v []byte) (arrow.Timestamp, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("malformed timestamp (%d bytes)", len(v))
	}
	t := int64(binary.BigEndian.Uint64(v))
	switch t {
	case math.MaxInt64:
		return tsInfinity, nil
	case math.MinInt64:
		return tsNegInfinity, nil
	}
	if t > math.MaxInt64-pgEpochMicros {
		return 0, errors.New("timestamp beyond year 294246 does not fit")
	}
	return arrow.Timestamp(t + pgEpochMicros), nil
}

func pgDate(v []byte) (int32, error) {
	if len(v) != 4 {
		return 0, fmt.Errorf("malformed date (%d bytes)", len(v))
	}
	d := int32(binary.BigEndian.Uint32(v))
	switch d {
	case math.MaxInt32:
		return dateInfinity, nil
	case math.MinInt32:
		return dateNegInf, nil
	}
	return d + pgEpochDays, nil // PostgreSQL dates end in year 5874897: no overflow
}

func pgInt(v []byte) int64 {
	switch len(v) {
	case 2:
		return int64(int16(binary.BigEndian.Uint16(v)))
	case 4:
		return int64(int32(binary.BigEndian.Uint32(v)))
	default:
		return int64(binary.BigEndian.Uint64(v))
	}
}

func checkLen(v []byte, n ...int) error {
	for _, l := range n {
		if len(v) == l {
			return nil
		}
	}
	return fmt.Errorf("malformed value (%d bytes)", len(v))
}

// binder turns one result column's bytes into Arrow values. check runs for
// every column of a row before any add, so a row with one bad value is
// rejected whole; it may keep a decoded value for add. A nil check never fails.
type binder struct {
	check func(v []byte) error
	add   func(v []byte)
	// array, when set, returns the values added since its last call: the
	// column keeps them itself rather than in its Arrow builder.
	array func() arrow.Array
}

// textColumn collects the values of one text column.
type textColumn struct {
	typ     arrow.DataType
	offsets []int32
	data    []byte
	nulls   []int
	rows    int // rows of the last array, the capacity to start the next with
	size    int // its data bytes
}

func (t *textColumn) add(v []byte) {
	if t.offsets == nil {
		t.offsets = make([]int32, 1, t.rows+1)
		t.data = make([]byte, 0, t.size)
	}
	if v == nil {
		t.nulls = append(t.nulls, len(t.offsets)-1)
	}
	t.data = append(t.data, v...)
	t.offsets = append(t.offsets, int32(len(t.data)))
}

// array hands the values over to Arrow (without copying) and starts afresh.
// Values are at most maxChunkBytes a chunk, far below the int32 offsets' limit.
func (t *textColumn) array() arrow.Array {
	if t.offsets == nil {
		t.offsets = []int32{0}
	}
	n := len(t.offsets) - 1
	validity := extract.Validity(n, t.nulls)
	data := array.NewData(t.typ, n, []*memory.Buffer{validity, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(t.offsets)), memory.NewBufferBytes(t.data)}, nil, len(t.nulls), 0)
	defer data.Release()
	t.rows, t.size = n, len(t.data)
	t.offsets, t.data, t.nulls = nil, nil, nil
	return array.MakeFromData(data)
}

// bindOptions are facts about the connection a binder needs.
type bindOptions struct {
	required     bool // a NULL rejects the row (canonical required column)
	validateUTF8 bool // the server does not guarantee UTF-8 (SQL_ASCII database)
}

// bind creates the binder of a column spec over its Arrow builder.
func bind(spec colSpec, b array.Builder, o bindOptions) binder {
	var bd binder
	switch spec.conv {
	case convText, convIntText:
		bd = bindText(spec, b, o)
	case convBool, convInt, convFloat32, convFloat64, convIntToFloat:
		bd = bindNumber(spec, b)
	case convDecimal, convNumericToInt:
		bd = bindNumeric(spec, b)
	case convDate, convDateToTimestamp, convTime, convTimestamp:
		bd = bindTemporal(spec, b)
	case convBytea, convList:
		bd = bindBinary(spec, b)
	default:
		panic(fmt.Sprintf("postgres: unknown conversion %d", spec.conv))
	}
	if o.required {
		bd = requireValue(bd)
	}
	return bd
}

// requireValue makes a binder reject a NULL before its own check runs: the
// canonical schema says the column is required.
func requireValue(bd binder) binder {
	inner := bd.check
	bd.check = func(v []byte) error {
		if v == nil {
			return errRequiredNull
		}
		if inner != nil {
			return inner(v)
		}
		return nil
	}
	return bd
}

// bindText binds the columns kept as text: text itself and integers that
// the canonical schema wants as strings.
func bindText(spec colSpec, b array.Builder, o bindOptions) binder {
	var bd binder
	switch spec.conv {
	case convText:
		// Text is most of most tables: kept in plain slices, it costs a
		// third of what arrow's StringBuilder costs per value.
		tc := &textColumn{typ: b.Type()}
		bd.add = tc.add
		bd.array = tc.array
	case convIntText:
		tc := &textColumn{typ: b.Type()}
		var buf []byte
		bd.check = func(v []byte) error { return checkLenOrNull(v, 2, 4, 8) }
		bd.add = func(v []byte) {
			if v == nil {
				tc.add(nil)
				return
			}
			buf = strconv.AppendInt(buf[:0], pgInt(v), 10)
			tc.add(buf)
		}
		bd.array = tc.array
		if o.validateUTF8 {
			bd.check = func(v []byte) error {
				if v != nil && !utf8.Valid(v) {
					return errors.New("is not valid UTF-8")
				}
				return nil
			}
		}
	}
	return bd
}

// bindNumber binds booleans, integers and floats, which PostgreSQL sends as
// fixed-width big-endian values.
func bindNumber(spec colSpec, b array.Builder) binder {
	var bd binder
	switch spec.conv {
	case convBool:
		bb := b.(*array.BooleanBuilder)
		bd.check = func(v []byte) error { return checkLenOrNull(v, 1) }
		bd.add = func(v []byte) {
			if v == nil {
				bb.AppendNull()
				return
			}
			bb.Append(v[0] != 0)
		}
	case convInt:
		ib := b.(*array.Int64Builder)
		bd.check = func(v []byte) error { return checkLenOrNull(v, 2, 4, 8) }
		bd.add = func(v []byte) {
			if v == nil {
				ib.AppendNull()
				return
			}
			if len(v) == 4 && spec.elem == pgtype.OIDOID {
				ib.Append(int64(binary.BigEndian.Uint32(v)))
				return
			}
			ib.Append(pgInt(v))
		}
	case convFloat32:
		fb := b.(*array.Float32Builder)
		bd.check = func(v []byte) error { return checkLenOrNull(v, 4) }
		bd.add = func(v []byte) {
			if v == nil {
				fb.AppendNull()
				return
			}
			fb.Append(math.Float32frombits(binary.BigEndian.Uint32(v)))
		}
	case convFloat64:
		fb := b.(*array.Float64Builder)
		bd.check = func(v []byte) error { return checkLenOrNull(v, 4, 8) }
		bd.add = func(v []byte) {
			switch len(v) {
			case 4:
				fb.Append(float64(math.Float32frombits(binary.BigEndian.Uint32(v))))
			case 8:
				fb.Append(math.Float64frombits(binary.BigEndian.Uint64(v)))
			default:
				fb.AppendNull()
			}
		}
	case convIntToFloat:
		fb := b.(*array.Float64Builder)
		bd.check = func(v []byte) error {
			if err := checkLenOrNull(v, 2, 4, 8); err != nil || v == nil {
				return err
			}
			if n := pgInt(v); n > 1<<53 || n < -(1<<53) {
				return fmt.Errorf("integer %d has no exact float64", n)
			}
			return nil
		}
		bd.add = func(v []byte) {
			if v == nil {
				fb.AppendNull()
				return
			}
			fb.Append(float64(pgInt(v)))
		}
	}
	return bd
}

// bindNumeric binds numeric values, decoded in check so a value that does
// not fit its Arrow type rejects the row.
func bindNumeric(spec colSpec, b array.Builder) binder {
	var bd binder
	switch spec.conv {
	case convDecimal:
		db := b.(*array.Decimal128Builder)
		dt := spec.arrow.(*arrow.Decimal128Type)
		var n decimal128.Num
		bd.check = func(v []byte) (err error) {
			if v == nil {
				return nil
			}
			n, err = numericUnscaled(v, dt.Precision, dt.Scale)
			if err != nil {
				return fmt.Errorf("%w for decimal(%d,%d)", err, dt.Precision, dt.Scale)
			}
			return nil
		}
		bd.add = func(v []byte) {
			if v == nil {
				db.AppendNull()
				return
			}
			db.Append(n)
		}
	case convNumericToInt:
		ib := b.(*array.Int64Builder)
		var n decimal128.Num
		bd.check = func(v []byte) (err error) {
			if v == nil {
				return nil
			}
			n, err = numericUnscaled(v, 18, 0)
			return err
		}
		bd.add = func(v []byte) {
			if v == nil {
				ib.AppendNull()
				return
			}
			ib.Append(int64(n.LowBits()))
		}
	}
	return bd
}

// bindTemporal binds dates, times and timestamps, mapping PostgreSQL's
// infinities where the Arrow type has a value for them.
func bindTemporal(spec colSpec, b array.Builder) binder {
	var bd binder
	switch spec.conv {
	case convDate:
		db := b.(*array.Date32Builder)
		var d int32
		bd.check = func(v []byte) (err error) {
			if v != nil {
				d, err = pgDate(v)
			}
			return err
		}
		bd.add = func(v []byte) {
			if v == nil {
				db.AppendNull()
				return
			}
			db.Append(arrow.Date32(d))
		}
	case convDateToTimestamp:
		tb := b.(*array.TimestampBuilder)
		var t arrow.Timestamp
		bd.check = func(v []byte) error {
			if v == nil {
				return nil
			}
			d, err := pgDate(v)
			switch {
			case err != nil:
				return err
			case d == dateInfinity:
				t = tsInfinity
			case d == dateNegInf:
				t = tsNegInfinity
			case int64(d) > math.MaxInt64/microsPerDay || int64(d) < math.MinInt64/microsPerDay:
				return errors.New("date out of the timestamp range")
			default:
				t = arrow.Timestamp(int64(d) * microsPerDay)
			}
			return nil
		}
		bd.add = func(v []byte) {
			if v == nil {
				tb.AppendNull()
				return
			}
			tb.Append(t)
		}
	case convTime:
		tb := b.(*array.Time64Builder)
		bd.check = func(v []byte) error { return checkLenOrNull(v, 8) }
		bd.add = func(v []byte) {
			if v == nil {
				tb.AppendNull()
				return
			}
			tb.Append(arrow.Time64(binary.BigEndian.Uint64(v)))
		}
	case convTimestamp:
		tb := b.(*array.TimestampBuilder)
		var t arrow.Timestamp
		bd.check = func(v []byte) (err error) {
			if v != nil {
				t, err = pgTimestamp(v)
			}
			return err
		}
		bd.add = func(v []byte) {
			if v == nil {
				tb.AppendNull()
				return
			}
			tb.Append(t)
		}
	}
	return bd
}

// bindBinary binds bytea and arrays, whose values Arrow keeps whole.
func bindBinary(spec colSpec, b array.Builder) binder {
	var bd binder
	switch spec.conv {
	case convBytea:
		bb := b.(*array.BinaryBuilder)
		bd.add = func(v []byte) {
			if v == nil {
				bb.AppendNull()
				return
			}
			bb.Append(v)
		}
	case convList:
		lb := b.(*array.ListBuilder)
		bd.check = func(v []byte) error {
			if v == nil {
				return nil
			}
			return walkArray(v, spec.elem, nil)
		}
		add := listAppender(lb.ValueBuilder(), spec.elem)
		bd.add = func(v []byte) {
			if v == nil {
				lb.AppendNull()
				return
			}
			lb.Append(true)
			walkArray(v, spec.elem, add)
		}
	}
	return bd
}

var errRequiredNull = errors.New("is null, but the column is required")

func checkLenOrNull(v []byte, n ...int) error {
	if v == nil {
		return nil
	}
	return checkLen(v, n...)
}

// listAppender appends one array element (nil = NULL) to a list's values.
func listAppender(vb array.Builder, elem uint32) func(e []byte) {
	switch elem {
	case pgtype.TextOID:
		sb := vb.(*array.StringBuilder)
		return func(e []byte) {
			if e == nil {
				sb.AppendNull()
				return
			}
			sb.BinaryBuilder.Append(e)
		}
	case pgtype.Int8OID:
		ib := vb.(*array.Int64Builder)
		return func(e []byte) {
			if e == nil {
				ib.AppendNull()
				return
			}
			ib.Append(pgInt(e))
		}
	case pgtype.Float4OID:
		fb := vb.(*array.Float32Builder)
		return func(e []byte) {
			if e == nil {
				fb.AppendNull()
				return
			}
			fb.Append(math.Float32frombits(binary.BigEndian.Uint32(e)))
		}
	case pgtype.Float8OID:
		fb := vb.(*array.Float64Builder)
		return func(e []byte) {
			if e == nil {
				fb.AppendNull()
				return
			}
			fb.Append(math.Float64frombits(binary.BigEndian.Uint64(e)))
		}
	case pgtype.BoolOID:
		bb := vb.(*array.BooleanBuilder)
		return func(e []byte) {
			if e == nil {
				bb.AppendNull()
				return
			}
			bb.Append(e[0] != 0)
		}
	}
	panic(fmt.Sprintf("postgres: no list appender for element type %d", elem))
}

// walkArray checks a binary array (one dimension at most) and, with add,
// hands each element over. Layout: int32 ndim, int32 has-nulls, uint32 element
// type, per dimension int32 length and int32 lower bound, then per element an
// int32 length (−1 for NULL) and the bytes.
func walkArray(v []byte, elem uint32, add func(e []byte)) error {
	if len(v) < 12 {
		return fmt.Errorf("malformed array (%d bytes)", len(v))
	}
	ndim := int32(binary.BigEndian.Uint32(v))
	switch {
	case ndim == 0:
		return nil // empty array
	case ndim != 1:
		return fmt.Errorf("is a %d-dimensional array; only one dimension maps onto a list (select it as text, or unnest it, in a query:)", ndim)
	case len(v) < 20:
		return fmt.Errorf("malformed array (%d bytes)", len(v))
	}
	n := int(int32(binary.BigEndian.Uint32(v[12:])))
	p := v[20:]
	want := elemSize(elem)
	for i := 0; i < n; i++ {
		if len(p) < 4 {
			return fmt.Errorf("malformed array (truncated at element %d)", i+1)
		}
		l := int(int32(binary.BigEndian.Uint32(p)))
		p = p[4:]
		if l < 0 {
			if add != nil {
				add(nil)
			}
			continue
		}
		if l > len(p) || (want > 0 && l != want && !(elem == pgtype.Int8OID && (l == 2 || l == 4))) {
			return fmt.Errorf("malformed array (element %d has %d bytes)", i+1, l)
		}
		if add != nil {
			add(p[:l])
		}
		p = p[l:]
	}
	return nil
}

func elemSize(elem uint32) int {
	switch elem {
	case pgtype.Int8OID:
		return 8
	case pgtype.Float4OID:
		return 4
	case pgtype.Float8OID:
		return 8
	case pgtype.BoolOID:
		return 1
	}
	return 0
}

// cursorTextable reports whether cursorText can render values of a type, so
// the column can be read in binary; others are read as text.
func cursorTextable(oid uint32) bool {
	switch oid {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID,
		pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID,
		pgtype.UUIDOID, pgtype.TimestamptzOID, pgtype.TimestampOID, pgtype.DateOID:
		return true
	}
	return false
}

// cursorText renders a binary value as PostgreSQL input text, exactly: it is
// how a checkpoint remembers the last row's cursor and key. Only the last row
// of a chunk is rendered, so the server never formats these columns as text.
func cursorText(oid uint32, v []byte) (string, error) {
	switch oid {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		if err := checkLen(v, 2, 4, 8); err != nil {
			return "", err
		}
		return strconv.FormatInt(pgInt(v), 10), nil
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID:
		return string(v), nil
	case pgtype.UUIDOID:
		if err := checkLen(v, 16); err != nil {
			return "", err
		}
		h := hex.EncodeToString(v)
		return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
	case pgtype.TimestamptzOID, pgtype.TimestampOID:
		if err := checkLen(v, 8); err != nil {
			return "", err
		}
		us := int64(binary.BigEndian.Uint64(v))
		switch us {
		case math.MaxInt64:
			return "infinity", nil
		case math.MinInt64:
			return "-infinity", nil
		}
		sec, frac := us/1_000_000, us%1_000_000
		if frac < 0 {
			sec, frac = sec-1, frac+1_000_000
		}
		t := time.Unix(sec+pgEpochMicros/1_000_000, frac*1000).UTC()
		s := isoDate(t) + fmt.Sprintf(" %02d:%02d:%02d.%06d", t.Hour(), t.Minute(), t.Second(), frac)
		if oid == pgtype.TimestamptzOID {
			s += "+00"
		}
		return s + era(t), nil
	case pgtype.DateOID:
		if err := checkLen(v, 4); err != nil {
			return "", err
		}
		d := int32(binary.BigEndian.Uint32(v))
		switch d {
		case math.MaxInt32:
			return "infinity", nil
		case math.MinInt32:
			return "-infinity", nil
		}
		t := time.Unix((int64(d)+pgEpochDays)*86400, 0).UTC()
		return isoDate(t) + era(t), nil
	}
	return "", fmt.Errorf("no binary rendering for type %d", oid)
}

// isoDate writes the date part; years before 1 AD are written as BC years
// (PostgreSQL has no year 0: 1 BC is Go's year 0).
func isoDate(t time.Time) string {
	y := t.Year()
	if y < 1 {
		y = 1 - y
	}
	return fmt.Sprintf("%04d-%02d-%02d", y, t.Month(), t.Day())
}

func era(t time.Time) string {
	if t.Year() < 1 {
		return " BC"
	}
	return ""
}
