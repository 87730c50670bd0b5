package extract

import (
	"errors"
	"testing"
)

func TestParseDecimal(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    string
		rounded bool
		err     error
	}{
		{"0.1", "0.1000", false, nil},
		{"-0.7", "-0.7000", false, nil},
		{"12", "12.0000", false, nil},
		{".5", "0.5000", false, nil},
		{"5.", "5.0000", false, nil},
		{"+3.25", "3.2500", false, nil},
		{"1.2E+3", "1200.0000", false, nil},
		{"125e-5", "0.0013", true, nil},
		{"16.950000000000003", "16.9500", true, nil},
		{"0.00005", "0.0001", true, nil},
		{"-0.00005", "-0.0001", true, nil},
		{"0.00004", "0.0000", true, nil},
		{"1e-9", "0.0000", true, nil},
		{"0.12340000", "0.1234", false, nil},
		{"99999999999999.9999", "99999999999999.9999", false, nil},
		{"9876543210987.6543", "9876543210987.6543", false, nil},
		{"000012.5", "12.5000", false, nil},
		{"0", "0.0000", false, nil},
		{"100000000000000", "", false, ErrOutOfRange},
		{"99999999999999.99995", "", false, ErrOutOfRange},
		{"1e20", "", false, ErrOutOfRange},
		{"NaN", "", false, ErrNotFinite},
		{"-Infinity", "", false, ErrNotFinite},
		{"1,5", "", false, ErrNotANumber},
		{"abc", "", false, ErrNotANumber},
		{".", "", false, ErrNotANumber},
		{"1e", "", false, ErrNotANumber},
		{"0x10", "", false, ErrNotANumber},
	} {
		v, r, err := ParseDecimal(c.in)
		if !errors.Is(err, c.err) {
			t.Errorf("%q: err %v, want %v", c.in, err, c.err)
			continue
		}
		if err != nil {
			continue
		}
		if got := FormatDecimal(v); got != c.want || r != c.rounded {
			t.Errorf("%q = %s rounded %v, want %s rounded %v", c.in, got, r, c.want, c.rounded)
		}
	}
	if v, _, _ := DecimalFromFloat(0.1); v != 1000 {
		t.Errorf("DecimalFromFloat(0.1) = %d, want 1000", v)
	}
}
