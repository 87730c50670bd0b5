// Package reliability holds cdw's end-to-end reliability and security tests:
// the real binary killed at failpoints and rerun, faults in every source kind,
// disk full, corrupt raw files, SQL injection through config identifiers and
// secret leaks. See RELIABILITY.md at the repository root for the scenarios.
package reliability

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5"

	"github.com/cdwhq/cdw/extract/sample"
	"github.com/cdwhq/cdw/internal/crashtest"
	"github.com/cdwhq/cdw/internal/pgtest"
)

func TestMain(m *testing.M) {
	crashtest.MaybeReader()
	code := m.Run()
	crashtest.Cleanup()
	if err := pgtest.Shutdown(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
	}
	os.Exit(code)
}

// apiToken is the helpdesk API's bearer token. It doubles as the secret the
// leak test greps every output for.
const (
	apiToken    = "tok-SECRET-7f3a9c1e5b"
	apiTokenEnv = "CDW_REL_API_TOKEN"
	customers   = 400
)

// fixture is one set of sources of all three kinds: orders in a PostgreSQL
// table, tickets behind an HTTP API on loopback, contacts in CSV files.
type fixture struct {
	bin     string
	sources string // directory of the generated CSV files
	files   sample.Files
	db      *pgtest.DB
	api     *helpdesk
	orders  int // rows in the PostgreSQL table
}

func newFixture(t *testing.T) *fixture { return newFixtureOn(t, pgtest.Start(t)) }

// newFixtureOn puts the orders table on a given server (a private one for
// tests that restart it).
func newFixtureOn(t *testing.T, srv *pgtest.Server) *fixture {
	t.Helper()
	f := &fixture{bin: crashtest.Binary(t), sources: t.TempDir()}
	files, err := sample.Write(f.sources, sample.Options{Customers: customers, Updates: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	f.files = files
	f.db = srv.NewDB(t)
	f.orders = loadOrders(t, f.db, files.Orders)
	f.api = newHelpdesk(t, files.Tickets)
	return f
}

// loadOrders puts the generated orders into a PostgreSQL table the way an
// OLTP system holds them: one row per (order_no, line), its latest version.
func loadOrders(t *testing.T, db *pgtest.DB, csvPath string) int {
	t.Helper()
	db.Exec(t, `CREATE TABLE orders_import (order_no bigint, line int, customer text, ordered_at timestamp,
		status text, sku text, product text, category text, qty int, unit_price numeric(12,2), cost numeric(12,2),
		business_unit text, channel text, updated_at timestamptz)`)
	in, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	conn := db.Connect(t)
	if _, err := conn.PgConn().CopyFrom(context.Background(), in, "COPY orders_import FROM STDIN (FORMAT csv, HEADER true)"); err != nil {
		t.Fatalf("loading orders into PostgreSQL: %v", err)
	}
	db.Exec(t, `CREATE TABLE orders AS SELECT DISTINCT ON (order_no, line) * FROM orders_import ORDER BY order_no, line, updated_at DESC;
		ALTER TABLE orders ADD PRIMARY KEY (order_no, line); DROP TABLE orders_import`)
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM orders").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// pgConn returns host, port, database and user of the fixture's database.
func (f *fixture) pgConn(t testing.TB) (string, int, string, string) {
	cfg, err := pgx.ParseConfig(f.db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Host, int(cfg.Port), cfg.Database, cfg.User
}

// cfgOptions vary the generated cdw.yaml.
type cfgOptions struct {
	pgSchema  string // publish to PostgreSQL into this schema ("" = no PostgreSQL target)
	pgPort    int    // override the source's port (connection refused)
	apiURL    string // override the API base URL
	ordersQry string // read orders with this query instead of the table
	extraOrd  string // extra YAML for the orders entity, indented 8 spaces
	sourceExt string // extra YAML for the shop source, indented 4 spaces
	publExt   string // extra publish: entries, indented 2 spaces
	topExt    string // extra top-level YAML
	cdc       bool   // read orders in mode: cdc instead of by cursor
}

// writeConfig writes dir/cdw.yaml with dir/wh as the warehouse.
func (f *fixture) writeConfig(t testing.TB, dir string, o cfgOptions) string {
	t.Helper()
	host, port, database, user := f.pgConn(t)
	if o.pgPort != 0 {
		port = o.pgPort
	}
	api := f.api.srv.URL
	if o.apiURL != "" {
		api = o.apiURL
	}
	from := "table: public.orders"
	if o.ordersQry != "" {
		from = "query: " + strconv.Quote(o.ordersQry)
	}
	cursor := "cursor: updated_at"
	if o.cdc {
		cursor = "mode: cdc"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `warehouse: wh
duckdb: {threads: 1, memory_limit: 1GB}
sources:
  - name: shop
    kind: postgres
    host: %s
    port: %d
    database: %s
    user: %s
    sslmode: disable
    safety_lag: 0s
    checkpoint_rows: 500
    connect_timeout: 5s
%s    entities:
      orders:
        %s
        %s
        key: [order_no, line]
        columns: {order_id: order_no, line_no: line, customer_id: customer, order_ts: ordered_at, status: status, product_id: sku, product_name: product, category: category, quantity: qty, unit_price: unit_price, cost: cost, business_unit: business_unit, channel: channel, updated_at: updated_at}
%s  - name: helpdesk
    kind: httpapi
    base_url: %s
    auth: {type: bearer, token_env: %s}
    timeout: 5s
    retry: {max_attempts: 4, base_delay: 5ms, max_delay: 20ms, max_retry_after: 2s}
    entities:
      tickets:
        path: /tickets
        records: data
        pagination: {type: page, page_param: page, size_param: per_page, size: 25}
        incremental: {param: updated_since, format: rfc3339, field: updated_at, overlap: 0s}
        fields: {ticket_id: ticket_id, customer_id: customer, created_at: created_at, resolved_at: resolved_at, status: status, priority: priority, category: category, satisfaction: csat, business_unit: business_unit, updated_at: updated_at}
  - name: crm
    kind: files
    entities:
      contacts:
        path: %s
        columns: {contact_id: contact_id, customer_id: customer_no, name: name, email: email, phone: phone, company: company, customer_type: type, business_unit: business_unit, channel: channel, country: country, created_at: created, last_contact_at: last_contact, updated_at: updated}
  - name: web
    kind: files
    entities:
      contacts:
        path: %s
        columns: {contact_id: signup_id, email: email, phone: mobile, name: full_name, created_at: signed_up_at, updated_at: signed_up_at}
publish:
  - kind: parquet
  - kind: duckdb
`, host, port, database, user, o.sourceExt, from, cursor, o.extraOrd, api, apiTokenEnv, f.files.CRMContacts, f.files.WebSignups)
	b.WriteString(o.publExt)
	if o.pgSchema != "" {
		fmt.Fprintf(&b, `  - kind: postgres
    host: %s
    port: %d
    database: %s
    user: %s
    sslmode: disable
    schema: %s
    bi_role: cdw_rel_bi
    create_roles: true
    row_level_security:
      roles: {North: cdw_rel_north, South: cdw_rel_south}
`, host, port, database, user, o.pgSchema)
	}
	b.WriteString(o.topExt)
	p := filepath.Join(dir, "cdw.yaml")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// run runs `cdw <cmd> --config cfg` to the end (or the failpoint).
func (f *fixture) run(t testing.TB, cfg string, r crashtest.Run) crashtest.Result {
	t.Helper()
	if len(r.Args) == 0 {
		r.Args = []string{"run"}
	}
	r.Args = append(r.Args, "--config", cfg, "--log-level", "info")
	r.Env = append(r.Env, apiTokenEnv+"="+apiToken)
	return crashtest.Exec(t, f.bin, r)
}

// mustRun runs cdw and fails the test unless it succeeds.
func (f *fixture) mustRun(t testing.TB, cfg string, args ...string) crashtest.Result {
	t.Helper()
	res := f.run(t, cfg, crashtest.Run{Args: args})
	if res.Killed || res.Code != 0 {
		t.Fatalf("cdw %v: %s\n%s", args, res, res.Stderr)
	}
	return res
}

// helpdesk serves tickets as a paginated JSON API, filtered by
// updated_since (exclusive) and ordered by (updated_at, ticket_id). A fault
// hook lets tests answer a request with an error instead.
type helpdesk struct {
	srv     *httptest.Server
	tickets []map[string]any

	mu       sync.Mutex
	fault    func(w http.ResponseWriter, r *http.Request, n int) bool // true: handled
	requests int
}

func newHelpdesk(t *testing.T, csvPath string) *helpdesk {
	t.Helper()
	in, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	rd := csv.NewReader(in)
	head, err := rd.Read()
	if err != nil {
		t.Fatal(err)
	}
	h := &helpdesk{}
	for {
		rec, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]any{}
		for i, k := range head {
			switch {
			case rec[i] == "":
				m[k] = nil
			case k == "csat":
				n, _ := strconv.Atoi(rec[i])
				m[k] = n
			default:
				m[k] = rec[i]
			}
		}
		h.tickets = append(h.tickets, m)
	}
	sort.Slice(h.tickets, func(i, j int) bool {
		a, b := h.tickets[i], h.tickets[j]
		if a["updated_at"] != b["updated_at"] {
			return a["updated_at"].(string) < b["updated_at"].(string)
		}
		return a["ticket_id"].(string) < b["ticket_id"].(string)
	})
	h.srv = httptest.NewServer(h)
	t.Cleanup(h.srv.Close)
	return h
}

// setFault installs a fault hook (nil removes it) and resets the request count.
func (h *helpdesk) setFault(f func(w http.ResponseWriter, r *http.Request, n int) bool) {
	h.mu.Lock()
	h.fault, h.requests = f, 0
	h.mu.Unlock()
}

func (h *helpdesk) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.requests++
	n, fault := h.requests, h.fault
	h.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+apiToken {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if fault != nil && fault(w, r, n) {
		return
	}
	if r.URL.Path != "/tickets" {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	page, _ := strconv.Atoi(q.Get("page"))
	size, _ := strconv.Atoi(q.Get("per_page"))
	if page < 1 || size < 1 {
		http.Error(w, "bad page", http.StatusBadRequest)
		return
	}
	var since time.Time
	if s := q.Get("updated_since"); s != "" {
		var err error
		if since, err = time.Parse(time.RFC3339, s); err != nil {
			http.Error(w, "bad updated_since", http.StatusBadRequest)
			return
		}
	}
	var sel []map[string]any
	for _, tk := range h.tickets {
		u, _ := time.Parse(time.RFC3339, tk["updated_at"].(string))
		if u.After(since) {
			sel = append(sel, tk)
		}
	}
	from := min((page-1)*size, len(sel))
	to := min(from+size, len(sel))
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"data": sel[from:to]})
}

// duck opens an in-memory DuckDB for reading Parquet, closed with the test.
func duck(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
