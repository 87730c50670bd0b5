package alert_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/internal/mailtest"
	"github.com/cdwhq/cdw/load/alert"
)

const hookYAML = `alerts:
  webhook_url_env: CDW_TEST_ALERT_WEBHOOK
  initial: notify
  backoff: 1ms
  marts: marts.duckdb
`

// TestOncePerEpisode: entering and leaving early warning each give one
// webhook post, and reruns on unchanged marts give none.
func TestOncePerEpisode(t *testing.T) {
	dir := t.TempDir()
	rcv := newReceiver(t)
	t.Setenv("CDW_TEST_ALERT_WEBHOOK", rcv.srv.URL+"/hooks/T000/secret-token-1234")
	cfg := setup(t, dir, hookYAML)
	marts := filepath.Join(dir, "marts.duckdb")
	writeMarts(t, marts, "2026-09-27", []cust{
		{id: "A", name: "Anna Alpha", unit: "North", score: 82, warn: true},
		{id: "B", name: "Beta GmbH", unit: "South", score: 64, warn: true},
		{id: "C", unit: "South", score: 30},
	})
	res := run(t, cfg)
	if res.Entered != 2 || res.Left != 0 || res.Webhooks != 2 || res.Pending != 0 {
		t.Fatalf("first run: %+v, want 2 entered, 2 posts", res)
	}
	if res := run(t, cfg); res.Entered+res.Left+res.Webhooks != 0 {
		t.Fatalf("rerun on unchanged marts: %+v, want nothing", res)
	}
	// A week later: A recovered, C turned critical, B is still on the list.
	writeMarts(t, marts, "2026-10-04", []cust{
		{id: "A", name: "Anna Alpha", unit: "North", score: 35},
		{id: "B", name: "Beta GmbH", unit: "South", score: 70, warn: true},
		{id: "C", unit: "South", score: 90, warn: true},
	})
	res = run(t, cfg)
	if res.Entered != 1 || res.Left != 1 || res.Webhooks != 2 {
		t.Fatalf("second week: %+v, want 1 entered, 1 left, 2 posts", res)
	}
	run(t, cfg)
	ds := rcv.deliveries()
	keys := perKey(t, ds)
	if len(ds) != 4 || len(keys) != 4 {
		t.Fatalf("receiver got %d posts under %d keys, want 4 and 4: %v", len(ds), len(keys), keys)
	}
	events := map[string]string{}
	episodes := map[string][]string{}
	for _, d := range ds {
		p := d.payload
		events[p.Customer.ID+" "+p.Event] = p.Text
		episodes[p.Customer.ID] = append(episodes[p.Customer.ID], p.Episode)
		if !strings.HasPrefix(p.IdempotencyKey, p.Episode+".") {
			t.Errorf("key %q is not of episode %q", p.IdempotencyKey, p.Episode)
		}
	}
	for _, want := range []string{"A early_warning.entered", "B early_warning.entered", "A early_warning.left", "C early_warning.entered"} {
		if events[want] == "" {
			t.Errorf("no %s alert with a text; got %v", want, events)
		}
	}
	if e := episodes["A"]; len(e) != 2 || e[0] != e[1] {
		t.Errorf("A's entered and left alerts should share one episode, got %v", e)
	}
	if got := events["A early_warning.entered"]; !strings.Contains(got, "Anna Alpha (A), unit North") ||
		!strings.Contains(got, "critical churn risk (score 82 of 100) as of 2026-09-27") ||
		!strings.Contains(got, "No order for 275 days; usually orders every 14 days") {
		t.Errorf("entered text: %q", got)
	}
	if got := events["A early_warning.left"]; !strings.Contains(got, "off the early-warning list as of 2026-10-04 (on it since 2026-09-27); churn score now 35 (low)") {
		t.Errorf("left text: %q", got)
	}
	// Re-entering opens a new episode with a new key.
	writeMarts(t, marts, "2026-10-11", []cust{{id: "A", unit: "North", score: 80, warn: true}})
	res = run(t, cfg)
	if res.Entered != 1 || res.Left != 2 {
		t.Fatalf("third week: %+v, want A entered again, B and C left", res)
	}
	keys = perKey(t, rcv.deliveries())
	if len(keys) != 7 {
		t.Fatalf("after A re-entered: %d keys, want 7 (every delivery its own key): %v", len(keys), keys)
	}
	for k, n := range keys {
		if n != 1 {
			t.Errorf("key %s delivered %d times", k, n)
		}
	}
}

// TestRetryThenSuccess: 500s and a 429 are retried with backoff; the alert
// arrives once.
func TestRetryThenSuccess(t *testing.T) {
	dir := t.TempDir()
	rcv := newReceiver(t, 500, 503, 429)
	t.Setenv("CDW_TEST_ALERT_WEBHOOK", rcv.srv.URL+"/hook")
	cfg := setup(t, dir, hookYAML)
	writeMarts(t, filepath.Join(dir, "marts.duckdb"), "2026-09-27", []cust{{id: "A", unit: "North", score: 82, warn: true}})
	res := run(t, cfg)
	if res.Webhooks != 1 || res.Pending != 0 {
		t.Fatalf("%+v, want one delivery after the retries", res)
	}
	if n := len(rcv.deliveries()); n != 1 || rcv.seen != 4 {
		t.Fatalf("receiver accepted %d posts of %d requests, want 1 of 4", n, rcv.seen)
	}
}

// TestFailureStaysQueued: a webhook that keeps failing leaves the alert in
// the outbox with a clear error; the next run delivers it, once. The URL
// (a credential) appears in no error, log line or state file, even when
// the server echoes it.
func TestFailureStaysQueued(t *testing.T) {
	dir := t.TempDir()
	rcv := newReceiver(t, 500, 500, 400)
	url := rcv.srv.URL + "/hooks/T000/secret-token-1234"
	t.Setenv("CDW_TEST_ALERT_WEBHOOK", url)
	cfg := setup(t, dir, strings.Replace(hookYAML, "backoff: 1ms", "backoff: 1ms\n  max_attempts: 2", 1))
	writeMarts(t, filepath.Join(dir, "marts.duckdb"), "2026-09-27", []cust{{id: "A", unit: "North", score: 82, warn: true}})
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	res, err := alert.Run(context.Background(), cfg, alert.RunOptions{Log: log})
	if err == nil || res.Pending != 1 || !strings.Contains(err.Error(), "after 2 attempt(s)") || !strings.Contains(err.Error(), "500") {
		t.Fatalf("run with a failing webhook: %+v, %v; want one pending alert and an error naming the status", res, err)
	}
	// The third request gets a 400: not retried, still queued.
	res, err = alert.Run(context.Background(), cfg, alert.RunOptions{Log: log})
	if err == nil || res.Pending != 1 || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "after 1 attempt(s)") {
		t.Fatalf("run against a 400: %+v, %v; want no retry and the alert kept", res, err)
	}
	errText := err.Error()
	res = run(t, cfg)
	if res.Webhooks != 1 || res.Pending != 0 || len(rcv.deliveries()) != 1 {
		t.Fatalf("run with the webhook back: %+v, %d deliveries; want the queued alert delivered once", res, len(rcv.deliveries()))
	}
	st, _ := os.ReadFile(filepath.Join(dir, "wh", "state", "alerts.json"))
	for what, s := range map[string]string{"error": errText, "log": logs.String(), "state": string(st)} {
		if strings.Contains(s, "secret-token-1234") {
			t.Errorf("the webhook URL shows in the %s: %s", what, s)
		}
	}
	if !strings.Contains(errText, "REDACTED") {
		t.Errorf("the echoed URL should be masked in the error: %s", errText)
	}
}

// TestBaseline: by default the first run records who is on early warning
// without alerting anyone; later entries alert.
func TestBaseline(t *testing.T) {
	dir := t.TempDir()
	rcv := newReceiver(t)
	t.Setenv("CDW_TEST_ALERT_WEBHOOK", rcv.srv.URL)
	cfg := setup(t, dir, strings.Replace(hookYAML, "  initial: notify\n", "", 1))
	marts := filepath.Join(dir, "marts.duckdb")
	writeMarts(t, marts, "2026-09-27", []cust{{id: "A", score: 82, warn: true}, {id: "B", score: 70, warn: true}})
	if res := run(t, cfg); res.Baseline != 2 || res.Webhooks != 0 {
		t.Fatalf("first run: %+v, want a baseline of 2 and no posts", res)
	}
	writeMarts(t, marts, "2026-10-04", []cust{{id: "A", score: 82, warn: true}, {id: "B", score: 20}, {id: "C", score: 90, warn: true}})
	if res := run(t, cfg); res.Entered != 1 || res.Left != 1 || res.Webhooks != 2 {
		t.Fatalf("second run: %+v, want C entered and B left", res)
	}
	var got []string
	for _, d := range rcv.deliveries() {
		got = append(got, d.payload.Customer.ID+" "+d.payload.Event)
	}
	slices.Sort(got)
	if want := []string{"B early_warning.left", "C early_warning.entered"}; !slices.Equal(got, want) {
		t.Fatalf("posts %v, want %v", got, want)
	}
}

// TestEmailToOwnerOrUnitHead: through a real SMTP server, each alert goes
// to the customer's owner, else the unit's address, else alerts.to; a
// customer with none of them is named in the result.
func TestEmailToOwnerOrUnitHead(t *testing.T) {
	dir := t.TempDir()
	smtpPort, api := mailtest.Mailpit(t)
	cfg := setup(t, dir, `alerts:
  email: true
  initial: notify
  marts: marts.duckdb
report:
  units: {South: south-head@example.com}
smtp:
  host: 127.0.0.1
  port: `+itoa(smtpPort)+`
  from: cdw@example.com
`)
	writeMarts(t, filepath.Join(dir, "marts.duckdb"), "2026-09-27", []cust{
		{id: "A", name: "Anna Alpha", unit: "North", owner: "sam.seller@example.com", score: 82, warn: true},
		{id: "B", name: "Beta GmbH", unit: "South", score: 64, warn: true},
		{id: "C", unit: "West", score: 70, warn: true},
	})
	res := run(t, cfg)
	if res.Emails != 2 || len(res.NoRecipient) != 1 || res.NoRecipient[0] != "C (West)" || res.Pending != 0 {
		t.Fatalf("%+v, want 2 e-mails and C without a recipient", res)
	}
	var list struct {
		Messages []struct {
			MessageID string
			Subject   string
			To        []struct{ Address string }
		}
	}
	getJSON(t, api+"/messages", &list)
	got := map[string]string{}
	for _, m := range list.Messages {
		if len(m.To) != 1 || !strings.HasSuffix(m.MessageID, ".entered@cdw.alert") {
			t.Errorf("message %+v: want one recipient and the alert key as Message-ID", m)
			continue
		}
		got[m.To[0].Address] = m.Subject
	}
	want := map[string]string{
		"sam.seller@example.com": "Early warning: Anna Alpha (A), unit North, churn score 82",
		"south-head@example.com": "Early warning: Beta GmbH (B), unit South, churn score 64",
	}
	if len(got) != len(want) {
		t.Fatalf("mailpit has %v, want %v", got, want)
	}
	for to, s := range want {
		if got[to] != s {
			t.Errorf("to %s: subject %q, want %q", to, got[to], s)
		}
	}
	if res := run(t, cfg); res.Emails != 0 {
		t.Fatalf("rerun sent %d e-mails, want 0", res.Emails)
	}
}
