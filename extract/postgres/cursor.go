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
	// Columns are the source columns as they were read.
	Columns []field `json:"columns,omitempty"`
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

// resumeAfter returns the values to read after, or nil to start from the
// beginning. Carrying a position over to different By columns would skip or
// repeat rows, so that is an error asking for a full refresh.
func (p *position) resumeAfter(mode string, by []string) ([]*string, error) {
	if p == nil || p.Mode != mode || len(p.After) == 0 || (mode == modeFull && p.Done) {
		return nil, nil
	}
	if !slices.Equal(p.By, by) {
		return nil, fmt.Errorf("the committed cursor is a position in (%s) but the entity is now read in order of (%s); run a full refresh to start over",
			strings.Join(p.By, ", "), strings.Join(by, ", "))
	}
	if len(p.After) != len(by) {
		return nil, fmt.Errorf("reading the committed cursor: %d values for %d columns", len(p.After), len(by))
	}
	return p.After, nil
}
