package files

import (
	"fmt"
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
			for _, l := range isoFormats {
				if tt, err := time.ParseInLocation(l, in, loc); err == nil {
					want = tt.UTC()
					break
				}
			}
			wantErr = want.IsZero()
			got, err := parseTime(in, isoFormats, loc)
			if (err != nil) != wantErr || !got.Equal(want) {
				t.Errorf("%s in %s: got %v (err %v), layouts give %v (err %v)", in, loc, got, err, want, wantErr)
			}
		}
	}
}

// TestParseISOMicrosUTC checks the UTC fast path against parseISO (itself held
// to the layouts above) on every day of several years, leap days and invalid
// dates included, at a few times of day.
func TestParseISOMicrosUTC(t *testing.T) {
	var inputs []string
	for _, y := range []int{0, 1, 1600, 1900, 1969, 1970, 2000, 2023, 2024, 2100, 9999} {
		for m := 0; m <= 13; m++ {
			for d := 0; d <= 32; d++ {
				date := fmt.Sprintf("%04d-%02d-%02d", y, m, d)
				inputs = append(inputs, date, date+" 00:00:00", date+"T23:59:59", date+" 12:34:56Z", date+"Z", date+" 24:00:00")
			}
		}
	}
	inputs = append(inputs, "", "Z", "2026-02-02 08:28", "2026/02/02", "2026-02-02 08:28:5x", "２０２６-02-02")
	for _, in := range inputs {
		want, wantOK := parseISO(in, time.UTC)
		got, ok := parseISOMicrosUTC(in)
		if ok != wantOK || (ok && got != want.UnixMicro()) {
			t.Errorf("%q: got %d %v, parseISO gives %d %v", in, got, ok, want.UnixMicro(), wantOK)
		}
	}
}
