package extract

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Budget is how many rejects one extract of one entity may have before it
// fails: a fraction of the rows read, or a count of rows.
type Budget struct {
	Fraction float64 // of rows read (loaded + rejected), when Count < 0
	Count    int64   // rows; -1 when Fraction applies
	Text     string  // as configured, for messages
}

// DefaultBudget is 1 % of the rows read.
var DefaultBudget = Budget{Fraction: 0.01, Count: -1, Text: "1%"}

// ParseBudget reads a max_rejected value: "1%", "0.5%", "100%", or a row
// count such as "0" or "250".
func ParseBudget(s string) (Budget, error) {
	t := strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(t, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || f < 0 || f > 100 {
			return Budget{}, fmt.Errorf("max_rejected %q: use a percentage from 0%% to 100%% or a row count", s)
		}
		return Budget{Fraction: f / 100, Count: -1, Text: t}, nil
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return Budget{}, fmt.Errorf("max_rejected %q: use a percentage from 0%% to 100%% or a row count", s)
	}
	return Budget{Count: n, Fraction: -1, Text: t}, nil
}

// exceeded reports whether rejected rows of read rows are over the budget.
func (b Budget) exceeded(rejected, read int64) bool {
	if b.Count >= 0 {
		return rejected > b.Count
	}
	return read > 0 && float64(rejected) > b.Fraction*float64(read)
}

// Budgeter is implemented by sources whose entities configure a reject
// budget (max_rejected). Without it, an extract has no budget.
type Budgeter interface {
	RejectBudget(entity string) Budget
}

// reasonTally counts rejects by ReasonGroup, keeping one example of each.
type reasonTally struct {
	groups map[string]*reasonCount
}

type reasonCount struct {
	group   string
	n       int64
	example Reject
}

// maxGroups bounds the tally: reasons past it count as one group.
const maxGroups = 200

func (t *reasonTally) add(r Reject) {
	if t.groups == nil {
		t.groups = map[string]*reasonCount{}
	}
	g := ReasonGroup(r.Reason)
	c, ok := t.groups[g]
	if !ok {
		if len(t.groups) >= maxGroups {
			g = "other reasons"
			if c, ok = t.groups[g]; !ok {
				c = &reasonCount{group: g, example: r}
				t.groups[g] = c
			}
		} else {
			c = &reasonCount{group: g, example: r}
			t.groups[g] = c
		}
	}
	c.n++
}

// top returns the n largest groups, largest first.
func (t *reasonTally) top(n int) []*reasonCount {
	out := make([]*reasonCount, 0, len(t.groups))
	for _, c := range t.groups {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].n != out[j].n {
			return out[i].n > out[j].n
		}
		return out[i].group < out[j].group
	})
	return out[:min(n, len(out))]
}

var (
	quotedValue = regexp.MustCompile(`: "(?:[^"\\]|\\.)*"`)
	number      = regexp.MustCompile(`\b\d+\b`)
	quotedAny   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
)

// ReasonGroup is a reject reason without the values that differ from row
// to row (the offending value, field counts), so that rejects for the same
// cause group together: `column "order_ts" (ts): "31/02/2024" is not a
// timestamp …` and the same with another date are one group.
func ReasonGroup(reason string) string {
	s := quotedValue.ReplaceAllString(reason, `: "…"`)
	// Numbers outside quotes (field counts, versions); names in quotes stay.
	var b strings.Builder
	last := 0
	for _, m := range quotedAny.FindAllStringIndex(s, -1) {
		b.WriteString(number.ReplaceAllString(s[last:m[0]], "N"))
		b.WriteString(s[m[0]:m[1]])
		last = m[1]
	}
	b.WriteString(number.ReplaceAllString(s[last:], "N"))
	return b.String()
}

// BudgetError is the error of an extract whose rejects exceeded its budget.
type BudgetError struct {
	Source, Entity string
	Unit           string // the file (unit) being read when it went over, if known
	Rejected, Read int64
	Budget         Budget
	Top            []string // "n× reason — e.g. file line n: raw"
}

func (e *BudgetError) Error() string {
	where := ""
	if e.Unit != "" {
		where = " (reading " + e.Unit + ")"
	}
	return fmt.Sprintf("source %s: %s: %d of %d rows rejected%s, over max_rejected %s: the rows read since the last commit (this file) are not committed and the marts stay as they were. Top reasons: %s. Fix the file or its mapping (cdw quarantine lists the rejects of committed files), or raise max_rejected under sources[%s].entities.%s",
		e.Source, e.Entity, e.Rejected, e.Read, where, e.Budget.Text, strings.Join(e.Top, "; "), e.Source, e.Entity)
}

func (t *reasonTally) describe(n int) []string {
	var out []string
	for _, c := range t.top(n) {
		ex := c.example
		loc := ex.File
		if ex.Line > 0 {
			loc += fmt.Sprintf(" line %d", ex.Line)
		}
		line := fmt.Sprintf("%d× %s — e.g. %s", c.n, ex.Reason, loc)
		if ex.Raw != "" {
			line += ": " + truncateRaw(ex.Raw, 120)
		}
		out = append(out, line)
	}
	return out
}

func truncateRaw(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
