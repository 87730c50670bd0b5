package files

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// sampleRows is how many rows of each file are sampled to detect how its
// timestamps are written, as DuckDB's CSV sniffer samples a file.
const sampleRows = 1000

// tsGroup is one way of writing timestamps: a family of Go layouts (with or
// without seconds, fractions, a zone), or seconds/milliseconds since 1970.
// Each timestamp column of a file is read with one group, detected from a
// sample of the file, so "03/04/2011" is never read as April in one row and
// March in the next.
type tsGroup struct {
	name    string   // for the log and messages
	layouts []string // Go layouts, tried in order
	iso     bool     // the ISO fast path applies
	epoch   int64    // microseconds per unit of an epoch number (seconds 1e6, ms 1e3); 0 = layouts
	dm      bool     // day/month order is what tells it from its twin (DD/MM vs MM/DD)
	suggest string   // a layout to propose for timestamp_formats
}

// isoFormats are the ISO 8601 layouts; parseISO is their fast path.
var isoFormats = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02",
	"2006-01-02T15:04:05.999999999-0700",
	"2006-01-02 15:04:05.999999999-0700",
	"2006-01-02T15:04",
}

// tsGroups are the built-in groups, in order of preference when several fit.
var tsGroups = []*tsGroup{
	{name: "ISO 8601 (YYYY-MM-DD hh:mm:ss)", layouts: isoFormats, iso: true, suggest: "2006-01-02 15:04:05"},
	{name: "YYYY/MM/DD hh:mm:ss", layouts: []string{"2006/01/02 15:04:05.999999999Z07:00", "2006/01/02T15:04:05.999999999Z07:00",
		"2006/01/02 15:04:05.999999999", "2006/01/02T15:04:05.999999999", "2006/01/02 15:04", "2006/01/02"}, suggest: "2006/01/02 15:04:05"},
	{name: "DD.MM.YYYY hh:mm:ss", layouts: []string{"2.1.2006 15:04:05", "2.1.2006 15:04", "2.1.2006"}, suggest: "02.01.2006 15:04:05"},
	{name: "DD/MM/YYYY hh:mm:ss", layouts: []string{"2/1/2006 15:04:05", "2/1/2006 15:04", "2/1/2006"}, dm: true, suggest: "02/01/2006 15:04:05"},
	{name: "MM/DD/YYYY hh:mm:ss", layouts: []string{"1/2/2006 15:04:05", "1/2/2006 15:04", "1/2/2006", "1/2/2006 3:04:05 PM", "1/2/2006 3:04 PM"},
		dm: true, suggest: "01/02/2006 15:04:05"},
	{name: "DD-MM-YYYY hh:mm:ss", layouts: []string{"2-1-2006 15:04:05", "2-1-2006 15:04", "2-1-2006"}, suggest: "02-01-2006 15:04:05"},
	{name: "YYYYMMDD[hhmmss]", layouts: []string{"20060102", "20060102150405"}, suggest: "20060102"},
	{name: "epoch seconds", epoch: 1e6},
	{name: "epoch milliseconds", epoch: 1e3},
}

// micros parses s in this group, in microseconds since 1970 (UTC).
func (g *tsGroup) micros(s string, loc *time.Location) (int64, error) {
	if g.epoch > 0 {
		return epochMicros(s, g.epoch)
	}
	if g.iso && loc == time.UTC {
		if us, ok := parseISOMicrosUTC(s); ok {
			return us, nil
		}
	}
	if g.iso {
		if t, ok := parseISO(s, loc); ok {
			return t.UnixMicro(), nil
		}
	}
	for _, l := range g.layouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t.UnixMicro(), nil
		}
	}
	return 0, fmt.Errorf("is not a timestamp written as %s, the layout detected for this column (set timestamp_formats if the file mixes layouts)", g.name)
}

// epochMicros reads seconds (unit 1e6, a fraction allowed) or milliseconds
// (unit 1e3) since 1970. The digit counts keep the groups apart from each
// other and from YYYYMMDD: 9–11 digits are seconds (1973–5138), 12–14
// milliseconds.
func epochMicros(s string, unit int64) (int64, error) {
	whole, frac, hasFrac := strings.Cut(s, ".")
	digits := strings.TrimPrefix(whole, "-")
	lo, hi := 9, 11
	if unit == 1e3 {
		lo, hi = 12, 14
	}
	if len(digits) < lo || len(digits) > hi || (hasFrac && unit == 1e3) {
		return 0, fmt.Errorf("is not %s", map[int64]string{1e6: "epoch seconds", 1e3: "epoch milliseconds"}[unit])
	}
	n, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("is not a number of seconds since 1970")
	}
	us := n * unit
	if hasFrac {
		f, err := strconv.ParseFloat("0."+frac, 64)
		if err != nil || frac == "" {
			return 0, fmt.Errorf("is not a number of seconds since 1970")
		}
		us += int64(math.Round(f * 1e6))
	}
	return us, nil
}

// detectLayout picks the group that reads the most sample values; user, when
// not nil, is the configured timestamp_formats and wins when it reads as many.
// Two groups that differ only in day/month order and read the same values
// (every day ≤ 12) are ambiguous: the error asks for timestamp_formats.
func detectLayout(values []string, user *tsGroup, loc *time.Location) (*tsGroup, int, error) {
	groups := tsGroups
	if user != nil {
		groups = append([]*tsGroup{user}, tsGroups...)
	}
	if len(values) == 0 {
		// Nothing to go by: every unambiguous group, user layouts first.
		all := &tsGroup{name: "any unambiguous layout", iso: true, suggest: "2006-01-02 15:04:05"}
		if user != nil {
			all.name, all.iso = "timestamp_formats or any unambiguous layout", false
			all.layouts = append(all.layouts, user.layouts...)
		}
		for _, g := range tsGroups {
			if !g.dm && g.epoch == 0 {
				all.layouts = append(all.layouts, g.layouts...)
			}
		}
		return all, 0, nil
	}
	counts := make([]int, len(groups))
	for i, g := range groups {
		for _, v := range values {
			if _, err := g.micros(v, loc); err == nil {
				counts[i]++
			}
		}
	}
	best := 0
	for i := range groups {
		if counts[i] > counts[best] {
			best = i
		}
	}
	if counts[best] == 0 {
		return nil, 0, fmt.Errorf("none of the %d sampled values (e.g. %q) is a timestamp in a known layout (%s); set timestamp_formats, e.g. [\"2006-01-02 15:04:05\"]",
			len(values), truncate(values[0], 40), groupNames())
	}
	g := groups[best]
	if g.dm && (user == nil || best > 0) {
		for i, o := range groups {
			if i != best && o.dm && counts[i] == counts[best] {
				ex := values[0]
				return nil, 0, fmt.Errorf("the dates could be day/month or month/day (every day in the %d sampled values is 12 or less, e.g. %q); set timestamp_formats: [%q] or [%q]",
					len(values), truncate(ex, 40), g.suggest, o.suggest)
			}
		}
	}
	return g, counts[best], nil
}

func groupNames() string {
	names := make([]string, len(tsGroups))
	for i, g := range tsGroups {
		names[i] = g.name
	}
	return strings.Join(names, ", ")
}
