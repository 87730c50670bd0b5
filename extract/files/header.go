package files

import (
	"fmt"
	"strconv"
	"strings"
)

// headerColumns resolves mapped names against a CSV header. A name that the
// header has more than once, or a column with no name, cannot be mapped by
// its name alone: "Variant#2" is the second column named Variant, and "#5"
// is the fifth column whatever its name.
type headerColumns struct {
	pos  map[string][]int // trimmed name → 0-based positions, in order
	size int
}

func newHeaderColumns(hdr []string) headerColumns {
	hc := headerColumns{pos: map[string][]int{}, size: len(hdr)}
	for i, h := range hdr {
		name := strings.TrimSpace(h)
		hc.pos[name] = append(hc.pos[name], i)
	}
	return hc
}

// find returns the position of a mapped name, -1 when the header lacks it,
// or an error saying how to address a name the header repeats or leaves empty.
func (hc headerColumns) find(name string) (int, error) {
	if ps := hc.pos[name]; len(ps) == 1 && name != "" {
		return ps[0], nil
	} else if len(ps) > 1 {
		cols := make([]string, len(ps))
		ways := make([]string, len(ps))
		for i, p := range ps {
			cols[i] = strconv.Itoa(p + 1)
			ways[i] = fmt.Sprintf("%q", fmt.Sprintf("%s#%d", name, i+1))
		}
		return -1, fmt.Errorf("the header names %d columns %q (columns %s); map the one you mean as %s",
			len(ps), name, strings.Join(cols, ", "), strings.Join(ways, " or "))
	}
	if name == "" {
		return -1, fmt.Errorf("an empty column name cannot be mapped; map an unnamed column by position as \"#N\"")
	}
	base, nth, ok := strings.Cut(name, "#")
	if !ok {
		return -1, nil
	}
	n, err := strconv.Atoi(nth)
	if err != nil || n < 1 {
		return -1, nil
	}
	if base == "" {
		if n > hc.size {
			return -1, fmt.Errorf("%q: the header has only %d columns", name, hc.size)
		}
		return n - 1, nil
	}
	ps := hc.pos[base]
	if n > len(ps) {
		return -1, nil
	}
	return ps[n-1], nil
}
