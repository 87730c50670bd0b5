package files

import (
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/cdwhq/cdw/extract"
)

// rowsBuilder collects converted rows column by column in plain Go slices
// and hands them to Arrow without copying. Values are appended as a row is
// converted; a row rejected halfway is taken back with truncate. (Arrow's
// builders cost a third of the conversion: a validity bit and a type switch
// per value, and no way to take a value back.)
type rowsBuilder struct {
	schema *arrow.Schema
	cols   []*column // the plan's columns, then _source_line
	lines  *column
	n      int // rows complete
	// rounded counts committed rows with a number rounded to the
	// Decimal's places; roundedEx is the first, for the log line.
	rounded      int64
	roundedEx    string
	rowRoundedEx string // the row being appended
}

// column is one column's values so far.
type column struct {
	typ     extract.Type
	ints    []int64   // Int, Timestamp (microseconds), Decimal (unscaled)
	floats  []float64 // Float
	bools   []bool    // Bool
	offsets []int32   // String: value i is data[offsets[i]:offsets[i+1]]
	data    []byte
	nulls   []int // rows that are NULL, ascending
	hint    int   // String: data bytes of the last record, to reserve
}

// rowsBuilder starts collecting rows of the plan's schema.
func (p *plan) rowsBuilder(schema *arrow.Schema) *rowsBuilder {
	rb := &rowsBuilder{schema: schema}
	for _, c := range p.columns {
		rb.cols = append(rb.cols, &column{typ: c.typ})
	}
	rb.lines = &column{typ: extract.Int}
	rb.cols = append(rb.cols, rb.lines)
	for _, c := range rb.cols {
		c.reset(0)
	}
	return rb
}

// reserve makes room for n more rows.
func (rb *rowsBuilder) reserve(n int) {
	for _, c := range rb.cols {
		switch c.typ {
		case extract.Int, extract.Timestamp, extract.Decimal:
			c.ints = slices.Grow(c.ints, n)
		case extract.Float:
			c.floats = slices.Grow(c.floats, n)
		case extract.Bool:
			c.bools = slices.Grow(c.bools, n)
		default:
			c.offsets = slices.Grow(c.offsets, n)
			c.data = slices.Grow(c.data, c.hint)
		}
	}
}

// commit ends a row whose values are all appended.
func (rb *rowsBuilder) commit(line int64) {
	rb.lines.ints = append(rb.lines.ints, line)
	rb.n++
	if rb.rowRoundedEx != "" {
		rb.rounded++
		if rb.roundedEx == "" {
			rb.roundedEx = rb.rowRoundedEx
		}
		rb.rowRoundedEx = ""
	}
}

// takeRounded returns and resets the rounded rows counted so far.
func (rb *rowsBuilder) takeRounded() (int64, string) {
	n, ex := rb.rounded, rb.roundedEx
	rb.rounded, rb.roundedEx = 0, ""
	return n, ex
}

// rollback takes back the values appended for a row that was rejected.
func (rb *rowsBuilder) rollback() {
	rb.rowRoundedEx = ""
	for _, c := range rb.cols {
		c.truncate(rb.n)
	}
}

// full reports whether the record should be cut: Arrow strings use 32-bit
// offsets.
func (rb *rowsBuilder) full() bool {
	for _, c := range rb.cols {
		if len(c.data) > math.MaxInt32/2 {
			return true
		}
	}
	return false
}

func (c *column) reset(rows int) {
	c.ints, c.floats, c.bools, c.offsets, c.data, c.nulls = nil, nil, nil, nil, nil, nil
	if c.typ == extract.String {
		c.offsets = make([]int32, 1, rows+1)
	}
}

func (c *column) truncate(rows int) {
	switch c.typ {
	case extract.Int, extract.Timestamp, extract.Decimal:
		c.ints = c.ints[:min(len(c.ints), rows)]
	case extract.Float:
		c.floats = c.floats[:min(len(c.floats), rows)]
	case extract.Bool:
		c.bools = c.bools[:min(len(c.bools), rows)]
	default:
		c.offsets = c.offsets[:min(len(c.offsets), rows+1)]
		c.data = c.data[:c.offsets[len(c.offsets)-1]]
	}
	for len(c.nulls) > 0 && c.nulls[len(c.nulls)-1] >= rows {
		c.nulls = c.nulls[:len(c.nulls)-1]
	}
}

func (c *column) appendNull(row int) {
	c.nulls = append(c.nulls, row)
	switch c.typ {
	case extract.Int, extract.Timestamp, extract.Decimal:
		c.ints = append(c.ints, 0)
	case extract.Float:
		c.floats = append(c.floats, 0)
	case extract.Bool:
		c.bools = append(c.bools, false)
	default:
		c.offsets = append(c.offsets, int32(len(c.data)))
	}
}

func (c *column) appendString(b []byte) {
	c.data = append(c.data, b...)
	c.offsets = append(c.offsets, int32(len(c.data)))
}

// array hands the values over to Arrow and starts the column afresh.
func (c *column) array(dt arrow.DataType, rows int) arrow.Array {
	validity := extract.Validity(rows, c.nulls)
	var bufs []*memory.Buffer
	switch c.typ {
	case extract.Int, extract.Timestamp:
		bufs = []*memory.Buffer{validity, memory.NewBufferBytes(arrow.Int64Traits.CastToBytes(c.ints))}
	case extract.Float:
		bufs = []*memory.Buffer{validity, memory.NewBufferBytes(arrow.Float64Traits.CastToBytes(c.floats))}
	case extract.Decimal:
		nums := make([]decimal128.Num, len(c.ints))
		for i, v := range c.ints {
			nums[i] = decimal128.FromI64(v)
		}
		bufs = []*memory.Buffer{validity, memory.NewBufferBytes(arrow.Decimal128Traits.CastToBytes(nums))}
	case extract.Bool:
		bits := make([]byte, bitutil.BytesForBits(int64(rows)))
		for i, v := range c.bools {
			if v {
				bitutil.SetBit(bits, i)
			}
		}
		bufs = []*memory.Buffer{validity, memory.NewBufferBytes(bits)}
	default:
		c.hint = len(c.data)
		bufs = []*memory.Buffer{validity, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(c.offsets)), memory.NewBufferBytes(c.data)}
	}
	data := array.NewData(dt, rows, bufs, nil, len(c.nulls), 0)
	defer data.Release()
	c.reset(rows)
	return array.MakeFromData(data)
}

// record returns the rows committed since the last call (nil if none), with
// fileName (newFileName) as _source_file. The values go to Arrow as they are:
// the builder starts new slices.
func (rb *rowsBuilder) record(fileName arrow.Array) arrow.RecordBatch {
	n := rb.n
	if n == 0 {
		return nil
	}
	rb.n = 0
	arrs := make([]arrow.Array, 0, len(rb.cols)+1)
	for i, c := range rb.cols[:len(rb.cols)-1] {
		arrs = append(arrs, c.array(rb.schema.Field(i).Type, n))
	}
	zeros := memory.NewBufferBytes(make([]byte, arrow.Int32Traits.BytesRequired(n)))
	idxData := array.NewData(arrow.PrimitiveTypes.Int32, n, []*memory.Buffer{nil, zeros}, nil, 0, 0)
	idx := array.MakeFromData(idxData)
	arrs = append(arrs, array.NewDictionaryArray(fileNameType, idx, fileName), rb.lines.array(arrow.PrimitiveTypes.Int64, n))
	rec := array.NewRecordBatch(rb.schema, arrs, int64(n))
	idx.Release()
	idxData.Release()
	for _, a := range arrs {
		a.Release()
	}
	return rec
}
