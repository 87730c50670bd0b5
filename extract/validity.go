package extract

import (
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Validity is the Arrow validity bitmap of rows values of which those at the
// indexes in nulls are NULL; nil (all valid) when there are none. Column
// builders that collect values in plain slices record their NULLs this way.
func Validity(rows int, nulls []int) *memory.Buffer {
	if len(nulls) == 0 {
		return nil
	}
	bits := make([]byte, bitutil.BytesForBits(int64(rows)))
	bitutil.SetBitsTo(bits, 0, int64(rows), true)
	for _, i := range nulls {
		bitutil.ClearBit(bits, i)
	}
	return memory.NewBufferBytes(bits)
}
