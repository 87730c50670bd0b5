package extract

import (
	"bytes"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/snappy"
)

// TestFastSnappyIsPlainSnappy: the codec Parquet files are written with is
// ours, and what it writes is standard snappy that other decoders read.
func TestFastSnappyIsPlainSnappy(t *testing.T) {
	c, err := compress.GetCodec(compress.Codecs.Snappy)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(fastSnappy); !ok {
		t.Fatalf("snappy codec is %T, want fastSnappy", c)
	}
	src := bytes.Repeat([]byte("order_id=100171,line=2,status=returned;"), 5000)
	enc := c.Encode(nil, src)
	if len(enc) >= len(src) {
		t.Fatalf("encoded %d bytes into %d: not compressed", len(src), len(enc))
	}
	dec, err := snappy.Decode(nil, enc)
	if err != nil || !bytes.Equal(dec, src) {
		t.Fatalf("standard snappy decoder: err %v, round trip equal %v", err, bytes.Equal(dec, src))
	}
}
