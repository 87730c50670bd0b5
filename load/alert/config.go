// Package alert tells someone when a high-value customer turns critical:
// when a customer enters churn_risk.early_warning (or leaves it), cdw sends
// one webhook post (JSON with a text field, which Slack, Teams and
// Mattermost incoming webhooks show) and/or one e-mail to the customer's
// owner or the unit head, once per episode. Messages go through an outbox
// in the warehouse state, written durably before anything is sent, each with
// an idempotency key per episode and event; a delivery is recorded after the
// server accepted it. See README.md for what "once" means across crashes.
package alert

import (
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cdwhq/cdw/internal/config"
	"github.com/cdwhq/cdw/internal/secret"
	"github.com/cdwhq/cdw/load/report"
)

// Options are the alerts: settings of cdw.yaml.
type Options struct {
	// WebhookURLEnv names the environment variable holding the webhook URL
	// (the URL is a credential: it is never in the file, a log or an error).
	WebhookURLEnv string `yaml:"webhook_url_env"`
	// Email sends each alert to the customer's owner (customer_360.owner),
	// else the unit's address (units, else report.units), else to. Needs smtp:.
	Email bool              `yaml:"email"`
	Units map[string]string `yaml:"units"`
	To    []string          `yaml:"to"`
	// Initial is what the first run does with the customers already on
	// early warning: baseline (default: record them, alert nobody, say how
	// many) or notify (alert each one).
	Initial     string        `yaml:"initial"`
	MaxAttempts int           `yaml:"max_attempts"` // per delivery and run, default 5
	Backoff     time.Duration `yaml:"backoff"`      // before the second attempt, doubling; default 2s
	Timeout     time.Duration `yaml:"timeout"`      // per request, default 10s
	Marts       string        `yaml:"marts"`        // default: report.marts (<warehouse>/marts.duckdb)
}

// The values of alerts.initial.
const (
	InitialBaseline = "baseline"
	InitialNotify   = "notify"
)

// Config is a checked alerts configuration.
type Config struct {
	Options
	Warehouse string              // state lives under <warehouse>/state
	SMTP      *report.SMTPOptions // nil: no e-mail
}

// ParseConfig checks the alerts: node; report: and smtp: give the unit
// heads, the marts file and the mail server. Relative paths start at baseDir.
func ParseConfig(alertsNode, reportNode, smtpNode config.Node, warehouse, baseDir string) (*Config, error) {
	if alertsNode.Y == nil {
		return nil, alertsNode.Errorf("cdw notify needs an alerts: section (webhook_url_env and/or email: true)")
	}
	rc, err := report.ParseConfig(reportNode, smtpNode, warehouse, baseDir)
	if err != nil {
		return nil, err
	}
	c := &Config{Warehouse: warehouse, SMTP: rc.SMTP}
	if err := alertsNode.Decode(&c.Options); err != nil {
		return nil, err
	}
	o := &c.Options
	// pipelines.LoadConfig registers every *_env value; this makes the
	// package safe on its own (a test, another caller).
	secret.AddEnv(o.WebhookURLEnv)
	if o.WebhookURLEnv != "" {
		addURLParts(os.Getenv(o.WebhookURLEnv))
	}
	if o.WebhookURLEnv == "" && !o.Email {
		return nil, alertsNode.Errorf("alerts: set webhook_url_env (a webhook) and/or email: true")
	}
	if o.Email && c.SMTP == nil {
		return nil, alertsNode.Get("email").Errorf("email: true needs an smtp: section")
	}
	if o.Units == nil {
		o.Units = rc.Report.Units
	}
	for u, a := range o.Units {
		if _, err := mail.ParseAddress(a); err != nil {
			return nil, alertsNode.Get("units").Get(u).Errorf("unit %s address %q: %v", u, a, err)
		}
	}
	for i, a := range o.To {
		if _, err := mail.ParseAddress(a); err != nil {
			return nil, alertsNode.Get("to").Errorf("recipient %d %q: %v", i+1, a, err)
		}
	}
	switch o.Initial {
	case "":
		o.Initial = InitialBaseline
	case InitialBaseline, InitialNotify:
	default:
		return nil, alertsNode.Get("initial").Errorf("initial must be %s or %s, got %q", InitialBaseline, InitialNotify, o.Initial)
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = 2 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	switch {
	case o.Marts == "":
		o.Marts = rc.Report.Marts
	case !filepath.IsAbs(o.Marts):
		o.Marts = filepath.Join(baseDir, o.Marts)
	}
	return c, nil
}

// addURLParts registers the parts of a webhook URL that carry its token
// (Slack and Teams put it in the path, others in the query or the user
// info): a server or proxy that echoes only the path must not leak it.
func addURLParts(raw string) {
	u, err := url.Parse(raw)
	if err != nil {
		return
	}
	if len(u.Path) >= 8 {
		secret.Add(u.Path, strings.TrimPrefix(u.Path, "/"))
	}
	secret.Add(u.RawQuery)
	if p, ok := u.User.Password(); ok {
		secret.Add(p)
	}
}

// recipients is where the e-mail about a customer goes: the owner when the
// CRM names one, else the unit's address, else alerts.to.
func (c *Config) recipients(owner, unit string) []string {
	if a, err := mail.ParseAddress(owner); err == nil && owner != "" {
		return []string{a.Address}
	}
	if a := c.Units[unit]; a != "" {
		return []string{a}
	}
	return c.To
}

func (c *Config) String() string {
	return fmt.Sprintf("alerts(webhook=%v email=%v)", c.WebhookURLEnv != "", c.Email)
}
