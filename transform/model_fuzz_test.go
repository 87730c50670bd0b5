package transform

import (
	"strings"
	"testing"
)

// FuzzParseHeader feeds arbitrary model text to the header parser: no panic,
// and every error names the model file.
func FuzzParseHeader(f *testing.F) {
	f.Add("-- materialized: incremental\n-- unique_key: customer_id\n-- tests: unique(customer_id), accepted_values(segment, ['a','b'])\nSELECT 1")
	f.Fuzz(func(t *testing.T, sql string) {
		h, err := ParseHeader("models/m.sql", sql)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "models/m.sql") {
				t.Fatalf("error does not name the model file: %q", err)
			}
			return
		}
		if !h.Materialized.Valid() {
			t.Fatalf("accepted invalid materialization %q", h.Materialized)
		}
	})
}
