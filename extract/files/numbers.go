package files

import (
	"fmt"
	"strings"
)

// numFormat is how a number column writes its decimal point and its
// thousands groups: "1.234,56" (German), "1,234.56", "1 234,56", "1'234.56".
// It is detected per column from a sample of the file (or set by
// decimal_separator) so a comma is never a decimal point in one row and a
// thousands separator in the next.
type numFormat struct {
	decimal byte // '.' or ','
}

// thousandsSep reports whether r separates thousands in this format.
func (f *numFormat) thousandsSep(c byte) bool {
	switch c {
	case ' ', '\'':
		return true
	case '.', ',':
		return c != f.decimal
	}
	return false
}

func (f *numFormat) String() string {
	if f.decimal == ',' {
		return "decimal comma (1.234,56)"
	}
	return "decimal point (1,234.56)"
}

// normalize rewrites s as Go parses numbers: thousands separators dropped
// (only in groups of three digits, so "1.5" in a decimal-comma column is an
// error, not 15) and the decimal mark made a point. ok is false when s does
// not follow the format. s without separators comes back as it is.
func (f *numFormat) normalize(s string) (string, bool) {
	plain := ",' \u00a0" // what a number with a decimal point and no groups lacks
	if f.decimal == ',' {
		plain = ".,' \u00a0"
	}
	if !strings.ContainsAny(s, plain) {
		return s, true
	}
	s = strings.ReplaceAll(s, "\u00a0", " ")
	buf := make([]byte, 0, len(s))
	intPart, frac, hasFrac := s, "", false
	if i := strings.LastIndexByte(s, f.decimal); i >= 0 {
		intPart, frac, hasFrac = s[:i], s[i+1:], true
	}
	// Group the integer part: digits, optionally in groups of three after the first.
	run, groups := 0, 0
	var sep byte
	for i := 0; i < len(intPart); i++ {
		c := intPart[i]
		switch {
		case c >= '0' && c <= '9':
			run++
			buf = append(buf, c)
		case f.thousandsSep(c):
			if (groups == 0 && (run == 0 || run > 3)) || (groups > 0 && run != 3) || (sep != 0 && c != sep) {
				return "", false
			}
			sep, groups, run = c, groups+1, 0
		case (c == '-' || c == '+') && len(buf) == 0 && run == 0:
			buf = append(buf, c)
		default:
			return "", false
		}
	}
	if groups > 0 && run != 3 {
		return "", false
	}
	if hasFrac {
		if strings.ContainsAny(frac, ".,' ") {
			return "", false
		}
		buf = append(append(buf, '.'), frac...)
	}
	return string(buf), true
}

// numVote is what a number column's sample says about its decimal mark.
type numVote struct {
	mark      byte   // ',' or '.' when a value tells, 0 when none does
	ambiguous string // a value such as "1,234" that could be either
}

// voteNumbers reads sample values of one column. A value with both marks
// ("1.234,56") or a mark not followed by three digits ("12,5", "9.99")
// tells; "1,234" alone could be either. Values that tell both ways are an
// error.
func voteNumbers(values []string) (numVote, error) {
	var comma, point int
	var v numVote
	var exComma, exPoint string
	for _, s := range values {
		c, p := strings.LastIndexByte(s, ','), strings.LastIndexByte(s, '.')
		switch {
		case c >= 0 && p >= 0:
			if c > p {
				comma, exComma = comma+1, s
			} else {
				point, exPoint = point+1, s
			}
		case c >= 0:
			switch {
			case strings.Count(s, ",") > 1:
				point, exPoint = point+1, s // thousands commas
			case len(s)-c-1 == 3:
				v.ambiguous = s
			default:
				comma, exComma = comma+1, s
			}
		case p >= 0:
			switch {
			case strings.Count(s, ".") > 1:
				comma, exComma = comma+1, s // thousands points
			case len(s)-p-1 != 3:
				point, exPoint = point+1, s
			}
		}
	}
	switch {
	case comma > 0 && point > 0:
		return v, fmt.Errorf("the sample writes numbers both with a decimal comma (%q) and a decimal point (%q); set decimal_separator", exComma, exPoint)
	case comma > 0:
		v.mark = ','
	case point > 0:
		v.mark = '.'
	}
	return v, nil
}

// decideNumbers picks each number column's format from the votes of all of
// them: one exporter writes one locale, so a column of quantities such as
// "1.200" follows the decimal comma its price column shows. A column that
// tells nothing in a file that tells nothing reads a decimal point, unless
// its values could be either ("1,234"): then it is an error.
func decideNumbers(votes []numVote) ([]*numFormat, []error) {
	var file byte
	for _, v := range votes {
		switch {
		case v.mark == 0:
		case file == 0:
			file = v.mark
		case file != v.mark:
			file = '?' // columns disagree: each keeps its own
		}
	}
	out := make([]*numFormat, len(votes))
	errs := make([]error, len(votes))
	for i, v := range votes {
		mark := v.mark
		if mark == 0 && file != '?' {
			mark = file
		}
		if mark == 0 && v.ambiguous != "" {
			errs[i] = fmt.Errorf("%q could be %s with a thousands separator or with a decimal comma, and no sampled value tells; set decimal_separator: \".\" or \",\"",
				v.ambiguous, strings.ReplaceAll(v.ambiguous, ",", ""))
			continue
		}
		if mark == 0 || mark == '?' {
			mark = '.'
		}
		out[i] = &numFormat{decimal: mark}
	}
	return out, errs
}
