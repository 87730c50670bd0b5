package files

import (
	"testing"
	"time"
)

// TestParseISOMatchesLayouts checks the fast path gives exactly what the
// default layouts give, in UTC and in a zone with DST, and refuses what they
// refuse.
func TestParseISOMatchesLayouts(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	inputs := []string{"2026-02-02 08:28:50", "2026-02-02T08:28:50", "2026-02-02T08:28:50Z", "2026-02-02 08:28:50Z",
		"2026-02-02", "2024-02-29", "2023-02-29", "2026-04-31 10:00:00", "2026-13-01", "2026-01-01 24:00:00",
		"2026-01-01 23:60:00", "2026-03-29 02:30:00", "2026-10-25 02:30:00", "2026-02-02Z", "2026-02-02 08:28", "20260202",
		"2026-02-02 08:28:50.5", "2026-02-02T08:28:50+02:00", "2026-0a-02", " 2026-02-02"}
	for _, loc := range []*time.Location{time.UTC, berlin} {
		for _, in := range inputs {
			var want time.Time
			var wantErr bool
			for _, l := range defaultFormats {
				if tt, err := time.ParseInLocation(l, in, loc); err == nil {
					want = tt.UTC()
					break
				}
			}
			wantErr = want.IsZero()
			got, err := parseTime(in, defaultFormats, loc)
			if (err != nil) != wantErr || !got.Equal(want) {
				t.Errorf("%s in %s: got %v (err %v), layouts give %v (err %v)", in, loc, got, err, want, wantErr)
			}
		}
	}
}
