package files

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// csvRecord is one record as a reader saw it, for comparing readers.
type csvRecord struct {
	line   int64
	fields string // fields joined by \x00
	err    error
}

func (r csvRecord) String() string {
	return fmt.Sprintf("line %d %q %v", r.line, r.fields, r.err)
}

// stdRecords reads data with encoding/csv configured as the files source
// configured it before it had a parser of its own.
func stdRecords(data []byte, comma rune) []csvRecord {
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comma = comma
	cr.FieldsPerRecord = -1
	var out []csvRecord
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			out = append(out, csvRecord{line: int64(pe.StartLine), err: pe.Err})
			continue
		}
		if err != nil {
			panic(err)
		}
		line, _ := cr.FieldPos(0)
		out = append(out, csvRecord{line: int64(line), fields: strings.Join(rec, "\x00")})
	}
}

// blockRecords reads data the way the parallel reader does: cut into blocks
// of about size bytes at record boundaries by cutRecords, each block parsed on
// its own with line numbers carried over.
func blockRecords(data []byte, comma rune, size int) []csvRecord {
	c := []byte(string(comma))
	var out []csvRecord
	var line int64
	for len(data) > 0 {
		n := min(size, len(data))
		eof := n == len(data)
		cut := cutRecords(data[:n], eof, c)
		for cut == 0 && !eof { // one record longer than the block
			n = min(2*n, len(data))
			eof = n == len(data)
			cut = cutRecords(data[:n], eof, c)
		}
		p := newCSVParser(data[:cut], line, c)
		for {
			fields, l, err, ok := p.next()
			if !ok {
				break
			}
			var s []string
			for _, f := range fields {
				s = append(s, string(f))
			}
			out = append(out, csvRecord{line: l, fields: strings.Join(s, "\x00"), err: err})
		}
		line += int64(bytes.Count(data[:cut], []byte("\n")))
		data = data[cut:]
	}
	return out
}

func sameRecords(t *testing.T, data []byte, want, got []csvRecord) {
	t.Helper()
	for i := 0; i < max(len(want), len(got)); i++ {
		var w, g csvRecord
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			t.Fatalf("input %q\nrecord %d: encoding/csv %v\n                  ours %v", data, i, w, g)
		}
	}
}

var parserCases = []string{
	"a,b,c\n1,2,3\n",
	"a,b\r\n1,2\r\n",
	"a,b\n\n\n1,2\n\r\n3,4",
	"a,b\n1,2\r",
	"a,b\n1,2\r\r\n3\r",
	`a,"b,c",d` + "\n" + `"x""y",z` + "\n",
	`"multi` + "\nline\r\nfield\",2\n3,4\n",
	`a,b"c,d` + "\n1,2\n",
	`a,"b"c,d` + "\n1,2\n",
	`a,"b` + "\n1,2\n",
	`"` + "\n",
	`a,"b"` + "\r\n" + `"c"` + "\r",
	`a,""` + "\n" + `"",""` + "\n,\n",
	`"a""` + "\n" + `b",c` + "\n",
	`"a"` + "\r" + `x,b` + "\n2\n",
	`x,"a` + "\n\n" + `b"` + "\n",
	"é,ü\n\xff,\"\xfe\"\n",
	"a;b;\"c;d\"\n1;\"\";3\n",
}

func TestCSVParserMatchesEncodingCSV(t *testing.T) {
	for _, c := range parserCases {
		for _, comma := range []rune{',', ';', '\t', '€'} {
			data := []byte(strings.ReplaceAll(c, ",", string(comma)))
			want := stdRecords(data, comma)
			for _, size := range []int{1, 2, 3, 5, 8, 64, 1 << 20} {
				sameRecords(t, data, want, blockRecords(data, comma, size))
			}
		}
	}
}

// FuzzCSVParser holds csvParser and cutRecords to encoding/csv on any input:
// the same records, fields, line numbers and errors, whatever the block size.
func FuzzCSVParser(f *testing.F) {
	for _, c := range parserCases {
		f.Add([]byte(c), uint8(3), uint8(0))
	}
	commas := []rune{',', ';', '\t', '€', '|'}
	f.Fuzz(func(t *testing.T, data []byte, size, commaSel uint8) {
		comma := commas[int(commaSel)%len(commas)]
		want := stdRecords(data, comma)
		sameRecords(t, data, want, blockRecords(data, comma, int(size)+1))
	})
}
