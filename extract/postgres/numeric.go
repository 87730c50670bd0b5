package postgres

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// PostgreSQL's binary numeric: int16 ndigits, int16 weight, uint16 sign,
// int16 dscale, then ndigits base-10000 digits. The value is
// Σ digit[i] × 10000^(weight−i).
const (
	numericPos  = 0x0000
	numericNeg  = 0x4000
	numericNaN  = 0xC000
	numericPInf = 0xD000
	numericNInf = 0xF000
)

var (
	errNumericNaN      = errors.New("NaN has no decimal representation")
	errNumericInfinity = errors.New("infinity has no decimal representation")
)

var pow10u64 = func() (p [20]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// numericUnscaled returns the value of a binary numeric as an integer scaled
// by 10^scale, and an error when that is not exact or needs more than
// precision digits: data would be lost, so the row is rejected instead.
func numericUnscaled(v []byte, precision, scale int32) (decimal128.Num, error) {
	if len(v) < 8 {
		return decimal128.Num{}, fmt.Errorf("malformed numeric (%d bytes)", len(v))
	}
	ndigits := int(int16(binary.BigEndian.Uint16(v[0:])))
	weight := int(int16(binary.BigEndian.Uint16(v[2:])))
	sign := binary.BigEndian.Uint16(v[4:])
	if len(v) != 8+2*ndigits || ndigits < 0 {
		return decimal128.Num{}, fmt.Errorf("malformed numeric (%d bytes for %d digits)", len(v), ndigits)
	}
	switch sign {
	case numericPos, numericNeg:
	case numericNaN:
		return decimal128.Num{}, errNumericNaN
	case numericPInf, numericNInf:
		return decimal128.Num{}, errNumericInfinity
	default:
		return decimal128.Num{}, fmt.Errorf("malformed numeric (sign %#x)", sign)
	}
	if ndigits == 0 {
		return decimal128.Num{}, nil
	}
	neg := sign == numericNeg
	digits := v[8:]
	// acc holds the digits as one integer: value = acc × 10^e / 10^scale.
	e := 4*(weight-ndigits+1) + int(scale)
	if ndigits <= 4 && e >= -16 && e <= 2 {
		var acc uint64
		for i := 0; i < ndigits; i++ {
			acc = acc*10000 + uint64(binary.BigEndian.Uint16(digits[2*i:]))
		}
		if e >= 0 {
			acc *= pow10u64[e]
		} else {
			d := pow10u64[-e]
			if acc%d != 0 {
				return decimal128.Num{}, errScale(scale)
			}
			acc /= d
		}
		// acc < 10^18 here, so any precision of 19 or more holds it.
		if precision < 19 && acc >= pow10u64[precision] {
			return decimal128.Num{}, errPrecision(precision, scale)
		}
		n := int64(acc)
		if neg {
			n = -n
		}
		return decimal128.FromI64(n), nil
	}
	return numericUnscaledBig(digits, ndigits, e, neg, precision, scale)
}

var (
	bigTenThousand = big.NewInt(10000)
	bigTen         = big.NewInt(10)
)

// numericUnscaledBig is the exact general case of numericUnscaled, for values
// with more than 16 digits: rare, so simplicity wins over speed.
func numericUnscaledBig(digits []byte, ndigits, e int, neg bool, precision, scale int32) (decimal128.Num, error) {
	acc := new(big.Int)
	d := new(big.Int)
	for i := 0; i < ndigits; i++ {
		acc.Mul(acc, bigTenThousand)
		acc.Add(acc, d.SetUint64(uint64(binary.BigEndian.Uint16(digits[2*i:]))))
	}
	p := new(big.Int).Exp(bigTen, big.NewInt(int64(abs(e))), nil)
	if e >= 0 {
		acc.Mul(acc, p)
	} else {
		var rem big.Int
		acc.QuoRem(acc, p, &rem)
		if rem.Sign() != 0 {
			return decimal128.Num{}, errScale(scale)
		}
	}
	if acc.Cmp(new(big.Int).Exp(bigTen, big.NewInt(int64(precision)), nil)) >= 0 {
		return decimal128.Num{}, errPrecision(precision, scale)
	}
	if neg {
		acc.Neg(acc)
	}
	return decimal128.FromBigInt(acc), nil
}

func errScale(scale int32) error {
	return fmt.Errorf("has more than %d decimal places", scale)
}

func errPrecision(precision, scale int32) error {
	return fmt.Errorf("needs more than %d digits (%d before the decimal point)", precision, precision-scale)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
