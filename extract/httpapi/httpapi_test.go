package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdwhq/cdw/extract"
)

// captureLogs sends slog output (debug and up) to a buffer for the test.
func captureLogs(t *testing.T) *syncBuffer {
	t.Helper()
	buf := &syncBuffer{}
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })
	return buf
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newExtractor(t *testing.T) *extract.Extractor {
	return &extract.Extractor{Dir: t.TempDir(), Log: slog.Default()}
}

func TestPaginationStylesLoadEveryRecordOnce(t *testing.T) {
	for _, style := range []string{"page", "offset", "cursor", "link", "none"} {
		for _, n := range []int{53, 50, 0} {
			t.Run(fmt.Sprintf("%s/%d", style, n), func(t *testing.T) {
				ctx := context.Background()
				h := newHelpdesk(t, style, n)
				x := newExtractor(t)
				res, err := runExtract(ctx, x, sourceYAML(h, cfgOpts{}))
				if err != nil {
					t.Fatal(err)
				}
				if res.Rows != int64(n) || res.Rejected != 0 {
					t.Fatalf("result: %d rows, %d rejected; want %d, 0; quarantine: %+v", res.Rows, res.Rejected, n, readQuarantine(t, x.Dir))
				}
				rows := readRaw(t, x.Dir)
				assertExactlyOnce(t, rows, ids(1, n))

				// Every page requested once, in order; a full last page
				// costs one more (empty) request for page and offset only.
				pages := (n + 9) / 10
				if n%10 == 0 && (style == "page" || style == "offset") {
					pages++
				}
				if style == "none" || pages == 0 {
					pages = 1
				}
				if got := h.pages(); !slices.Equal(got, ids(1, pages)) {
					t.Errorf("pages requested %v, want %v", got, ids(1, pages))
				}
				// The run is complete: the cursor holds no position.
				if cp := decodeCursor(t, committedState(t, x.Dir)); cp.Next != nil {
					t.Errorf("completed run left position %+v in the cursor", *cp.Next)
				}
				// Values are converted to the canonical types.
				if n > 0 && len(rows) == n {
					r := rows[2] // ticket 3: resolved, rated
					if r.ID != "3" || r.Customer != "C003" || r.Status != "resolved" || !r.Resolved.Valid ||
						!r.Satisfaction.Valid || r.Satisfaction.Int64 != 4 ||
						!r.Updated.Equal(baseTime.Add(3*time.Minute)) || !r.Created.Equal(baseTime.Add(-24*time.Hour+3*time.Minute)) {
						t.Errorf("ticket 3 read back as %+v", r)
					}
					if rows[0].Resolved.Valid || rows[0].Satisfaction.Valid {
						t.Errorf("ticket 1 should have null resolved_at and satisfaction: %+v", rows[0])
					}
				}
			})
		}
	}
}

func TestTransientFaultsAreRetried(t *testing.T) {
	ctx := context.Background()
	logs := captureLogs(t)
	h := newHelpdesk(t, "page", 53, func(h *helpdesk) {
		h.faults[2] = []fault{failWith(500, ""), failWith(502, "")}
		h.faults[3] = []fault{dropMidBody}
		h.faults[4] = []fault{invalidJSON}
		h.faults[5] = []fault{slow(3 * time.Second)}
		h.faults[6] = []fault{failWith(503, "0")}
	})
	x := newExtractor(t)
	res, err := runExtract(ctx, x, sourceYAML(h, cfgOpts{timeout: "400ms"}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 53 {
		t.Errorf("rows = %d, want 53", res.Rows)
	}
	assertExactlyOnce(t, readRaw(t, x.Dir), ids(1, 53))
	want := []int{1, 2, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6}
	if got := h.pages(); !slices.Equal(got, want) {
		t.Errorf("pages requested %v, want %v", got, want)
	}
	out := logs.String()
	for _, s := range []string{"status=500", "status=502", "unexpected EOF", "decoding JSON", "timed out after 400ms", "status=503"} {
		if !strings.Contains(out, s) {
			t.Errorf("retry log lacks %q:\n%s", s, out)
		}
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    fault
	}{
		{"seconds", failWith(http.StatusTooManyRequests, "1")},
		{"http-date", retryAfterDate(time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHelpdesk(t, "cursor", 25, func(h *helpdesk) {
				h.faults[2] = []fault{tc.f}
			})
			x := newExtractor(t)
			// base_delay is tiny, so a wait near 1s can only come from Retry-After.
			if _, err := runExtract(context.Background(), x, sourceYAML(h, cfgOpts{})); err != nil {
				t.Fatal(err)
			}
			var at []time.Time
			for _, r := range h.served() {
				if r.Page == 2 {
					at = append(at, r.At)
				}
			}
			if len(at) != 2 {
				t.Fatalf("page 2 requested %d times, want 2", len(at))
			}
			gap := at[1].Sub(at[0])
			if gap < 950*time.Millisecond || gap > 1800*time.Millisecond {
				t.Errorf("retried after %s, want about 1s", gap)
			}
			assertExactlyOnce(t, readRaw(t, x.Dir), ids(1, 25))
		})
	}
}

func TestRetryAfterBeyondLimitFails(t *testing.T) {
	h := newHelpdesk(t, "page", 25, func(h *helpdesk) {
		h.faults[1] = []fault{failWith(http.StatusTooManyRequests, "3600")}
	})
	x := newExtractor(t)
	start := time.Now()
	_, err := runExtract(context.Background(), x, sourceYAML(h, cfgOpts{}))
	if err == nil || !strings.Contains(err.Error(), "retry after 1h0m0s, more than retry.max_retry_after") {
		t.Fatalf("err = %v, want a max_retry_after error", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("gave up after %s; it should not wait", el)
	}
}

func TestRetryBudgetExhaustedLeavesStateUnchanged(t *testing.T) {
	ctx := context.Background()
	h := newHelpdesk(t, "page", 25)
	x := newExtractor(t)
	cfg := sourceYAML(h, cfgOpts{incremental: true})
	if _, err := runExtract(ctx, x, cfg); err != nil {
		t.Fatal(err)
	}
	statePath := filepath.Join(x.Dir, "state", "extract", "helpdesk", "tickets.json")
	before, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	filesBefore := listFiles(t, x.Dir)

	h.reset()
	h.set(func(h *helpdesk) { h.always[1] = failWith(503, "") })
	_, err = runExtract(ctx, x, cfg)
	if err == nil {
		t.Fatal("extract succeeded against a server that always answers 503")
	}
	if !errors.Is(err, ErrRetriesExhausted) {
		t.Errorf("error does not wrap ErrRetriesExhausted: %v", err)
	}
	var fe *FetchError
	if !errors.As(err, &fe) || fe.Status != 503 || fe.Attempts != 4 {
		t.Errorf("error is not a FetchError with status 503 after 4 attempts: %#v", fe)
	}
	msg := err.Error()
	t.Log(msg)
	for _, s := range []string{"source helpdesk", "tickets page 1", "giving up after 4 attempts", "last status 503 Service Unavailable", "updated_since="} {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q lacks %q", msg, s)
		}
	}
	if got := h.pages(); !slices.Equal(got, []int{1, 1, 1, 1}) {
		t.Errorf("requests %v, want page 1 four times", got)
	}
	after, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("state changed by a failed run:\nbefore %s\nafter  %s", before, after)
	}
	if got := listFiles(t, x.Dir); !slices.Equal(got, filesBefore) {
		t.Errorf("files changed by a failed run:\nbefore %v\nafter  %v", filesBefore, got)
	}
}

func TestFailureMidRunResumesAtFailedPage(t *testing.T) {
	ctx := context.Background()
	h := newHelpdesk(t, "cursor", 53, func(h *helpdesk) {
		h.always[4] = failWith(500, "")
	})
	x := newExtractor(t)
	cfg := sourceYAML(h, cfgOpts{incremental: true})
	_, err := runExtract(ctx, x, cfg)
	if err == nil || !strings.Contains(err.Error(), "tickets page 4") {
		t.Fatalf("err = %v, want a failure on page 4", err)
	}
	st := committedState(t, x.Dir)
	cp := decodeCursor(t, st)
	if cp.Next == nil || cp.Next.Page != 4 || cp.Next.Token != "c30" {
		t.Fatalf("committed position %+v, want page 4 with token c30", cp.Next)
	}
	assertExactlyOnce(t, readRaw(t, x.Dir), ids(1, 30))

	h.reset()
	h.set(func(h *helpdesk) { delete(h.always, 4) })
	if _, err := runExtract(ctx, x, cfg); err != nil {
		t.Fatal(err)
	}
	if got := h.pages(); !slices.Equal(got, []int{4, 5, 6}) {
		t.Errorf("rerun requested pages %v, want [4 5 6]", got)
	}
	assertExactlyOnce(t, readRaw(t, x.Dir), ids(1, 53))
	if cp := decodeCursor(t, committedState(t, x.Dir)); cp.Next != nil || cp.HighWater == nil || !cp.HighWater.Equal(baseTime.Add(53*time.Minute)) {
		t.Errorf("final cursor %+v, want no position and high water at ticket 53", cp)
	}
}

func TestIncrementalRunFetchesOnlyChanges(t *testing.T) {
	ctx := context.Background()
	h := newHelpdesk(t, "page", 45)
	x := newExtractor(t)
	cfg := sourceYAML(h, cfgOpts{incremental: true})
	if _, err := runExtract(ctx, x, cfg); err != nil {
		t.Fatal(err)
	}
	for _, r := range h.served() {
		if r.Query.Has("updated_since") {
			t.Errorf("first run sent updated_since=%s", r.Query.Get("updated_since"))
		}
	}
	high := baseTime.Add(45 * time.Minute)

	// Change three tickets and add two; ticket 43 lies within the 5m overlap.
	h.reset()
	later := high.Add(time.Hour)
	h.set(func(h *helpdesk) {
		for _, id := range []int{7, 20, 33} {
			h.tickets[id-1].Status, h.tickets[id-1].Updated = "closed", later
		}
		nt := newTickets(47)
		for _, tk := range nt[45:] {
			tk.Updated = later.Add(time.Minute)
			h.tickets = append(h.tickets, tk)
		}
	})
	res, err := runExtract(ctx, x, cfg)
	if err != nil {
		t.Fatal(err)
	}
	wantSince := high.Add(-5 * time.Minute).Format(time.RFC3339)
	for _, r := range h.served() {
		if got := r.Query.Get("updated_since"); got != wantSince {
			t.Errorf("second run sent updated_since=%q, want %q", got, wantSince)
		}
	}
	// Changed: 7, 20, 33, 46, 47; overlap (updated in the last 5 minutes): 40..45.
	fetched := []int{7, 20, 33, 40, 41, 42, 43, 44, 45, 46, 47}
	if res.Rows != int64(len(fetched)) {
		t.Errorf("second run loaded %d rows, want %d", res.Rows, len(fetched))
	}
	rows := readRaw(t, x.Dir)
	latest := map[string]rawRow{}
	count := map[string]int{}
	for _, r := range rows {
		count[r.ID]++
		if r.Updated.After(latest[r.ID].Updated) {
			latest[r.ID] = r
		}
	}
	for id := 1; id <= 47; id++ {
		want := 1
		if slices.Contains(fetched, id) && id <= 45 {
			want = 2
		}
		if c := count[fmt.Sprint(id)]; c != want {
			t.Errorf("ticket %d in raw %d times, want %d", id, c, want)
		}
	}
	for _, id := range []string{"7", "20", "33"} {
		if latest[id].Status != "closed" {
			t.Errorf("latest version of ticket %s has status %q, want closed", id, latest[id].Status)
		}
	}
	if cp := decodeCursor(t, committedState(t, x.Dir)); cp.HighWater == nil || !cp.HighWater.Equal(later.Add(time.Minute)) {
		t.Errorf("high water %v, want %v", cp.HighWater, later.Add(time.Minute))
	}

	// A third run with no changes refetches only the overlap window.
	h.reset()
	res, err = runExtract(ctx, x, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// High water is ticket 47's time; the overlap reaches back to 7, 20, 33.
	if res.Rows != 5 {
		t.Errorf("unchanged run loaded %d rows, want the 5 in the overlap window", res.Rows)
	}
}

func TestHighWaterNeverPassesRunStart(t *testing.T) {
	future := time.Now().UTC().Add(48 * time.Hour).Truncate(time.Second)
	h := newHelpdesk(t, "page", 12, func(h *helpdesk) {
		h.tickets[5].Updated = future // a clock-skewed row from the future
	})
	x := newExtractor(t)
	before := time.Now().UTC().Add(-2 * time.Second)
	if _, err := runExtract(context.Background(), x, sourceYAML(h, cfgOpts{incremental: true})); err != nil {
		t.Fatal(err)
	}
	cp := decodeCursor(t, committedState(t, x.Dir))
	if cp.HighWater == nil || cp.HighWater.After(time.Now()) || cp.HighWater.Before(before) {
		t.Errorf("high water %v, want the run's start (server Date), not the future row's %v", cp.HighWater, future)
	}
}

func TestRejectedRecordsGoToQuarantine(t *testing.T) {
	h := newHelpdesk(t, "page", 30, func(h *helpdesk) {
		h.tickets[11].Override = map[string]any{"id": 12, "created_at": "yesterday", "updated_at": "2025-03-01T00:12:00Z"}
		h.tickets[14].Override = map[string]any{"created_at": "2025-03-01T00:15:00Z", "status": "open"}
		h.tickets[26].Override = map[string]any{"id": 27, "created_at": "2025-03-01T00:27:00Z", "satisfaction": map[string]any{"score": "great"}}
	})
	x := newExtractor(t)
	res, err := runExtract(context.Background(), x, sourceYAML(h, cfgOpts{}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 27 || res.Rejected != 3 {
		t.Errorf("%d rows, %d rejected; want 27, 3", res.Rows, res.Rejected)
	}
	want := slices.DeleteFunc(ids(1, 30), func(i int) bool { return i == 12 || i == 15 || i == 27 })
	assertExactlyOnce(t, readRaw(t, x.Dir), want)
	q := readQuarantine(t, x.Dir)
	if len(q) != 3 {
		t.Fatalf("quarantine has %d rows, want 3: %+v", len(q), q)
	}
	for i, w := range []struct {
		page   string
		line   int64
		reason string
		raw    string
	}{
		{"page=2", 2, `column created_at (from created_at): expected an RFC 3339 timestamp, found "yesterday"`, `"yesterday"`},
		{"page=2", 5, "column ticket_id (from id): required value is missing", `"status":"open"`},
		{"page=3", 7, `column satisfaction (from satisfaction.score): expected an integer, found "great"`, `"great"`},
	} {
		g := q[i]
		if !strings.Contains(g.File, h.srv.URL+"/api/tickets?") || !strings.Contains(g.File, w.page) || g.Line != w.line ||
			g.Reason != w.reason || !strings.Contains(g.Raw, w.raw) {
			t.Errorf("quarantine row %d = %+v, want %s line %d reason %q", i, g, w.page, w.line, w.reason)
		}
	}
}

func TestAuthIsSentAndNeverLeaks(t *testing.T) {
	const token, key = "tok-9f8e7d6c5b4a3", "key-0a1b2c3d4e5f"
	t.Setenv("CDW_TEST_HELPDESK_TOKEN", token)
	t.Setenv("CDW_TEST_HELPDESK_KEY", key)
	logs := captureLogs(t)
	ctx := context.Background()
	h := newHelpdesk(t, "link", 35, func(h *helpdesk) {
		h.auth = func(r *http.Request) bool {
			return r.Header.Get("Authorization") == "Bearer "+token && r.URL.Query().Get("api_key") == key
		}
		h.faults[2] = []fault{failWith(500, "")}
		h.faults[3] = []fault{dropMidBody}
		h.tickets[21].Override = map[string]any{"id": 22, "created_at": "not a time"}
	})
	x := newExtractor(t)
	cfg := sourceYAML(h, cfgOpts{
		auth: "{type: bearer, token_env: CDW_TEST_HELPDESK_TOKEN}",
		top:  "params_env: {api_key: CDW_TEST_HELPDESK_KEY}\n",
	})
	res, err := runExtract(ctx, x, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 34 || res.Rejected != 1 {
		t.Errorf("%d rows, %d rejected; want 34, 1", res.Rows, res.Rejected)
	}
	for _, r := range h.served() {
		if got := r.Header.Get("Authorization"); got != "Bearer "+token {
			t.Errorf("page %d sent Authorization %q", r.Page, got)
		}
	}
	// A server that echoes the credentials in its error body.
	h.set(func(h *helpdesk) {
		h.auth = nil
		h.always[1] = func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "backend down; request had "+r.Header.Get("Authorization")+" key="+r.URL.Query().Get("api_key"), 502)
		}
	})
	_, runErr := runExtract(ctx, x, cfg)
	if runErr == nil {
		t.Fatal("extract succeeded against a failing server")
	}
	if !strings.Contains(runErr.Error(), "api_key=REDACTED") || !strings.Contains(runErr.Error(), "Bearer REDACTED") {
		t.Errorf("error does not show the redacted request: %v", runErr)
	}

	q := readQuarantine(t, x.Dir)
	if len(q) != 1 || !strings.Contains(q[0].File, "api_key=REDACTED") {
		t.Errorf("quarantine rows %+v, want one with a redacted file URL", q)
	}
	state, err := os.ReadFile(filepath.Join(x.Dir, "state", "extract", "helpdesk", "tickets.json"))
	if err != nil {
		t.Fatal(err)
	}
	places := map[string]string{"error": runErr.Error(), "logs": logs.String(), "quarantine": fmt.Sprint(q), "state": string(state)}
	if !strings.Contains(places["logs"], "retrying request") {
		t.Errorf("no retry was logged:\n%s", places["logs"])
	}
	for where, text := range places {
		for _, secret := range []string{token, key} {
			if strings.Contains(text, secret) {
				t.Errorf("%s contains the secret %q:\n%s", where, secret, text)
			}
		}
	}
}

func TestBasicAuth(t *testing.T) {
	t.Setenv("CDW_TEST_USER", "etl")
	t.Setenv("CDW_TEST_PASS", "p4ss-w0rd-xyz")
	h := newHelpdesk(t, "offset", 15, func(h *helpdesk) {
		h.auth = func(r *http.Request) bool {
			u, p, ok := r.BasicAuth()
			return ok && u == "etl" && p == "p4ss-w0rd-xyz"
		}
	})
	cfg := sourceYAML(h, cfgOpts{auth: "{type: basic, username_env: CDW_TEST_USER, password_env: CDW_TEST_PASS}"})
	x := newExtractor(t)
	if _, err := runExtract(context.Background(), x, cfg); err != nil {
		t.Fatal(err)
	}
	assertExactlyOnce(t, readRaw(t, x.Dir), ids(1, 15))

	// A wrong password is not retried, and the error does not echo it.
	t.Setenv("CDW_TEST_PASS", "wrong-pass-123")
	h.reset()
	_, err := runExtract(context.Background(), newExtractor(t), cfg)
	if err == nil || !strings.Contains(err.Error(), "status 401 Unauthorized") {
		t.Fatalf("err = %v, want status 401", err)
	}
	if strings.Contains(err.Error(), "wrong-pass-123") || strings.Contains(err.Error(), "ZXRsOndyb25nLXBhc3MtMTIz") {
		t.Errorf("error leaks the password: %v", err)
	}
	if got := h.pages(); len(got) != 1 {
		t.Errorf("401 was requested %d times, want once (no retry)", len(got))
	}
}

func TestRepeatingPagesStop(t *testing.T) {
	for _, tc := range []struct{ style, repeat string }{
		{"page", "ignore-page"},
		{"cursor", "cursor-loop"},
		{"link", "link-self"},
	} {
		t.Run(tc.repeat, func(t *testing.T) {
			h := newHelpdesk(t, tc.style, 53, func(h *helpdesk) {
				h.repeat = tc.repeat
			})
			x := newExtractor(t)
			done := make(chan error, 1)
			go func() {
				_, err := runExtract(context.Background(), x, sourceYAML(h, cfgOpts{}))
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, ErrRepeatedPage) {
					t.Fatalf("err = %v, want ErrRepeatedPage", err)
				}
				t.Log(err)
			case <-time.After(3 * time.Minute):
				t.Fatal("extract did not stop on a repeating page")
			}
			if n := len(h.pages()); n > 3 {
				t.Errorf("%d pages requested before stopping, want at most 3", n)
			}
		})
	}
}

func TestCountUsesTotalWithoutExtraRequest(t *testing.T) {
	h := newHelpdesk(t, "page", 53)
	cfg := sourceYAML(h, cfgOpts{extra: "    total: meta.total\n"})
	x := newExtractor(t)
	var out syncBuffer
	x.Progress = &extract.Progress{Out: &out}
	if _, err := runExtract(context.Background(), x, cfg); err != nil {
		t.Fatal(err)
	}
	if got := h.pages(); !slices.Equal(got, ids(1, 6)) {
		t.Errorf("pages requested %v, want each of 1..6 once", got)
	}
	if !strings.Contains(out.String(), "100.0%") {
		t.Errorf("progress did not use the total: %q", out.String())
	}

	src, err := openSource(context.Background(), x.Dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ent, _ := extract.LookupEntity("tickets")
	n, err := src.(extract.Counter).Count(context.Background(), extract.ReadRequest{Entity: ent})
	if err != nil || n != 53 {
		t.Errorf("Count = %d, %v; want 53", n, err)
	}
}

func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCheckpointEveryAndBatchSplitting(t *testing.T) {
	for _, tc := range []struct {
		every, batchRows, wantFiles int
	}{
		{1, 0, 6}, // a file per page
		{2, 0, 3}, // pages 2, 4 and the last
		{1, 4, 6}, // pages of 10 split into records of 4, 4, 2: still one file per page
	} {
		t.Run(fmt.Sprintf("every%d/batch%d", tc.every, tc.batchRows), func(t *testing.T) {
			h := newHelpdesk(t, "offset", 53)
			x := newExtractor(t)
			x.BatchRows = tc.batchRows
			cfg := sourceYAML(h, cfgOpts{extra: fmt.Sprintf("    checkpoint_every: %d\n", tc.every)})
			if _, err := runExtract(context.Background(), x, cfg); err != nil {
				t.Fatal(err)
			}
			if st := committedState(t, x.Dir); len(st.Files) != tc.wantFiles || st.Rows != 53 {
				t.Errorf("%d files with %d rows, want %d files with 53 rows", len(st.Files), st.Rows, tc.wantFiles)
			}
			assertExactlyOnce(t, readRaw(t, x.Dir), ids(1, 53))
		})
	}
}
