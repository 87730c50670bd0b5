package schedule

import (
	"testing"
	"time"
)

// TestScheduleDST walks schedules through both 2027 DST transitions in two
// zones (issue #16 item 10): a job in the skipped hour runs once at the
// transition, a job in the repeated hour runs once, hourly jobs stay hourly.
func TestScheduleDST(t *testing.T) {
	cases := []struct {
		name, zone, spec, from string
		want                   []string // the next runs, UTC
	}{
		{"Berlin spring forward: 02:30 runs at 03:00 CEST", "Europe/Berlin", "30 2 * * *", "2027-03-27T12:00:00Z",
			[]string{"2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z", "2027-03-30T00:30:00Z"}},
		{"Berlin fall back: 02:30 runs once", "Europe/Berlin", "30 2 * * *", "2027-10-30T12:00:00Z",
			[]string{"2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z"}},
		{"Berlin: every 20 min of 02:xx on spring forward: once", "Europe/Berlin", "*/20 2 * * *", "2027-03-27T12:00:00Z",
			[]string{"2027-03-28T01:00:00Z", "2027-03-29T00:00:00Z", "2027-03-29T00:20:00Z"}},
		{"Berlin fall back: hourly runs every real hour", "Europe/Berlin", "30 * * * *", "2027-10-30T23:00:00Z",
			[]string{"2027-10-30T23:30:00Z", "2027-10-31T00:30:00Z", "2027-10-31T01:30:00Z", "2027-10-31T02:30:00Z"}},
		{"Berlin fall back: hourly from the first pass", "Europe/Berlin", "30 * * * *", "2027-10-31T00:40:00Z",
			[]string{"2027-10-31T01:30:00Z", "2027-10-31T02:30:00Z"}},
		{"Berlin spring forward: hourly skips the missing hour", "Europe/Berlin", "30 * * * *", "2027-03-28T00:00:00Z",
			[]string{"2027-03-28T00:30:00Z", "2027-03-28T01:30:00Z", "2027-03-28T02:30:00Z"}},
		{"New York spring forward: 02:30 runs at 03:00 EDT", "America/New_York", "30 2 * * *", "2027-03-13T12:00:00Z",
			[]string{"2027-03-14T07:00:00Z", "2027-03-15T06:30:00Z"}},
		{"New York fall back: 01:30 runs once", "America/New_York", "30 1 * * *", "2027-11-06T12:00:00Z",
			[]string{"2027-11-07T05:30:00Z", "2027-11-08T06:30:00Z"}},
		{"New York fall back: a restart in the second pass does not rerun 01:30", "America/New_York", "30 1 * * *", "2027-11-07T06:10:00Z",
			[]string{"2027-11-08T06:30:00Z"}},
		{"New York: @daily on both transition days", "America/New_York", "@daily", "2027-03-13T12:00:00Z",
			[]string{"2027-03-14T05:00:00Z", "2027-03-15T04:00:00Z"}},
		{"@every ignores zones", "Europe/Berlin", "@every 90m", "2027-10-31T00:00:00Z",
			[]string{"2027-10-31T01:30:00Z", "2027-10-31T03:00:00Z"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			loc, err := time.LoadLocation(c.zone)
			if err != nil {
				t.Fatal(err)
			}
			s, err := parseSchedule(c.spec, loc)
			if err != nil {
				t.Fatal(err)
			}
			at, _ := time.Parse(time.RFC3339, c.from)
			for i, w := range c.want {
				at = s.Next(at)
				if got := at.UTC().Format(time.RFC3339); got != w {
					t.Fatalf("run %d: %s (%s), want %s", i+1, got, at.In(loc).Format("15:04 MST"), w)
				}
			}
		})
	}
}

// TestScheduleRunsOncePerDayAcrossTransitions counts, minute by minute over
// each 2027 transition day, how often a daily job at every minute of the
// affected hours would run: exactly once per job and day.
func TestScheduleRunsOncePerDayAcrossTransitions(t *testing.T) {
	for _, zone := range []string{"Europe/Berlin", "America/New_York"} {
		loc, _ := time.LoadLocation(zone)
		for _, day := range []string{"2027-03-28", "2027-10-31", "2027-03-14", "2027-11-07"} {
			d, _ := time.ParseInLocation("2006-01-02", day, loc)
			for _, spec := range []string{"0 1 * * *", "30 1 * * *", "0 2 * * *", "30 2 * * *", "59 2 * * *", "0 3 * * *"} {
				s, err := parseSchedule(spec, loc)
				if err != nil {
					t.Fatal(err)
				}
				runs := 0
				for at := s.Next(d.Add(-time.Second)); at.Before(d.AddDate(0, 0, 1)); at = s.Next(at) {
					runs++
				}
				if runs != 1 {
					t.Errorf("%s %s on %s: %d runs, want 1", zone, spec, day, runs)
				}
			}
		}
	}
}
