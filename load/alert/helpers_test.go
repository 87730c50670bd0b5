package alert_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cdwhq/cdw/internal/config"
	"github.com/cdwhq/cdw/load/alert"
)

// cust is one churn_risk/customer_360 row of a test's marts.
type cust struct {
	id, name, unit, owner string
	score                 int
	warn                  bool
}

// writeMarts writes a published marts.duckdb the way the duckdb publisher
// leaves it: churn_risk with the built-in columns notify reads, and
// customer_360 with names and owners.
func writeMarts(t *testing.T, path, asOf string, cs []cust) {
	t.Helper()
	os.Remove(path)
	db, err := sql.Open("duckdb", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := []string{
		`CREATE TABLE churn_risk (customer_id VARCHAR, business_unit VARCHAR, as_of DATE, churn_score INTEGER, churn_band VARCHAR,
			drivers VARCHAR, early_warning BOOLEAN, recency_days INTEGER, rhythm_days DOUBLE, clv DOUBLE)`,
		`CREATE TABLE customer_360 (customer_id VARCHAR, business_unit VARCHAR, name VARCHAR, company VARCHAR, owner VARCHAR, monetary DOUBLE)`,
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cs {
		band := "low"
		if c.score >= 75 {
			band = "critical"
		} else if c.score >= 60 {
			band = "high"
		}
		if _, err := db.Exec(`INSERT INTO churn_risk VALUES (?, ?, ?::DATE, ?, ?, '275 days since last order, usually every 14', ?, 275, 14, 1200)`,
			c.id, c.unit, asOf, c.score, band, c.warn); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO customer_360 VALUES (?, ?, ?, NULL, nullif(?, ''), 5400.5)`, c.id, c.unit, c.name, c.owner); err != nil {
			t.Fatal(err)
		}
	}
}

// delivery is one request the loopback receiver got.
type delivery struct {
	header  string // Idempotency-Key
	payload alert.Payload
	raw     string
}

// receiver is a loopback webhook that accepts every post and dedupes
// nothing: tests count deliveries per idempotency key. fail answers the
// first fail[i] requests with status codes before accepting.
type receiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []delivery
	fail []int
	seen int
}

func newReceiver(t *testing.T, fail ...int) *receiver {
	r := &receiver{fail: fail}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.seen++
		if r.seen <= len(r.fail) {
			// An echo of the request URL, as some proxies do: it must not leak.
			http.Error(w, "upstream broken for "+req.URL.String(), r.fail[r.seen-1])
			return
		}
		var p alert.Payload
		if err := json.Unmarshal(b, &p); err != nil || req.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		r.got = append(r.got, delivery{header: req.Header.Get("Idempotency-Key"), payload: p, raw: string(b)})
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// perKey counts deliveries per idempotency key, checking that the header
// and the payload agree.
func perKey(t *testing.T, ds []delivery) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, d := range ds {
		if d.header != d.payload.IdempotencyKey || d.header == "" {
			t.Errorf("Idempotency-Key header %q, payload key %q", d.header, d.payload.IdempotencyKey)
		}
		out[d.header]++
	}
	return out
}

// setup writes a cdw.yaml-style alerts config and returns it parsed.
func setup(t *testing.T, dir, yml string) *alert.Config {
	t.Helper()
	root, err := config.Parse(filepath.Join(dir, "cdw.yaml"), []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	wh := filepath.Join(dir, "wh")
	cfg, err := alert.ParseConfig(root.Get("alerts"), root.Get("report"), root.Get("smtp"), wh, dir)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func run(t *testing.T, cfg *alert.Config) *alert.Result {
	t.Helper()
	res, err := alert.Run(context.Background(), cfg, alert.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func itoa(n int) string { return fmt.Sprint(n) }
