package alert_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/internal/mailtest"
)

// TestREADMEExample runs the README's alerts: block as written (the smtp
// server and the webhook swapped for mailpit and a loopback receiver, and
// initial: notify so the first run alerts), and checks that the documented
// payload has exactly the fields of a real post.
func TestREADMEExample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	yml := string(regexp.MustCompile("(?s)```yaml\n(alerts:.*?)```").FindSubmatch(readme)[1])
	doc := string(regexp.MustCompile("(?s)```json\n(.*?)```").FindSubmatch(readme)[1])
	smtpPort, api := mailtest.Mailpit(t)
	rcv := newReceiver(t)
	t.Setenv("CDW_ALERT_WEBHOOK", rcv.srv.URL+"/services/T0/B0/readme-token")
	for _, r := range [][2]string{
		{"host: smtp.example.com", "host: 127.0.0.1"},
		{"port: 587", "port: " + itoa(smtpPort)},
		{"initial: baseline", "initial: notify"},
		{"backoff: 2s", "backoff: 2s\n  marts: marts.duckdb"},
	} {
		if !strings.Contains(yml, r[0]) {
			t.Fatalf("the README example lost %q", r[0])
		}
		yml = strings.Replace(yml, r[0], r[1], 1)
	}
	dir := t.TempDir()
	cfg := setup(t, dir, yml)
	writeMarts(t, filepath.Join(dir, "marts.duckdb"), "2026-09-27", []cust{
		{id: "A", name: "Anna Alpha", unit: "North", owner: "sam.seller@example.com", score: 82, warn: true},
		{id: "B", unit: "North", score: 70, warn: true},
		{id: "C", unit: "West", score: 75, warn: true},
	})
	res := run(t, cfg)
	if res.Webhooks != 3 || res.Emails != 3 {
		t.Fatalf("%+v, want 3 posts and 3 e-mails", res)
	}
	var list struct {
		Messages []struct{ To []struct{ Address string } }
	}
	getJSON(t, api+"/messages", &list)
	var to []string
	for _, m := range list.Messages {
		to = append(to, m.To[0].Address)
	}
	slices.Sort(to)
	if want := []string{"crm-team@example.com", "north-sales@example.com", "sam.seller@example.com"}; !slices.Equal(to, want) {
		t.Errorf("e-mails to %v, want %v (owner, units, to)", to, want)
	}
	var real map[string]any
	for _, d := range rcv.deliveries() {
		if d.payload.Customer.ID == "A" {
			json.Unmarshal([]byte(d.raw), &real)
		}
	}
	// The same payload is shown in the top-level README and the report's.
	docs := map[string]string{"README.md": doc}
	for _, p := range []string{"../../README.md", "../report/README.md"} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile("(?s)```json\n([^`]*idempotency_key.*?)```").FindSubmatch(b)
		if m == nil {
			t.Errorf("%s does not show the alert payload", p)
			continue
		}
		docs[p] = string(m[1])
	}
	for p, doc := range docs {
		var documented map[string]any
		if err := json.Unmarshal([]byte(doc), &documented); err != nil {
			t.Fatalf("the payload in %s is not JSON: %v", p, err)
		}
		if a, b := fields(documented, ""), fields(real, ""); !slices.Equal(a, b) {
			t.Errorf("%s: payload fields %v, a real post has %v", p, a, b)
		}
		if documented["text"] != real["text"] || documented["idempotency_key"] != real["idempotency_key"] {
			t.Errorf("%s: text %q key %v, a real post %q %v", p, documented["text"], documented["idempotency_key"], real["text"], real["idempotency_key"])
		}
	}
}

// fields lists the keys of a JSON object, nested ones as parent.key.
func fields(m map[string]any, prefix string) []string {
	var out []string
	for k, v := range m {
		out = append(out, prefix+k)
		if sub, ok := v.(map[string]any); ok {
			out = append(out, fields(sub, prefix+k+".")...)
		}
	}
	slices.Sort(out)
	return out
}
