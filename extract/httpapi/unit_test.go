package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/cdwhq/cdw/extract"
)

func readRequest(t testing.TB, entity string) extract.ReadRequest {
	ent, err := extract.LookupEntity(entity)
	if err != nil {
		t.Fatal(err)
	}
	return extract.ReadRequest{Entity: ent, BatchRows: 1000}
}

func TestNextLink(t *testing.T) {
	for _, tc := range []struct {
		header []string
		want   string
	}{
		{nil, ""},
		{[]string{`<https://api.x/t?page=2>; rel="next"`}, "https://api.x/t?page=2"},
		{[]string{`<https://api.x/t?page=1>; rel="prev", <https://api.x/t?page=3>; rel="next"`}, "https://api.x/t?page=3"},
		{[]string{`<https://api.x/t?page=9>; rel=last`, `</t?after=a,b>; rel="next last"`}, "/t?after=a,b"},
		{[]string{`<https://api.x/t?page=9>; title="a, rel=next"; rel="last"`}, ""},
		{[]string{`<https://api.x/t?p=2>; REL=NEXT`}, "https://api.x/t?p=2"},
		{[]string{`garbage; rel="next"`}, ""},
	} {
		h := http.Header{}
		for _, v := range tc.header {
			h.Add("Link", v)
		}
		if got := nextLink(h); got != tc.want {
			t.Errorf("nextLink(%q) = %q, want %q", tc.header, got, tc.want)
		}
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		retryAfter, date string
		want             time.Duration
	}{
		{"", "", 0},
		{"2", "", 2 * time.Second},
		{"0", "", 0},
		{"-5", "", 0},
		{"soon", "", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), "", 90 * time.Second},
		// The server's Date wins over the local clock.
		{now.Add(90 * time.Second).Format(http.TimeFormat), now.Add(60 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), "", 0},
	} {
		h := http.Header{}
		if tc.retryAfter != "" {
			h.Set("Retry-After", tc.retryAfter)
		}
		if tc.date != "" {
			h.Set("Date", tc.date)
		}
		if got := retryAfter(h, now); got != tc.want {
			t.Errorf("retryAfter(%q, date %q) = %s, want %s", tc.retryAfter, tc.date, got, tc.want)
		}
	}
}

func TestBackoffGrowsWithJitterAndCap(t *testing.T) {
	c := &client{spec: &spec{retry: retryOptions{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}}}
	for attempt, full := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 5: time.Second, 40: time.Second} {
		for range 50 {
			if d := c.backoff(attempt); d < full/2 || d > full {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", attempt, d, full/2, full)
			}
		}
	}
}

func TestConvertValues(t *testing.T) {
	m := &mapper{layouts: []string{"2006-01-02 15:04:05", "02.01.2006"}, epoch: "seconds"}
	ms := &mapper{epoch: "millis"}
	ts := func(s string) time.Time { t, _ := time.Parse(time.RFC3339Nano, s); return t }
	for _, tc := range []struct {
		m    *mapper
		typ  extract.Type
		in   string // JSON
		want value
		err  string
	}{
		{m, extract.String, `"abc"`, value{s: "abc"}, ""},
		{m, extract.String, `12345678901234567890`, value{s: "12345678901234567890"}, ""},
		{m, extract.String, `true`, value{s: "true"}, ""},
		{m, extract.String, `""`, value{s: ""}, ""},
		{m, extract.String, `null`, value{null: true}, ""},
		{m, extract.String, `{"a":1}`, value{}, `expected a string, found {"a":1}`},
		{m, extract.Int, `42`, value{i: 42}, ""},
		{m, extract.Int, `"42"`, value{i: 42}, ""},
		{m, extract.Int, `4.0`, value{i: 4}, ""},
		{m, extract.Int, `4.5`, value{}, "expected an integer, found 4.5"},
		{m, extract.Int, `""`, value{null: true}, ""},
		{m, extract.Int, `"great"`, value{}, `expected an integer, found "great"`},
		{m, extract.Float, `19.99`, value{f: 19.99}, ""},
		{m, extract.Float, `"1e3"`, value{f: 1000}, ""},
		{m, extract.Float, `[1]`, value{}, "expected a number, found [1]"},
		{m, extract.Bool, `true`, value{b: true}, ""},
		{m, extract.Bool, `"false"`, value{b: false}, ""},
		{m, extract.Bool, `1`, value{b: true}, ""},
		{m, extract.Bool, `"yes"`, value{}, `expected a boolean, found "yes"`},
		{m, extract.Timestamp, `"2025-03-01T10:00:00+02:00"`, value{t: ts("2025-03-01T08:00:00Z")}, ""},
		{m, extract.Timestamp, `"2025-03-01T10:00:00.123456Z"`, value{t: ts("2025-03-01T10:00:00.123456Z")}, ""},
		{m, extract.Timestamp, `"2025-03-01 10:00:00"`, value{t: ts("2025-03-01T10:00:00Z")}, ""},
		{m, extract.Timestamp, `"01.03.2025"`, value{t: ts("2025-03-01T00:00:00Z")}, ""},
		{m, extract.Timestamp, `1740823200`, value{t: ts("2025-03-01T10:00:00Z")}, ""},
		{m, extract.Timestamp, `"1740823200.5"`, value{t: ts("2025-03-01T10:00:00.5Z")}, ""},
		{ms, extract.Timestamp, `1740823200123`, value{t: ts("2025-03-01T10:00:00.123Z")}, ""},
		{&mapper{}, extract.Timestamp, `1740823200`, value{}, "set epoch: seconds or millis"},
		{m, extract.Timestamp, `"next tuesday"`, value{}, `expected an RFC 3339 timestamp or one of timestamp_layouts, found "next tuesday"`},
		{m, extract.Timestamp, `1e300`, value{}, "within years 1 to 9999"},
	} {
		raw := jsonValue(tc.in)
		got, err := tc.m.convert(&column{typ: tc.typ}, raw)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s %s: err = %v, want %q", tc.typ, tc.in, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s %s: %v", tc.typ, tc.in, err)
		case got.null != tc.want.null || got.s != tc.want.s || got.i != tc.want.i || got.f != tc.want.f || got.b != tc.want.b || !got.t.Equal(tc.want.t):
			t.Errorf("%s %s = %+v, want %+v", tc.typ, tc.in, got, tc.want)
		}
	}
}

// jsonValue decodes text as pages are decoded (numbers kept exact).
func jsonValue(text string) any {
	v, err := decodeJSON([]byte(text))
	if err != nil {
		panic(err)
	}
	return v
}

func TestPassthroughKeepsAnyJSON(t *testing.T) {
	m := &mapper{}
	for in, want := range map[string]string{`"x"`: "x", `[1,"a"]`: `[1,"a"]`, `{"b":2,"a":1}`: `{"a":1,"b":2}`, `3.10`: "3.10"} {
		got, err := m.convert(&column{typ: extract.String, passthrough: true}, jsonValue(in))
		if err != nil || got.s != want {
			t.Errorf("passthrough %s = %q, %v; want %q", in, got.s, err, want)
		}
	}
}

func TestRedactor(t *testing.T) {
	r := newRedactor()
	r.addParam("API_KEY")
	r.addParam("signature")
	r.addValue("s3cr3t+/=")
	u, _ := url.Parse("https://user:pw@api.x/t?api_key=abc&page=2&Signature=zz&note=s3cr3t%2B%2F%3D")
	got := r.URL(u)
	for _, bad := range []string{"abc", "zz", "user", "pw", "s3cr3t"} {
		if strings.Contains(got, bad) {
			t.Errorf("URL(%s) = %s still contains %q", u, got, bad)
		}
	}
	if !strings.Contains(got, "page=2") || !strings.Contains(got, "api_key=REDACTED") {
		t.Errorf("URL = %s, want page kept and api_key redacted", got)
	}
	err := r.Error(fmt.Errorf("wrapped: %w", fmt.Errorf("server said s3cr3t+/=")))
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("Error kept the secret: %v", err)
	}
}

func TestFormatSince(t *testing.T) {
	at := time.Date(2025, 3, 1, 10, 0, 0, 999_000_000, time.FixedZone("CET", 3600))
	for format, want := range map[string]string{
		"rfc3339":             "2025-03-01T09:00:00Z",
		"unix":                "1740819600",
		"unix_ms":             "1740819600999",
		"2006-01-02 15:04:05": "2025-03-01 09:00:00",
	} {
		if got := formatSince(at, format); got != want {
			t.Errorf("formatSince(%s) = %q, want %q", format, got, want)
		}
	}
}

func TestPageRecords(t *testing.T) {
	for _, tc := range []struct {
		body, path string
		n          int
		err        string
	}{
		{`[{"a":1},{"a":2}]`, "", 2, ""},
		{`{"data":{"items":[{"a":1}]}}`, "data.items", 1, ""},
		{`{"data":null}`, "data", 0, ""},
		{`{"error":"nope","message":"x"}`, "data", 0, "records path data not found in the response (top-level keys: error, message)"},
		{`{"data":{"a":1}}`, "data", 0, "records path data is an object, expected an array"},
		{`{"data":[]}`, "", 0, "expected a JSON array of records at the top level, found an object (top-level keys: data)"},
	} {
		doc, err := decodeJSON([]byte(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		recs, err := pageRecords(doc, splitPath(tc.path))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s at %q: err = %v, want %q", tc.body, tc.path, err, tc.err)
			}
			continue
		}
		if err != nil || len(recs) != tc.n {
			t.Errorf("%s at %q: %d records, %v; want %d", tc.body, tc.path, len(recs), err, tc.n)
		}
	}
}

func TestDecodeJSONRejectsTrailingData(t *testing.T) {
	for _, body := range []string{`{"a":1}{"b":2}`, `{"a":1`, `[1,]`, ``} {
		if _, err := decodeJSON([]byte(body)); err == nil {
			t.Errorf("decodeJSON(%q) accepted invalid JSON", body)
		}
	}
}

// BenchmarkMapPage measures decoding one page of 1000 tickets and mapping it
// to an Arrow record: the CPU cost per page, network aside.
func BenchmarkMapPage(b *testing.B) {
	tickets := newTickets(1000)
	recs := make([]map[string]any, len(tickets))
	for i, t := range tickets {
		recs[i] = t.json()
	}
	body, _ := json.Marshal(map[string]any{"data": recs})
	src, err := openSource(b.Context(), b.TempDir(), `base_url: http://127.0.0.1:1/api
entities:
  tickets:
    path: /tickets
    records: data
    fields: {ticket_id: id, customer_id: requester.external_id, created_at: created_at, resolved_at: solved_at, status: status, priority: priority, category: type, satisfaction: satisfaction.score, updated_at: updated_at}
`)
	if err != nil {
		b.Fatal(err)
	}
	m := src.(*Source).spec.entities[0].mapper
	rb := newRowBuilder(m, memory.DefaultAllocator)
	defer rb.release()
	vals := make([]value, len(m.cols))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		doc, err := decodeJSON(body)
		if err != nil {
			b.Fatal(err)
		}
		records, _ := pageRecords(doc, []string{"data"})
		for _, rec := range records {
			if err := m.mapRecord(rec, vals); err != nil {
				b.Fatal(err)
			}
			rb.append(vals)
		}
		rec := rb.flush()
		if rec.NumRows() != 1000 {
			b.Fatal("short record")
		}
		rec.Release()
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "records/s")
}
