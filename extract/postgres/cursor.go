package postgres

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Read modes: incremental reads rows after the committed cursor; full reads
// the whole table or query every time.
const (
	modeIncremental = "incremental"
	modeFull        = "full"
)

// position is the checkpoint a postgres read hands to the runner. The runner
// commits it, opaque, together with the raw files it covers, and hands it back
// as ReadRequest.Cursor. Keeping the source schema in it means the schema a
// read is compared with is always the one of the rows committed so far.
type position struct {
	V    int    `json:"v"`
	Mode string `json:"mode"`
	// By names the columns of After: the cursor column, then the key
	// (incremental), or the key alone (full).
	By []string `json:"by,omitempty"`
	// After holds PostgreSQL's text form of the By values of the last row
	// handed over (null for SQL NULL); empty means from the start.
	After []*string `json:"after,omitempty"`
	// Done marks a full read that completed: the next one starts over.
	Done bool `json:"done,omitempty"`
	// Spans is the progress of a read split into consecutive parts of the By
	// order (see split.go) that was cut short; the next read finishes each
	// part. A read that completes leaves a plain After instead.
	Spans []span `json:"spans,omitempty"`
	// Columns are the source columns as they were read.
	Columns []field `json:"columns,omitempty"`
	// Horizon is the snapshot (pg_snapshot text, see horizon.go) of the
	// incremental read that reached this position: rows at or before After
	// written by a transaction it did not see are read by the next read.
	// While a split read is cut short it is the snapshot of its first
	// attempt, and the rest of the read takes only rows that one saw.
	Horizon string `json:"horizon,omitempty"`
	// Changes is the change fingerprint of a table read in full, taken
	// before its first attempt's snapshot (changes.go).
	Changes string `json:"changes,omitempty"`
	// Slot and LSN, in mode cdc: the entity's replication slot, and the WAL
	// position up to which every committed change is in raw (stream.go).
	Slot string `json:"slot,omitempty"`
	LSN  string `json:"lsn,omitempty"`
}

const positionVersion = 1

func decodePosition(raw json.RawMessage) (*position, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var p position
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("reading the committed cursor: %w", err)
	}
	if p.V != positionVersion {
		return nil, fmt.Errorf("reading the committed cursor: version %d, this cdw knows version %d", p.V, positionVersion)
	}
	return &p, nil
}

func (p *position) encode() json.RawMessage {
	data, err := json.Marshal(p)
	if err != nil {
		panic(err) // only strings, ints and bools: cannot fail
	}
	return data
}

// span is one part of a read in By order: the rows after After (from the
// start when empty) up to and including Upto (to the end when empty).
type span struct {
	After []*string `json:"after,omitempty"`
	Upto  []*string `json:"upto,omitempty"`
	Done  bool      `json:"done,omitempty"`
	// Unseen makes this the late part of a read: only rows written by
	// transactions this snapshot (the previous read's horizon) did not see.
	Unseen string `json:"unseen,omitempty"`
}

// resume returns the spans a read continues with: one span after the
// committed position (from the beginning without one), or the parts of a
// split read that was cut short. Carrying a position over to different By
// columns would skip or repeat rows, so that is an error asking for a full
// refresh.
func (p *position) resume(mode string, by []string) ([]span, error) {
	if p == nil || p.Mode != mode || (len(p.After) == 0 && len(p.Spans) == 0) || (mode == modeFull && p.Done) {
		return []span{{}}, nil
	}
	if !slices.Equal(p.By, by) {
		return nil, fmt.Errorf("the committed cursor is a position in (%s) but the entity is now read in order of (%s); run a full refresh to start over",
			strings.Join(p.By, ", "), strings.Join(by, ", "))
	}
	spans := p.Spans
	if len(spans) == 0 {
		spans = []span{{After: p.After}}
	}
	for _, s := range spans {
		if (len(s.After) != 0 && len(s.After) != len(by)) || (len(s.Upto) != 0 && len(s.Upto) != len(by)) {
			return nil, fmt.Errorf("reading the committed cursor: a position with %d or %d values for %d columns", len(s.After), len(s.Upto), len(by))
		}
	}
	if !slices.ContainsFunc(spans, func(s span) bool { return !s.Done }) {
		// Every part done. A read that completes commits a plain position
		// instead, so only a state edited by hand gets here: go on after the
		// last part, as that plain position would (a full read starts over).
		if mode == modeFull {
			return []span{{}}, nil
		}
		return []span{{After: spans[len(spans)-1].After}}, nil
	}
	return spans, nil
}

// unfinished counts the spans a read still has to read.
func unfinished(spans []span) int {
	n := 0
	for _, sp := range spans {
		if !sp.Done {
			n++
		}
	}
	return n
}

// lateSpans puts the late part before the read from a plain committed
// position: the rows at or before it that its read did not see committed.
func (p *position) lateSpans(spans []span) []span {
	if p == nil || p.Horizon == "" || len(spans) != 1 || len(spans[0].After) == 0 || spans[0].Upto != nil {
		return spans
	}
	return []span{{Upto: spans[0].After, Unseen: p.Horizon}, spans[0]}
}

// resumed reports whether spans continue a committed position.
func resumed(spans []span) bool {
	return len(spans) > 1 || len(spans[0].After) > 0
}
