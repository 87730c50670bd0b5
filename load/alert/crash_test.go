package alert_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cdwhq/cdw/internal/crashtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	crashtest.Cleanup()
	os.Exit(code)
}

// TestExactlyOnceAcrossSIGKILL runs the real cdw notify and SIGKILLs it in
// each window of a delivery — after the outbox is written, after the
// receiver's 2xx but before the record, after the record — then reruns it.
// The receiver dedupes nothing; the test counts deliveries per idempotency
// key. Every alert arrives, and in every window cdw controls exactly once.
// The one window it cannot close is between the server's 2xx and cdw's
// durable record: there the alert in flight is delivered again with the
// same key and the same body, which a receiver that honours the key shows
// once (README.md, "Alerts").
func TestExactlyOnceAcrossSIGKILL(t *testing.T) {
	bin := crashtest.Binary(t)
	cases := []struct {
		failpoint string
		redeliver int // the 1-based delivery of this run that is repeated, 0: none
	}{
		{"alert.after-outbox:1", 0},
		{"alert.after-send:1", 1},
		{"alert.after-send:3", 3},
		{"alert.after-record:2", 0},
	}
	for _, c := range cases {
		t.Run(c.failpoint, func(t *testing.T) {
			dir := t.TempDir()
			rcv := newReceiver(t)
			env := []string{"CDW_TEST_ALERT_WEBHOOK=" + rcv.srv.URL + "/hooks/secret-token-5678"}
			cfg := filepath.Join(dir, "cdw.yaml")
			yml := fmt.Sprintf(`warehouse: wh
sources:
  - {name: crm, kind: files, path: in, entities: {contacts: {pattern: "*.csv"}}}
%s`, hookYAML)
			if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
				t.Fatal(err)
			}
			marts := filepath.Join(dir, "marts.duckdb")
			notify := func(fp string) crashtest.Result {
				return crashtest.Exec(t, bin, crashtest.Run{Args: []string{"notify", "--config", cfg}, Env: env, Failpoint: fp})
			}
			// Week 1: three customers enter early warning.
			writeMarts(t, marts, "2026-09-27", []cust{
				{id: "A", unit: "North", score: 82, warn: true},
				{id: "B", unit: "North", score: 70, warn: true},
				{id: "C", unit: "South", score: 90, warn: true},
				{id: "D", unit: "South", score: 20},
			})
			check := func(step string, wantKeys int, redeliver int) {
				t.Helper()
				if res := notify(c.failpoint); !res.Killed {
					t.Fatalf("%s: the failpoint did not kill cdw: %s", step, res)
				}
				if res := notify(""); res.Killed || res.Code != 0 {
					t.Fatalf("%s: rerun after the kill: %s\n%s", step, res, res.Stdout)
				}
				ds := rcv.deliveries()
				keys := perKey(t, ds)
				if len(keys) != wantKeys {
					t.Fatalf("%s: %d keys delivered, want %d: %v", step, len(keys), wantKeys, keys)
				}
				var twice []string
				for k, n := range keys {
					switch {
					case n == 2:
						twice = append(twice, k)
					case n != 1:
						t.Errorf("%s: key %s delivered %d times", step, k, n)
					}
				}
				if redeliver == 0 && len(twice) > 0 {
					t.Errorf("%s: keys %v delivered twice, though the kill was in a window cdw controls", step, twice)
				}
				if redeliver > 0 {
					if len(twice) != 1 {
						t.Fatalf("%s: keys delivered twice %v, want exactly the one in flight", step, twice)
					}
					var bodies []string
					for _, d := range ds {
						if d.header == twice[0] {
							bodies = append(bodies, d.raw)
						}
					}
					if bodies[0] != bodies[1] {
						t.Errorf("%s: the redelivery differs from the first delivery:\n%s\n%s", step, bodies[0], bodies[1])
					}
				}
			}
			check("week 1", 3, c.redeliver)
			n := len(rcv.deliveries())
			if res := notify(""); res.Code != 0 || len(rcv.deliveries()) != n {
				t.Fatalf("a rerun on unchanged marts delivered %d more (%s)", len(rcv.deliveries())-n, res)
			}
			// Week 2: A and B leave, D enters; the kill hits the leaving alerts too.
			writeMarts(t, marts, "2026-10-04", []cust{
				{id: "A", unit: "North", score: 40},
				{id: "B", unit: "North", score: 50},
				{id: "C", unit: "South", score: 90, warn: true},
				{id: "D", unit: "South", score: 80, warn: true},
			})
			rcv.mu.Lock()
			rcv.got = nil
			rcv.mu.Unlock()
			check("week 2", 3, c.redeliver)
			var events []string
			for _, d := range rcv.deliveries() {
				events = append(events, d.payload.Customer.ID+" "+d.payload.Event)
			}
			events = slices.Compact(slices.Sorted(slices.Values(events)))
			if want := []string{"A early_warning.left", "B early_warning.left", "D early_warning.entered"}; !slices.Equal(events, want) {
				t.Errorf("week 2 events %v, want %v", events, want)
			}
		})
	}
}
