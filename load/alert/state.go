package alert

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cdwhq/cdw/internal/durable"
)

// state is what notify remembers between runs, in one file rewritten
// atomically (internal/durable): the open episodes, the outbox of messages
// not yet delivered on every channel, and the last deliveries.
type state struct {
	Started bool                `json:"started"` // a first run has taken its baseline
	AsOf    string              `json:"as_of"`   // churn_risk.as_of of the last run
	Seq     int64               `json:"seq"`     // episodes opened so far: makes keys unique across re-entries
	Active  map[string]*episode `json:"active"`  // customer id → open episode
	Outbox  []*Message          `json:"outbox"`
	Sent    []*Message          `json:"sent"` // delivered, newest last, at most keepSent
}

// keepSent bounds the delivered messages kept for inspection.
const keepSent = 1000

type episode struct {
	ID       string   `json:"id"`    // idempotency key base: <id>.entered, <id>.left
	Since    string   `json:"since"` // as_of when the customer entered
	Customer Customer `json:"customer"`
}

// Message is one alert: an event of an episode, delivered once per channel.
type Message struct {
	Key      string    `json:"key"` // idempotency key: <episode>.<event>
	Episode  string    `json:"episode"`
	Event    string    `json:"event"` // entered or left
	AsOf     string    `json:"as_of"`
	Since    string    `json:"since"` // as_of the episode began
	Customer Customer  `json:"customer"`
	Created  time.Time `json:"created"`
	Webhook  *Delivery `json:"webhook,omitempty"` // nil: no webhook configured when queued
	Email    *Delivery `json:"email,omitempty"`   // nil: e-mail not configured when queued
}

// Delivery is a message's progress on one channel.
type Delivery struct {
	To        []string  `json:"to,omitempty"`      // e-mail recipients
	Skipped   string    `json:"skipped,omitempty"` // why it is not sent (no recipient)
	Delivered time.Time `json:"delivered,omitempty"`
	Attempts  int       `json:"attempts"` // over all runs
	LastError string    `json:"last_error,omitempty"`
}

func (d *Delivery) done() bool { return d == nil || d.Skipped != "" || !d.Delivered.IsZero() }

func (m *Message) done() bool { return m.Webhook.done() && m.Email.done() }

// Events of an episode.
const (
	EventEntered = "entered"
	EventLeft    = "left"
)

func statePath(warehouse string) string { return filepath.Join(warehouse, "state", "alerts.json") }

func loadState(warehouse string) (*state, error) {
	st := &state{Active: map[string]*episode{}}
	p := statePath(warehouse)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading alert state: %w", err)
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("reading alert state %s: %w", p, err)
	}
	if st.Active == nil {
		st.Active = map[string]*episode{}
	}
	return st, nil
}

func (st *state) save(warehouse string) error {
	b, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return fmt.Errorf("encoding alert state: %w", err)
	}
	if err := durable.WriteFile(statePath(warehouse), b); err != nil {
		return fmt.Errorf("saving alert state: %w", err)
	}
	return nil
}

// retire moves delivered messages from the outbox to the sent list.
func (st *state) retire() {
	keep := st.Outbox[:0]
	for _, m := range st.Outbox {
		if m.done() {
			st.Sent = append(st.Sent, m)
			continue
		}
		keep = append(keep, m)
	}
	st.Outbox = keep
	if n := len(st.Sent) - keepSent; n > 0 {
		st.Sent = append([]*Message(nil), st.Sent[n:]...)
	}
}
