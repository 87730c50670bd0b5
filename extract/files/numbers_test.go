package files

import "testing"

// TestNumberNormalize holds the thousands groups to three digits, so a
// number in the other locale is refused instead of misread.
func TestNumberNormalize(t *testing.T) {
	comma, point := &numFormat{decimal: ','}, &numFormat{decimal: '.'}
	for _, tc := range []struct {
		f       *numFormat
		in, out string
		ok      bool
	}{
		{comma, "1.234,56", "1234.56", true},
		{comma, "-1.234.567,5", "-1234567.5", true},
		{comma, "12,5", "12.5", true},
		{comma, "1 234,56", "1234.56", true},
		{comma, "1\u00a0234,56", "1234.56", true},
		{comma, "1.5", "", false},
		{comma, "1.234.56", "", false},
		{comma, "1.234 567,5", "", false},
		{point, "1,234.56", "1234.56", true},
		{point, "1'234.56", "1234.56", true},
		{point, "9.99", "9.99", true},
		{point, "12,5", "", false},
		{point, "1234,567.5", "", false},
		{point, ",123", "", false},
		{point, "1,234.5,6", "", false},
	} {
		got, ok := tc.f.normalize(tc.in)
		if ok != tc.ok || (ok && got != tc.out) {
			t.Errorf("%s %q = %q %v, want %q %v", tc.f, tc.in, got, ok, tc.out, tc.ok)
		}
	}
}
