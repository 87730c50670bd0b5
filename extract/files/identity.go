package files

import (
	"bytes"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Without a mapped line key, an order line is identified by its content,
// not by its position: the line_no of an orders row is a 63-bit FNV-1a hash
// of the row's mapped fields, and the k-th repeat of the same content in one
// file (k ≥ 1) gets a hash of (content, k). So a row inserted into a
// re-exported file leaves every other line's key as it was, identical lines
// in overlapping exports are one line, and a file's genuine duplicate lines
// stay apart. Positions changed keys: one inserted row made every later line
// a new one (issue 16.1).

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// lineKey hashes the mapped fields of a record. 0xFF separates fields: it
// never occurs in UTF-8 text, so ("ab","c") and ("a","bc") differ.
func (p *plan) lineKey(of *openFile, fields [][]byte) int64 {
	h := uint64(fnvOffset)
	for i := range p.columns {
		if i == p.lineNoCol {
			continue
		}
		if idx := of.colIdx[i]; idx >= 0 && idx < len(fields) {
			for _, c := range bytes.TrimSpace(fields[idx]) {
				h = (h ^ uint64(c)) * fnvPrime
			}
		}
		h = (h ^ 0xFF) * fnvPrime
	}
	return int64(h & math.MaxInt64)
}

// repeatKey is the key of the k-th repeat of content hash h.
func repeatKey(h int64, k uint32) int64 {
	x := uint64(h)
	for i := 0; i < 4; i++ {
		x = (x ^ uint64(byte(k>>(8*i)))) * fnvPrime
	}
	return int64(x & math.MaxInt64)
}

// numberRepeats gives repeated content keys in rec their occurrence: it
// runs in file order (the blocks are hashed in parallel). It rewrites the
// line_no values in place: the record was just built from buffers nobody
// else holds. Memory: one map entry per distinct line of the file being
// read, and only for orders files without a mapped line_no.
func (p *plan) numberRepeats(of *openFile, rec arrow.RecordBatch) {
	if p.lineNoCol < 0 || rec == nil {
		return
	}
	if of.seen == nil {
		of.seen = map[int64]uint32{}
	}
	keys := rec.Column(p.lineNoCol).(*array.Int64).Int64Values()
	for i, h := range keys {
		k := of.seen[h]
		of.seen[h] = k + 1
		if k > 0 {
			keys[i] = repeatKey(h, k)
		}
	}
}
