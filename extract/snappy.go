package extract

import (
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/s2"
)

// fastSnappy is arrow-go's snappy codec with the encoder switched to s2's
// standard snappy mode. arrow-go compresses with klauspost's drop-in snappy
// package, which uses the slower "better" mode: that was a fifth to a quarter
// of a PostgreSQL extract's client CPU. The output is plain snappy either way,
// so every reader (DuckDB included) reads the files unchanged; they come out
// about 10 % larger, as large as DuckDB's own snappy files.
type fastSnappy struct{ compress.Codec }

func (fastSnappy) Encode(dst, src []byte) []byte { return s2.EncodeSnappy(dst, src) }

func (fastSnappy) EncodeLevel(dst, src []byte, _ int) []byte { return s2.EncodeSnappy(dst, src) }

func init() {
	c, err := compress.GetCodec(compress.Codecs.Snappy)
	if err != nil {
		panic(err) // arrow-go registers snappy in its own init, which runs first
	}
	compress.RegisterCodec(compress.Codecs.Snappy, fastSnappy{c})
}
