package httpapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/config"
	"github.com/cdwhq/cdw/internal/duck"
)

// The fake helpdesk: a real HTTP server on loopback serving tickets in pages,
// in one of several pagination styles, with faults injected per page.

var baseTime = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)

type ticket struct {
	ID       int
	Customer string
	Created  time.Time
	Solved   *time.Time
	Status   string
	Score    int // 0 = not rated
	Updated  time.Time
	// Override replaces the ticket's JSON, for records that must be rejected.
	Override map[string]any
}

func (t *ticket) json() map[string]any {
	if t.Override != nil {
		return t.Override
	}
	m := map[string]any{
		"id":         t.ID,
		"requester":  map[string]any{"external_id": t.Customer, "name": "Customer " + t.Customer},
		"created_at": t.Created.Format(time.RFC3339),
		"solved_at":  nil,
		"status":     t.Status,
		"priority":   "normal",
		"type":       "question",
		"updated_at": t.Updated.Format(time.RFC3339Nano),
	}
	if t.Solved != nil {
		m["solved_at"] = t.Solved.Format(time.RFC3339)
	}
	if t.Score > 0 {
		m["satisfaction"] = map[string]any{"score": t.Score}
	}
	return m
}

func newTickets(n int) []*ticket {
	out := make([]*ticket, n)
	for i := range out {
		id := i + 1
		t := &ticket{ID: id, Customer: fmt.Sprintf("C%03d", id%17), Created: baseTime.Add(-24*time.Hour + time.Duration(id)*time.Minute),
			Status: "open", Updated: baseTime.Add(time.Duration(id) * time.Minute)}
		if id%3 == 0 {
			s := t.Created.Add(2 * time.Hour)
			t.Solved, t.Status, t.Score = &s, "resolved", 1+id%5
		}
		out[i] = t
	}
	return out
}

// fault misbehaves instead of serving a page.
type fault func(w http.ResponseWriter, r *http.Request)

func failWith(status int, retryAfter string) fault {
	return func(w http.ResponseWriter, r *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		http.Error(w, "temporarily unavailable", status)
	}
}

// retryAfterDate answers 429 with Retry-After as an HTTP date d after the
// response's own Date header.
func retryAfterDate(d time.Duration) fault {
	return func(w http.ResponseWriter, r *http.Request) {
		now := time.Now().UTC().Truncate(time.Second)
		w.Header().Set("Date", now.Format(http.TimeFormat))
		w.Header().Set("Retry-After", now.Add(d).Format(http.TimeFormat))
		http.Error(w, "slow down", http.StatusTooManyRequests)
	}
}

// slow waits d (or until the client gives up) before answering.
func slow(d time.Duration) fault {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
		}
		http.Error(w, "too late", http.StatusGatewayTimeout)
	}
}

// dropMidBody promises a long body, sends part of it and hangs up.
func dropMidBody(w http.ResponseWriter, r *http.Request) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	fmt.Fprint(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n")
	fmt.Fprint(buf, `{"data": [{"id": 1, "requester": {"external_id": "C0`)
	buf.Flush()
	conn.Close()
}

// invalidJSON answers 200 with a complete body that is not valid JSON.
func invalidJSON(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"data": [{"id": 1,]`)
}

type served struct {
	Page   int
	Query  url.Values
	Header http.Header
	At     time.Time
}

type helpdesk struct {
	srv   *httptest.Server
	style string // page, offset, cursor, link, none
	size  int    // page size when the client sends none
	// repeat makes the server misbehave: "ignore-page" (always the first
	// page), "cursor-loop" (page 2's next cursor points back to page 1),
	// "link-self" (next link is the page itself).
	repeat string

	mu       sync.Mutex
	tickets  []*ticket
	requests []served
	faults   map[int][]fault // by page, one consumed per request
	always   map[int]fault   // by page, on every request
	auth     func(r *http.Request) bool
	hook     func(page int, r *http.Request) // runs before the page is served
}

// newHelpdesk starts a server with n tickets. setup runs before the server
// starts; later changes go through h.set, under the server's lock.
func newHelpdesk(t testing.TB, style string, n int, setup ...func(h *helpdesk)) *helpdesk {
	h := &helpdesk{style: style, size: 10, tickets: newTickets(n), faults: map[int][]fault{}, always: map[int]fault{}}
	for _, f := range setup {
		f(h)
	}
	h.srv = httptest.NewServer(h)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *helpdesk) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/tickets" {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	size := h.size
	for _, p := range []string{"per_page", "limit"} {
		if v, err := strconv.Atoi(q.Get(p)); err == nil && v > 0 {
			size = v
		}
	}
	start := 0
	switch h.style {
	case "page":
		if p, err := strconv.Atoi(q.Get("page")); err == nil && p > 0 {
			start = (p - 1) * size
		}
	case "offset":
		start, _ = strconv.Atoi(q.Get("offset"))
	case "cursor":
		if c := q.Get("cursor"); c != "" {
			start, _ = strconv.Atoi(strings.TrimPrefix(c, "c"))
		}
	case "link":
		start, _ = strconv.Atoi(q.Get("after"))
	}
	if h.repeat == "ignore-page" {
		start = 0
	}
	page := start/size + 1

	h.mu.Lock()
	h.requests = append(h.requests, served{Page: page, Query: q, Header: r.Header.Clone(), At: time.Now()})
	var f fault
	if fs := h.faults[page]; len(fs) > 0 {
		f, h.faults[page] = fs[0], fs[1:]
	} else if a := h.always[page]; a != nil {
		f = a
	}
	auth, hook := h.auth, h.hook
	var items []map[string]any
	var since time.Time
	if s := q.Get("updated_since"); s != "" {
		var err error
		if since, err = time.Parse(time.RFC3339, s); err != nil {
			h.mu.Unlock()
			http.Error(w, "bad updated_since", http.StatusBadRequest)
			return
		}
	}
	var match []*ticket
	for _, t := range h.tickets {
		if !t.Updated.Before(since) {
			match = append(match, t)
		}
	}
	sort.Slice(match, func(i, j int) bool { return match[i].ID < match[j].ID })
	end := min(start+size, len(match))
	if h.style == "none" {
		start, end = 0, len(match)
	}
	for _, t := range match[min(start, end):end] {
		items = append(items, t.json())
	}
	total := len(match)
	h.mu.Unlock()

	if auth != nil && !auth(r) {
		http.Error(w, "unauthorized: got "+r.Header.Get("Authorization"), http.StatusUnauthorized)
		return
	}
	if hook != nil {
		hook(page, r)
	}
	if f != nil {
		f(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if items == nil {
		items = []map[string]any{}
	}
	var body any = map[string]any{"data": items, "meta": map[string]any{"next": nil, "total": total}}
	more := end < total
	switch h.style {
	case "none":
		body = items
	case "cursor":
		next := "c" + strconv.Itoa(end)
		if h.repeat == "cursor-loop" && page == 2 {
			next, more = "c0", true
		}
		if more {
			body.(map[string]any)["meta"].(map[string]any)["next"] = next
		}
	case "link":
		nq := url.Values{"after": {strconv.Itoa(end)}, "per_page": {strconv.Itoa(size)}}
		if k := q.Get("api_key"); k != "" {
			nq.Set("api_key", k) // like servers that echo every parameter
		}
		next := "/api/tickets?" + nq.Encode()
		if h.repeat == "link-self" {
			next, more = r.URL.RequestURI(), true
		}
		if more {
			w.Header().Add("Link", fmt.Sprintf(`<%s>; rel="next", </api/tickets?after=0>; rel="first"`, next))
		}
	}
	json.NewEncoder(w).Encode(body)
}

func (h *helpdesk) url() string { return h.srv.URL + "/api" }

// pages returns the page of every request served so far.
func (h *helpdesk) pages() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]int, len(h.requests))
	for i, r := range h.requests {
		out[i] = r.Page
	}
	return out
}

func (h *helpdesk) served() []served {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.requests)
}

func (h *helpdesk) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests = nil
}

func (h *helpdesk) set(f func(h *helpdesk)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(h)
}

// paginationYAML is the pagination block for a server style.
func paginationYAML(style string) string {
	switch style {
	case "page":
		return "{type: page, page_param: page, size_param: per_page, size: 10}"
	case "offset":
		return "{type: offset, offset_param: offset, size_param: limit, size: 10}"
	case "cursor":
		return "{type: cursor, cursor_param: cursor, next_cursor: meta.next, size_param: per_page, size: 10}"
	case "link":
		return "{type: link, size_param: per_page, size: 10}"
	}
	return "{type: none}"
}

// cfgOpts varies the source config used by the tests.
type cfgOpts struct {
	auth        string // the auth line's value
	retry       string
	timeout     string
	incremental bool
	extra       string // extra entity keys, indented 4 spaces
	top         string // extra source keys, indented 0 spaces
}

func sourceYAML(h *helpdesk, o cfgOpts) string {
	if o.retry == "" {
		o.retry = "{max_attempts: 4, base_delay: 10ms, max_delay: 50ms}"
	}
	if o.timeout == "" {
		o.timeout = "5s"
	}
	records := "data"
	if h.style == "none" {
		records = `""`
	}
	var b strings.Builder
	fmt.Fprintf(&b, "base_url: %s\n", h.url())
	if o.auth != "" {
		fmt.Fprintf(&b, "auth: %s\n", o.auth)
	}
	fmt.Fprintf(&b, "timeout: %s\nretry: %s\n%s", o.timeout, o.retry, o.top)
	fmt.Fprintf(&b, "entities:\n  tickets:\n    path: /tickets\n    records: %s\n    pagination: %s\n", records, paginationYAML(h.style))
	if o.incremental {
		b.WriteString("    incremental: {param: updated_since, format: rfc3339, field: updated_at, overlap: 5m}\n")
	}
	b.WriteString("    fields: {ticket_id: id, customer_id: requester.external_id, created_at: created_at, resolved_at: solved_at, " +
		"status: status, priority: priority, category: type, satisfaction: satisfaction.score, updated_at: updated_at}\n")
	b.WriteString(o.extra)
	return b.String()
}

// openSource opens the httpapi source from YAML text.
func openSource(ctx context.Context, dir, yamlText string) (extract.Source, error) {
	n, err := config.Parse("cdw.yaml", []byte(yamlText))
	if err != nil {
		return nil, err
	}
	n.Path = "sources.helpdesk"
	k, err := extract.LookupKind(KindName)
	if err != nil {
		return nil, err
	}
	return k.Open(ctx, extract.SourceConfig{Name: "helpdesk", Options: n, BaseDir: dir})
}

// runExtract runs one incremental extract of tickets into the warehouse dir.
func runExtract(ctx context.Context, x *extract.Extractor, yamlText string) (extract.Result, error) {
	src, err := openSource(ctx, x.Dir, yamlText)
	if err != nil {
		return extract.Result{}, err
	}
	defer src.Close()
	return x.Extract(ctx, "helpdesk", src, "tickets", false)
}

// rawRow is a ticket read back from raw Parquet.
type rawRow struct {
	ID, Customer, Status string
	Created              time.Time
	Resolved             sql.NullTime
	Satisfaction         sql.NullInt64
	Updated              time.Time
}

// committedState loads the committed state of helpdesk.tickets.
func committedState(t *testing.T, dir string) *extract.EntityState {
	t.Helper()
	st, err := extract.StateStore{Dir: dir}.Load("helpdesk", "tickets")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func fileList(dir string, files []extract.RawFile) string {
	var paths []string
	for _, f := range files {
		paths = append(paths, duck.Literal(filepath.Join(dir, f.Path)))
	}
	return "[" + strings.Join(paths, ", ") + "]"
}

// readRaw reads every committed raw file of helpdesk.tickets with DuckDB.
func readRaw(t *testing.T, dir string) []rawRow {
	t.Helper()
	st := committedState(t, dir)
	if len(st.Files) == 0 {
		return nil
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT ticket_id, coalesce(customer_id, ''), coalesce(status, ''), created_at, resolved_at, satisfaction, updated_at
		FROM read_parquet(` + fileList(dir, st.Files) + `) ORDER BY ticket_id::BIGINT, updated_at`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []rawRow
	for rows.Next() {
		var r rawRow
		if err := rows.Scan(&r.ID, &r.Customer, &r.Status, &r.Created, &r.Resolved, &r.Satisfaction, &r.Updated); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

type quarantined struct {
	File, Reason, Raw string
	Line              int64
}

func readQuarantine(t *testing.T, dir string) []quarantined {
	t.Helper()
	st := committedState(t, dir)
	if len(st.Quarantine) == 0 {
		return nil
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT file, line, reason, raw FROM read_parquet(` + fileList(dir, st.Quarantine) + `) ORDER BY file, line`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []quarantined
	for rows.Next() {
		var q quarantined
		if err := rows.Scan(&q.File, &q.Line, &q.Reason, &q.Raw); err != nil {
			t.Fatal(err)
		}
		out = append(out, q)
	}
	return out
}

// assertExactlyOnce checks raw holds each wanted ticket id exactly once.
func assertExactlyOnce(t *testing.T, rows []rawRow, want []int) {
	t.Helper()
	count := map[string]int{}
	for _, r := range rows {
		count[r.ID]++
	}
	for _, id := range want {
		if c := count[strconv.Itoa(id)]; c != 1 {
			t.Errorf("ticket %d is in raw %d times, want once", id, c)
		}
		delete(count, strconv.Itoa(id))
	}
	for id, c := range count {
		t.Errorf("unexpected ticket %s in raw (%d times)", id, c)
	}
}

func ids(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func decodeCursor(t *testing.T, st *extract.EntityState) checkpoint {
	t.Helper()
	cp, err := decodeCheckpoint(st.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}
