package files

import (
	"fmt"
	"unicode/utf8"
)

var sprintf = fmt.Sprintf

// detectEncoding chooses the encoding of a file under encoding: auto from
// its first bytes, and says why. A UTF-8 file with a few bad bytes used to
// be read as GB18030 whole (`Müller` → `M眉ller`, no reject, no log line):
// now a sample whose valid multi-byte UTF-8 characters are at least as many
// as its invalid bytes is UTF-8, and the rows holding the bad bytes go to
// quarantine. GBK/GB18030 text is rarely valid UTF-8 (about one character in
// seven happens to be), so it still reads as GB18030 — when its high bytes
// come in pairs, as Chinese characters do. Anything else (Latin-1, say) is
// read as UTF-8 so that its bad rows are quarantined, not garbled.
func detectEncoding(b []byte) (enc, why string) {
	var valid, invalid int
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			if !utf8.FullRune(b[i:]) {
				break // a character cut off by the end of the sample
			}
			invalid++
			i++
			continue
		}
		valid++
		i += size
	}
	switch {
	case invalid == 0:
		return "utf-8", "valid UTF-8"
	case valid >= invalid:
		return "utf-8", sprintf("UTF-8 with %d invalid byte(s) beside %d valid multi-byte characters in the first %d bytes; rows with invalid bytes go to quarantine", invalid, valid, len(b))
	}
	var pairs, lone int
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c < 0x80 {
			continue
		}
		// Common Chinese characters (GB2312's) are two high bytes; a high
		// byte before ASCII is what one-byte encodings look like.
		if c >= 0x81 && c <= 0xFE && i+1 < len(b) && b[i+1] >= 0x81 && b[i+1] <= 0xFE {
			pairs++
			i++
			continue
		}
		lone++
	}
	if pairs > lone {
		return "gb18030", sprintf("not UTF-8 (%d invalid bytes in the first %d); its %d double-byte characters read as GB18030", invalid, len(b), pairs)
	}
	return "utf-8", sprintf("neither UTF-8 nor GB18030 (%d invalid bytes in the first %d, mostly single: a one-byte encoding such as Latin-1?); read as UTF-8, rows with invalid bytes go to quarantine — convert the file to UTF-8", invalid, len(b))
}
