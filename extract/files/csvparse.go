package files

import (
	"bytes"
	"encoding/csv"
)

// csvParser reads the records of one block of CSV text exactly as
// encoding/csv does with FieldsPerRecord -1 and no LazyQuotes,
// TrimLeadingSpace or Comment: the same fields, the same line numbers, the
// same records refused (csv.ErrBareQuote, csv.ErrQuote) and the same
// recovery after them (the rest of the line is dropped). Unlike encoding/csv
// it allocates nothing per record: fields are slices of the block, and only
// quoted fields with escaped quotes or line breaks are copied (into arena).
// FuzzCSVParser holds it to encoding/csv.
//
// A block starts at a record boundary; its end is the end of the input as far
// as the parser knows, so a block cut anywhere but at a record boundary (see
// cutRecords) parses differently.
type csvParser struct {
	buf   []byte
	pos   int
	line  int64  // number of the last line read (lines before the block count)
	comma []byte // the delimiter, UTF-8 encoded

	fields [][]byte
	arena  []byte
	moved  []arenaField
}

// arenaField is a field of the current record that lives in the arena, which
// may move while the record is read: its slice is taken at the end.
type arenaField struct{ field, start, end int }

func newCSVParser(buf []byte, line int64, comma []byte) *csvParser {
	return &csvParser{buf: buf, line: line, comma: comma}
}

// readLine returns the next line without its line break, normalised as
// encoding/csv does: "\r\n" counts as "\n", and a "\r" ending the input is
// dropped. nl tells whether a line break followed; ok is false at the end.
func (p *csvParser) readLine() (content []byte, nl, ok bool) {
	content, nl, p.pos, ok = lineAt(p.buf, p.pos)
	if ok {
		p.line++
	}
	return content, nl, ok
}

// lineAt is readLine at pos: it returns the line and where the next begins.
func lineAt(buf []byte, pos int) (content []byte, nl bool, next int, ok bool) {
	if pos >= len(buf) {
		return nil, false, pos, false
	}
	rest := buf[pos:]
	if i := bytes.IndexByte(rest, '\n'); i >= 0 {
		content, nl, next = rest[:i], true, pos+i+1
	} else {
		content, next = rest, len(buf)
	}
	if n := len(content); n > 0 && content[n-1] == '\r' {
		content = content[:n-1]
	}
	return content, nl, next, true
}

// next reads the next record: its fields (valid until the next call), the
// line it starts on, and csv.ErrBareQuote or csv.ErrQuote when it is
// malformed. ok is false at the end of the block.
func (p *csvParser) next() (fields [][]byte, line int64, err error, ok bool) {
	var rest []byte
	var nl bool
	for {
		c, n, more := p.readLine()
		if !more {
			return nil, 0, nil, false
		}
		if len(c) > 0 { // empty lines are no records
			rest, nl = c, n
			break
		}
	}
	line = p.line
	p.fields, p.arena, p.moved = p.fields[:0], p.arena[:0], p.moved[:0]
	for {
		if len(rest) == 0 || rest[0] != '"' {
			i := p.indexComma(rest)
			field := rest
			if i >= 0 {
				field = rest[:i]
			}
			if bytes.IndexByte(field, '"') >= 0 {
				return nil, line, csv.ErrBareQuote, true
			}
			p.fields = append(p.fields, field)
			if i < 0 {
				return p.record(), line, nil, true
			}
			rest = rest[i+len(p.comma):]
			continue
		}
		// A quoted field: up to a quote followed by the delimiter or the end
		// of a line; "" is a quote; line breaks are part of the field.
		rest = rest[1:]
		copied := false
		start := len(p.arena)
		for {
			i := bytes.IndexByte(rest, '"')
			if i < 0 {
				if !nl {
					return nil, line, csv.ErrQuote, true // the input ends inside the quotes
				}
				p.arena = append(append(p.arena, rest...), '\n')
				copied = true
				if rest, nl, ok = p.readLine(); !ok {
					return nil, line, csv.ErrQuote, true
				}
				continue
			}
			seg, after := rest[:i], rest[i+1:]
			if len(after) > 0 && after[0] == '"' {
				p.arena = append(append(p.arena, seg...), '"')
				copied = true
				rest = after[1:]
				continue
			}
			field := seg
			if copied {
				p.arena = append(p.arena, seg...)
				p.moved = append(p.moved, arenaField{len(p.fields), start, len(p.arena)})
				field = nil
			}
			switch {
			case bytes.HasPrefix(after, p.comma):
				p.fields = append(p.fields, field)
				rest = after[len(p.comma):]
			case len(after) == 0:
				p.fields = append(p.fields, field)
				return p.record(), line, nil, true
			default:
				return nil, line, csv.ErrQuote, true
			}
			break
		}
	}
}

// record resolves the fields kept in the arena.
func (p *csvParser) record() [][]byte {
	for _, m := range p.moved {
		p.fields[m.field] = p.arena[m.start:m.end]
	}
	return p.fields
}

func (p *csvParser) indexComma(b []byte) int {
	if len(p.comma) == 1 {
		return bytes.IndexByte(b, p.comma[0])
	}
	return bytes.Index(b, p.comma)
}

// cutRecords returns the length of the longest prefix of buf that holds whole
// records, as csvParser would read them from buf's start (a record
// boundary). eof says nothing follows buf; then all of buf is records.
//
// Lines without a quote are records of their own, so only the records that
// hold a quote are followed field by field: the cost is a byte search for
// quotes and line breaks, plus work per quote.
func cutRecords(buf []byte, eof bool, comma []byte) int {
	if eof {
		return len(buf)
	}
	s := 0
	for {
		q := bytes.IndexByte(buf[s:], '"')
		if q < 0 {
			return s + bytes.LastIndexByte(buf[s:], '\n') + 1
		}
		// Every line from s up to q's is a record without quotes.
		q += s
		ls := s + bytes.LastIndexByte(buf[s:q], '\n') + 1
		end, ok := skipRecord(buf, ls, comma)
		if !ok {
			return ls
		}
		s = end
	}
}

// skipRecord finds where the record starting at pos ends, following
// csvParser.next without keeping fields. ok is false when the record may go
// on beyond buf, which is not the end of the input.
func skipRecord(buf []byte, pos int, comma []byte) (end int, ok bool) {
	rest, nl, next, _ := lineAt(buf, pos)
	if !nl {
		return 0, false // the line may go on
	}
	for {
		if len(rest) == 0 || rest[0] != '"' {
			q := bytes.IndexByte(rest, '"')
			if q < 0 {
				return next, true
			}
			if !bytes.HasSuffix(rest[:q], comma) {
				return next, true // a bare quote: the record ends with its line
			}
			rest = rest[q:] // a quoted field starts at q
		}
		rest = rest[1:]
		for {
			i := bytes.IndexByte(rest, '"')
			if i < 0 {
				// The field goes on on the next line.
				var more bool
				if rest, nl, next, more = lineAt(buf, next); !more || !nl {
					return 0, false
				}
				continue
			}
			after := rest[i+1:]
			if len(after) > 0 && after[0] == '"' {
				rest = after[1:]
				continue
			}
			if bytes.HasPrefix(after, comma) {
				rest = after[len(comma):]
				break
			}
			return next, true // the end of the record, or a bad quote that ends it
		}
	}
}
