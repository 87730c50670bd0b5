package alert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cdwhq/cdw/internal/failpoint"
	"github.com/cdwhq/cdw/load/report"
)

// RunOptions tune one notify run.
type RunOptions struct {
	Log *slog.Logger
	Now func() time.Time // default time.Now; stamps queue and delivery times
}

// Result is what one run did.
type Result struct {
	AsOf     string
	Baseline int // first run under initial: baseline: customers on early warning recorded, not alerted
	Entered  int // episodes opened this run
	Left     int // episodes closed this run
	Webhooks int // webhook posts the server accepted this run
	Emails   int // e-mails the SMTP server accepted this run
	Pending  int // messages still in the outbox: a delivery failed, the next run retries
	// NoRecipient lists the e-mails that had nowhere to go (no owner, unit
	// address or alerts.to), as "customer (unit)".
	NoRecipient []string
}

// runner is one run's delivery context.
type runner struct {
	cfg        *Config
	webhookURL string
	client     *http.Client
	log        *slog.Logger
	now        func() time.Time
}

// Run compares churn_risk.early_warning with the open episodes, queues an
// alert for every customer that entered or left it, and delivers the outbox.
// The caller holds the warehouse lock. A delivery that still fails after
// its retries stays queued for the next run and makes Run return an error.
func Run(ctx context.Context, cfg *Config, opts RunOptions) (*Result, error) {
	r := &runner{cfg: cfg, log: opts.Log, now: opts.Now, client: &http.Client{Timeout: cfg.Timeout}}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.now == nil {
		r.now = time.Now
	}
	if cfg.WebhookURLEnv != "" {
		r.webhookURL = os.Getenv(cfg.WebhookURLEnv)
		if r.webhookURL == "" {
			return nil, fmt.Errorf("alerts.webhook_url_env: environment variable %s is not set", cfg.WebhookURLEnv)
		}
	}
	st, err := loadState(cfg.Warehouse)
	if err != nil {
		return nil, err
	}
	snap, err := openMarts(ctx, cfg.Marts)
	if err != nil {
		return nil, err
	}
	defer snap.Close()
	if err := snap.load(ctx); err != nil {
		return nil, err
	}
	res := &Result{AsOf: snap.AsOf}
	if !st.Started && cfg.Initial == InitialBaseline {
		for _, id := range slices.Sorted(maps.Keys(snap.Flagged)) {
			st.open(id, snap)
		}
		st.Started, st.AsOf = true, snap.AsOf
		res.Baseline = len(snap.Flagged)
		return res, st.save(cfg.Warehouse)
	}
	st.Started = true
	if err := r.queue(ctx, st, snap, res); err != nil {
		return res, err
	}
	if err := st.save(cfg.Warehouse); err != nil {
		return res, err
	}
	failpoint.Hit("alert.after-outbox")
	err = r.deliver(ctx, st, res)
	for _, m := range st.Outbox {
		if !m.done() {
			res.Pending++
		}
	}
	return res, err
}

// open starts an episode for a customer now on early warning.
func (st *state) open(id string, snap *snapshot) *episode {
	st.Seq++
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%d", id, snap.AsOf, st.Seq)))
	ep := &episode{ID: "ew-" + hex.EncodeToString(h[:8]), Since: snap.AsOf, Customer: *snap.Flagged[id]}
	st.Active[id] = ep
	return ep
}

// queue adds to the outbox one message per customer that entered or left
// early warning since the last run.
func (r *runner) queue(ctx context.Context, st *state, snap *snapshot, res *Result) error {
	for _, id := range slices.Sorted(maps.Keys(snap.Flagged)) {
		if _, open := st.Active[id]; open {
			continue
		}
		ep := st.open(id, snap)
		st.Outbox = append(st.Outbox, r.message(ep, EventEntered, snap.AsOf, *snap.Flagged[id], res))
		res.Entered++
	}
	var left []string
	for _, id := range slices.Sorted(maps.Keys(st.Active)) {
		if snap.Flagged[id] == nil {
			left = append(left, id)
		}
	}
	now := map[string]*Customer{}
	for chunk := range slices.Chunk(left, 500) {
		cs, err := snap.query(ctx, chunk)
		if err != nil {
			return err
		}
		for _, c := range cs {
			now[c.ID] = c
		}
	}
	for _, id := range left {
		ep := st.Active[id]
		c := ep.Customer
		if n := now[id]; n != nil {
			c = *n
		}
		c.Scored = now[id] != nil
		st.Outbox = append(st.Outbox, r.message(ep, EventLeft, snap.AsOf, c, res))
		delete(st.Active, id)
		res.Left++
	}
	st.AsOf = snap.AsOf
	return nil
}

func (r *runner) message(ep *episode, event, asOf string, c Customer, res *Result) *Message {
	m := &Message{Key: ep.ID + "." + event, Episode: ep.ID, Event: event, AsOf: asOf, Since: ep.Since, Customer: c, Created: r.now().UTC()}
	if r.cfg.WebhookURLEnv != "" {
		m.Webhook = &Delivery{}
	}
	if r.cfg.Email {
		m.Email = &Delivery{To: r.cfg.recipients(c.Owner, c.Unit)}
		if len(m.Email.To) == 0 {
			m.Email.Skipped = fmt.Sprintf("no owner, alerts.units address or alerts.to for unit %q", c.Unit)
			res.NoRecipient = append(res.NoRecipient, fmt.Sprintf("%s (%s)", c.ID, c.Unit))
		}
	}
	return m
}

// deliver sends every undelivered message of the outbox, oldest first, and
// records each delivery durably right after the server accepted it. A
// channel that fails after its retries is not tried again in this run.
func (r *runner) deliver(ctx context.Context, st *state, res *Result) error {
	var errs []error
	var hookDown, mailDown bool
	for _, m := range st.Outbox {
		if m.Webhook != nil && !m.Webhook.done() && !hookDown {
			err := r.post(ctx, m)
			if err != nil {
				hookDown = true
				errs = append(errs, fmt.Errorf("alert %s (customer %s): %w", m.Key, m.Customer.ID, err))
			} else {
				failpoint.Hit("alert.after-send")
				m.Webhook.Delivered = r.now().UTC()
				res.Webhooks++
			}
			if err := st.save(r.cfg.Warehouse); err != nil {
				return errors.Join(append(errs, err)...)
			}
			failpoint.Hit("alert.after-record")
		}
		if m.Email != nil && !m.Email.done() && !mailDown {
			err := r.mail(ctx, m)
			if err != nil {
				mailDown = true
				errs = append(errs, fmt.Errorf("alert %s e-mail to %s: %w", m.Key, strings.Join(m.Email.To, ", "), err))
			} else {
				failpoint.Hit("alert.after-send")
				m.Email.Delivered = r.now().UTC()
				res.Emails++
			}
			if err := st.save(r.cfg.Warehouse); err != nil {
				return errors.Join(append(errs, err)...)
			}
			failpoint.Hit("alert.after-record")
		}
	}
	st.retire()
	if err := st.save(r.cfg.Warehouse); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (r *runner) mail(ctx context.Context, m *Message) error {
	n := report.Notice{To: m.Email.To, Subject: subject(m), Text: text(m) + "\n\n-- \ncdw alert " + m.Key + "\n", MessageID: m.Key + "@cdw.alert"}
	return r.retry(ctx, m.Email, func() (time.Duration, error) {
		return 0, report.SendNotice(ctx, r.cfg.SMTP, n)
	})
}

// label names a customer the way people know them.
func label(c Customer) string {
	s := c.ID
	if c.Name != "" && c.Name != c.ID {
		s = c.Name + " (" + c.ID + ")"
	}
	if c.Unit != "" {
		s += ", unit " + c.Unit
	}
	return s
}

func subject(m *Message) string {
	if m.Event == EventLeft {
		return "Early warning over: " + label(m.Customer)
	}
	return fmt.Sprintf("Early warning: %s, churn score %.0f", label(m.Customer), m.Customer.Score)
}

// text is the alert in plain words, as chat tools and e-mail show it.
func text(m *Message) string {
	c := m.Customer
	var b strings.Builder
	if m.Event == EventLeft {
		fmt.Fprintf(&b, "Early warning over: %s is off the early-warning list as of %s (on it since %s)", label(c), m.AsOf, m.Since)
		if c.Scored {
			fmt.Fprintf(&b, "; churn score now %.0f", c.Score)
			if c.Band != "" {
				fmt.Fprintf(&b, " (%s)", c.Band)
			}
		} else {
			b.WriteString("; the customer is no longer scored")
		}
		b.WriteString(".")
		return b.String()
	}
	fmt.Fprintf(&b, "Early warning: %s is a high-value customer at", label(c))
	if c.Band != "" {
		fmt.Fprintf(&b, " %s", c.Band)
	}
	fmt.Fprintf(&b, " churn risk (score %.0f of 100) as of %s.", c.Score, m.AsOf)
	if c.Recency > 0 && c.Rhythm > 0 {
		fmt.Fprintf(&b, " No order for %d days; usually orders every %.0f days.", c.Recency, c.Rhythm)
	} else if c.Recency > 0 {
		fmt.Fprintf(&b, " No order for %d days.", c.Recency)
	}
	if c.NetRevenue != 0 {
		fmt.Fprintf(&b, " Net revenue so far %.2f.", c.NetRevenue)
	}
	if c.Drivers != "" {
		fmt.Fprintf(&b, " Drivers: %s.", c.Drivers)
	}
	if c.Owner != "" {
		fmt.Fprintf(&b, " Owner: %s.", c.Owner)
	}
	return b.String()
}

// Lines says what the run did, one line each, for the terminal and the run
// history: nothing is left to silence (a baseline, an e-mail with nowhere to
// go, alerts still queued).
func (r *Result) Lines() []string {
	if r == nil {
		return nil
	}
	var out []string
	if r.Baseline > 0 || (r.Entered == 0 && r.Left == 0 && r.Webhooks == 0 && r.Emails == 0 && r.Pending == 0) {
		if r.Baseline > 0 {
			out = append(out, fmt.Sprintf("alerts: first run: %d customers already on early warning as of %s taken as the baseline, not alerted (alerts.initial: notify alerts them)", r.Baseline, r.AsOf))
		} else {
			out = append(out, fmt.Sprintf("alerts: no change in early warning as of %s", r.AsOf))
		}
	} else {
		out = append(out, fmt.Sprintf("alerts: as of %s %d customers entered early warning, %d left; delivered %d webhook posts, %d e-mails",
			r.AsOf, r.Entered, r.Left, r.Webhooks, r.Emails))
	}
	if len(r.NoRecipient) > 0 {
		out = append(out, fmt.Sprintf("not e-mailed: %d alerts have no owner, unit address or alerts.to: %s", len(r.NoRecipient), strings.Join(r.NoRecipient, ", ")))
	}
	if r.Pending > 0 {
		out = append(out, fmt.Sprintf("alerts: %d still queued (a delivery failed; the next run retries them)", r.Pending))
	}
	return out
}
