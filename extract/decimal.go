package extract

import (
	"errors"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// The ways a number can fail ParseDecimal.
var (
	ErrNotANumber  = errors.New("not a number")
	ErrNotFinite   = errors.New("is not a finite number")
	ErrOutOfRange  = errors.New("is out of range (the warehouse keeps numbers below 1e14 in magnitude)")
	decimalScaleUp = pow10(DecimalScale)
)

// maxScaled bounds a Decimal's unscaled value: DECIMAL(18,4) holds up to
// 99999999999999.9999.
const maxScaled = 999_999_999_999_999_999

func pow10(n int) int64 {
	v := int64(1)
	for range n {
		v *= 10
	}
	return v
}

// ParseDecimal reads a decimal number written with a point ("-1234.5",
// "0.70", "1.2E+3", ".5") exactly, as its value × 10^DecimalScale, never
// through binary floating point. Digits past the fourth decimal place are
// rounded half away from zero (as DuckDB's cast rounds) and reported by
// rounded, so the caller can say so.
func ParseDecimal(s string) (scaled int64, rounded bool, err error) {
	if s == "" {
		return 0, false, ErrNotANumber
	}
	neg := false
	switch s[0] {
	case '-':
		neg = true
		s = s[1:]
	case '+':
		s = s[1:]
	}
	switch strings.ToLower(s) {
	case "nan", "inf", "infinity":
		return 0, false, ErrNotFinite
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		e := s[i+1:]
		eneg := false
		if e != "" && (e[0] == '-' || e[0] == '+') {
			eneg = e[0] == '-'
			e = e[1:]
		}
		if e == "" || len(e) > 4 {
			return 0, false, ErrNotANumber
		}
		for j := 0; j < len(e); j++ {
			if e[j] < '0' || e[j] > '9' {
				return 0, false, ErrNotANumber
			}
			exp = exp*10 + int(e[j]-'0')
		}
		if eneg {
			exp = -exp
		}
	}
	intPart, frac := mant, ""
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		intPart, frac = mant[:i], mant[i+1:]
	}
	if intPart == "" && frac == "" {
		return 0, false, ErrNotANumber
	}
	for _, part := range [2]string{intPart, frac} {
		for j := 0; j < len(part); j++ {
			if part[j] < '0' || part[j] > '9' {
				return 0, false, ErrNotANumber
			}
		}
	}
	// value = digits × 10^(k - DecimalScale): k places to shift the
	// unscaled digits by.
	digits := strings.TrimLeft(intPart+frac, "0")
	k := exp - len(frac) + DecimalScale
	var v int64
	switch {
	case digits == "":
	case k >= 0:
		if len(digits)+k > 18 {
			return 0, false, ErrOutOfRange
		}
		v = atoi(digits) * pow10(k)
	default:
		keep := len(digits) + k
		if keep > 18 {
			return 0, false, ErrOutOfRange
		}
		dropped := digits
		if keep > 0 {
			v, dropped = atoi(digits[:keep]), digits[keep:]
		} else if keep < 0 {
			dropped = "0" // below half the last place: rounds to 0
		}
		rounded = strings.Trim(dropped, "0") != "" || keep < 0
		if dropped[0] >= '5' {
			v++
		}
	}
	if v > maxScaled {
		return 0, false, ErrOutOfRange
	}
	if neg {
		v = -v
	}
	return v, rounded, nil
}

func atoi(d string) int64 {
	var v int64
	for i := 0; i < len(d); i++ {
		v = v*10 + int64(d[i]-'0')
	}
	return v
}

// DecimalFromFloat is a float's shortest decimal text read by ParseDecimal:
// 0.1 is 0.1000, not 0.1000000000000000055…; for sources whose values are
// binary floating point already.
func DecimalFromFloat(f float64) (int64, bool, error) {
	return ParseDecimal(strconv.FormatFloat(f, 'g', -1, 64))
}

// DecimalNum is an unscaled Decimal value as Arrow holds it.
func DecimalNum(scaled int64) decimal128.Num { return decimal128.FromI64(scaled) }

// FormatDecimal writes an unscaled Decimal value as text ("-12.5000").
func FormatDecimal(scaled int64) string {
	neg := scaled < 0
	if neg {
		scaled = -scaled
	}
	i, f := scaled/decimalScaleUp, scaled%decimalScaleUp
	fs := strconv.FormatInt(f, 10)
	s := strconv.FormatInt(i, 10) + "." + strings.Repeat("0", DecimalScale-len(fs)) + fs
	if neg {
		return "-" + s
	}
	return s
}
