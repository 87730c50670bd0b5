package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// parser reads the cron syntax (5 or 6 fields, descriptors, @every).
// robfig/cron parses well; its Next is wrong across DST transitions with
// CRON_TZ (robfig/cron#541: a 02:30 job is skipped on the spring-forward
// day and runs twice on the fall-back day) and it is unmaintained since
// 2020. Its maintained fork netresearch/go-cron v0.9.1 fixes the skip but
// still runs the repeated hour twice, so cdw keeps robfig's parser and
// computes the times itself (wallSchedule).
var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// parseSchedule parses a pipeline's schedule in its time zone (nil: local).
func parseSchedule(spec string, loc *time.Location) (cron.Schedule, error) {
	if loc == nil {
		loc = time.Local
	}
	if strings.Contains(spec, "TZ=") {
		return nil, fmt.Errorf("give the zone in timezone:, not in the schedule")
	}
	// Parsed in UTC, the spec's fields are matched against a wall clock
	// that never jumps; wallSchedule maps that clock onto loc.
	s, err := parser.Parse("CRON_TZ=UTC " + spec)
	if err != nil {
		return nil, err
	}
	if _, every := s.(cron.ConstantDelaySchedule); every {
		return s, nil // @every is a duration: time zones do not apply
	}
	return &wallSchedule{wall: s, loc: loc, everyHour: everyHour(spec)}, nil
}

// everyHour reports whether the spec's hour field is a wildcard ("*", "*/2",
// @hourly): such jobs follow real time, not the wall clock.
func everyHour(spec string) bool {
	f := strings.Fields(spec)
	switch {
	case len(f) == 1:
		return f[0] == "@hourly"
	case len(f) == 6:
		return strings.HasPrefix(f[2], "*")
	case len(f) >= 2:
		return strings.HasPrefix(f[1], "*")
	}
	return false
}

// wallSchedule is a cron schedule on the wall clock of loc, with the DST
// rules of Vixie cron (the Linux crontab):
//   - a job at a fixed hour whose time falls in a skipped hour (spring
//     forward) runs once, at the transition;
//   - a job at a fixed hour whose time falls in a repeated hour (fall back)
//     runs once, in the first pass;
//   - a job with a wildcard hour ("30 * * * *") runs at every real instant
//     whose wall time matches, so it runs in both passes of a repeated hour
//     and not in the skipped one: it stays hourly.
type wallSchedule struct {
	wall      cron.Schedule // the spec on a UTC "wall clock"
	loc       *time.Location
	everyHour bool
}

// Next returns the first run strictly after t.
func (s *wallSchedule) Next(t time.Time) time.Time {
	best := s.nextFrom(t, wallClock(t, s.loc))
	if s.everyHour {
		// At a fall back the wall clock restarts an hour earlier: the
		// second pass may hold the next match although its wall time is
		// before t's.
		lt := t.In(s.loc)
		_, end := lt.ZoneBounds()
		if !end.IsZero() && end.Sub(t) < 48*time.Hour && offset(end) < offset(lt) {
			if n := s.nextFrom(t, wallClock(end, s.loc).Add(-time.Second)); !n.IsZero() && (best.IsZero() || n.Before(best)) {
				best = n
			}
		}
	}
	return best
}

// nextFrom walks the wall-clock matches after w until one maps onto an
// instant after t.
func (s *wallSchedule) nextFrom(t, w time.Time) time.Time {
	for range 1000 {
		n := s.wall.Next(w)
		if n.IsZero() {
			return n
		}
		for _, x := range s.instants(n) {
			if x.After(t) {
				return x
			}
		}
		w = n
	}
	return time.Time{}
}

// instants lists the real times at which wall time n occurs in loc, in
// order: one normally, two in a repeated hour (one for a fixed-hour job),
// the transition for a fixed-hour job in a skipped hour, none for a
// wildcard-hour job there.
func (s *wallSchedule) instants(n time.Time) []time.Time {
	a := time.Date(n.Year(), n.Month(), n.Day(), n.Hour(), n.Minute(), n.Second(), 0, s.loc)
	if !wallClock(a, s.loc).Equal(n) {
		if s.everyHour {
			return nil
		}
		// In a gap: time.Date picked one side of it; the transition is
		// the boundary of that side's zone period.
		start, end := a.ZoneBounds()
		if wallClock(a, s.loc).Before(n) {
			return []time.Time{end}
		}
		return []time.Time{start}
	}
	var out []time.Time
	for _, d := range []time.Duration{-2 * time.Hour, -time.Hour, -30 * time.Minute, 0, 30 * time.Minute, time.Hour, 2 * time.Hour} {
		if x := a.Add(d); wallClock(x, s.loc).Equal(n) && (len(out) == 0 || !x.Equal(out[len(out)-1])) {
			out = append(out, x)
		}
	}
	if !s.everyHour {
		out = out[:1]
	}
	return out
}

// wallClock is t's local date and time in loc, as a UTC time.
func wallClock(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), 0, time.UTC)
}

func offset(t time.Time) int {
	_, off := t.Zone()
	return off
}
