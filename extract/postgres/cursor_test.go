package postgres

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestResume: what a read continues with, for every kind of committed
// position.
func TestResume(t *testing.T) {
	by := []string{"updated_at", "id"}
	v := func(s string) *string { return &s }
	a, b, c := []*string{v("2026-01-01"), v("1")}, []*string{v("2026-02-01"), v("9")}, []*string{v("2026-03-01"), v("20")}
	for _, tc := range []struct {
		name string
		pos  *position
		mode string
		want string // the spans as JSON, or the error's start
	}{
		{"first read", nil, modeIncremental, `[{}]`},
		{"plain position", &position{Mode: modeIncremental, By: by, After: a}, modeIncremental, `[{"after":["2026-01-01","1"]}]`},
		{"split read cut short", &position{Mode: modeIncremental, By: by, Spans: []span{{Upto: b, Done: true}, {After: b, Upto: c}, {After: c}}}, modeIncremental,
			`[{"upto":["2026-02-01","9"],"done":true},{"after":["2026-02-01","9"],"upto":["2026-03-01","20"]},{"after":["2026-03-01","20"]}]`},
		{"every part done", &position{Mode: modeIncremental, By: by, Spans: []span{{Upto: b, Done: true}, {After: b, Done: true}}}, modeIncremental, `[{"after":["2026-02-01","9"]}]`},
		{"full read done", &position{Mode: modeFull, By: by[1:], Done: true}, modeFull, `[{}]`},
		{"full split read done", &position{Mode: modeFull, By: by, Spans: []span{{Upto: b, Done: true}, {After: b, Done: true}}}, modeFull, `[{}]`},
		{"mode changed", &position{Mode: modeFull, By: by[1:], After: a[1:]}, modeIncremental, `[{}]`},
		{"order changed", &position{Mode: modeIncremental, By: []string{"changed_at", "id"}, After: a}, modeIncremental, "the committed cursor is a position in (changed_at, id)"},
		{"wrong arity", &position{Mode: modeIncremental, By: by, Spans: []span{{After: a[:1]}}}, modeIncremental, "reading the committed cursor"},
	} {
		spans, err := tc.pos.resume(tc.mode, by)
		if err != nil {
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("%s: error %v, want %s", tc.name, err, tc.want)
			}
			continue
		}
		got, _ := json.Marshal(spans)
		if string(got) != tc.want {
			t.Errorf("%s: resumes with %s, want %s", tc.name, got, tc.want)
		}
	}
}
