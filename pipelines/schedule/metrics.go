package schedule

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/pipelines"
)

// metrics holds what /metrics exposes, written in the Prometheus text
// format by hand (no client library needed for a handful of series).
type metrics struct {
	cfg     *pipelines.Config
	now     func() time.Time
	started time.Time

	mu        sync.Mutex
	runs      map[[2]string]int64 // pipeline, status
	duration  map[string]float64  // pipeline → last run seconds
	lastOK    map[string]time.Time
	rowsTotal map[[2]string]int64 // source, entity
	newest    map[string]time.Time
	last      map[string]pipelines.RunRecord // last finished run per pipeline, for /healthz
	failures  map[string]int                 // failed runs in a row per pipeline
	slots     map[[2]string]extract.Result   // source, entity → its last read from a replication slot
}

func newMetrics(cfg *pipelines.Config, now func() time.Time) *metrics {
	return &metrics{cfg: cfg, now: now, started: now(), runs: map[[2]string]int64{}, duration: map[string]float64{},
		lastOK: map[string]time.Time{}, rowsTotal: map[[2]string]int64{}, newest: map[string]time.Time{},
		last: map[string]pipelines.RunRecord{}, failures: map[string]int{}, slots: map[[2]string]extract.Result{}}
}

// slot records the WAL a replication slot held back (postgres mode: cdc).
func (m *metrics) slot(r extract.Result) {
	if r.Slot == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.slots[[2]string{r.Source, r.Entity}] = r
}

// outcome records how a due run ended, after its retries.
func (m *metrics) outcome(r pipelines.RunRecord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last[r.Pipeline] = r
	if r.Status == "success" {
		m.failures[r.Pipeline] = 0
	} else {
		m.failures[r.Pipeline]++
	}
}

// seed starts /healthz from the run history, so a restarted cdw serve still
// knows the last run of each pipeline and how many failed in a row.
func (m *metrics) seed(recs []pipelines.RunRecord, names []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, name := range names {
		streak := true
		for _, r := range recs { // newest first
			if r.Pipeline != name || r.Status == "skipped" || r.Status == "queued" {
				continue
			}
			if _, ok := m.last[name]; !ok {
				m.last[name] = r
			}
			if r.Status == "success" {
				if _, ok := m.lastOK[name]; !ok {
					m.lastOK[name] = r.StartedAt.Add(r.Duration)
				}
				streak = false
				break
			}
			if streak {
				m.failures[name]++
			}
		}
	}
}

func (m *metrics) run(pipeline, status string, d time.Duration, _ error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runs[[2]string{pipeline, status}]++
	if status != "skipped" && status != "queued" {
		m.duration[pipeline] = d.Seconds()
	}
	if status == "success" {
		m.lastOK[pipeline] = m.now()
	}
}

func (m *metrics) rows(source, entity string, n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rowsTotal[[2]string{source, entity}] += n
}

// refreshFreshness measures the newest row per entity of the raw layer
// the way cdw test's freshness checks do (pipelines.NewestRows).
func (m *metrics) refreshFreshness(ctx context.Context, log *slog.Logger) {
	newest, err := pipelines.NewestRows(ctx, m.cfg)
	if err != nil {
		log.Warn("measuring raw freshness", "err", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	maps.Copy(m.newest, newest)
}

func (m *metrics) handler(health func() (int, any), docs http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /docs/", docs)
	mux.Handle("GET /docs", http.RedirectHandler("/docs/", http.StatusMovedPermanently))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		code, body := health()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(body)
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m.write(w)
	})
	return mux
}

func (m *metrics) write(w http.ResponseWriter) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	head := func(name, typ, help string) { fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ) }
	head("cdw_up", "gauge", "1 while cdw serve is running.")
	b.WriteString("cdw_up 1\n")
	head("cdw_runs_total", "counter", "Pipeline run attempts by final status (success, error), and due runs skipped or queued because the last one was still going.")
	for _, k := range sortedPairs(m.runs) {
		fmt.Fprintf(&b, "cdw_runs_total{pipeline=%s,status=%s} %d\n", label(k[0]), label(k[1]), m.runs[k])
	}
	head("cdw_run_duration_seconds", "gauge", "Duration of the last run attempt of each pipeline.")
	for _, p := range slices.Sorted(maps.Keys(m.duration)) {
		fmt.Fprintf(&b, "cdw_run_duration_seconds{pipeline=%s} %g\n", label(p), m.duration[p])
	}
	head("cdw_last_success_timestamp_seconds", "gauge", "Unix time of each pipeline's last successful run.")
	for _, p := range slices.Sorted(maps.Keys(m.lastOK)) {
		fmt.Fprintf(&b, "cdw_last_success_timestamp_seconds{pipeline=%s} %d\n", label(p), m.lastOK[p].Unix())
	}
	head("cdw_rows_extracted_total", "counter", "Rows extracted since cdw serve started.")
	for _, k := range sortedPairs(m.rowsTotal) {
		fmt.Fprintf(&b, "cdw_rows_extracted_total{source=%s,entity=%s} %d\n", label(k[0]), label(k[1]), m.rowsTotal[k])
	}
	head("cdw_replication_slot_wal_bytes", "gauge", "WAL the replication slot of a mode: cdc entity held back when its last extract began; the server keeps it on disk until the slot is confirmed past it.")
	for _, k := range sortedResults(m.slots) {
		r := m.slots[k]
		fmt.Fprintf(&b, "cdw_replication_slot_wal_bytes{source=%s,entity=%s,slot=%s} %d\n", label(r.Source), label(r.Entity), label(r.Slot), r.SlotWAL)
	}
	head("cdw_replication_slot_max_wal_bytes", "gauge", "max_slot_wal of the source: above it each extract warns.")
	for _, k := range sortedResults(m.slots) {
		r := m.slots[k]
		fmt.Fprintf(&b, "cdw_replication_slot_max_wal_bytes{source=%s,entity=%s,slot=%s} %d\n", label(r.Source), label(r.Entity), label(r.Slot), r.SlotWALMax)
	}
	head("cdw_data_freshness_seconds", "gauge", "Seconds since the newest updated_at in the raw layer, per entity.")
	now := time.Now()
	for _, e := range slices.Sorted(maps.Keys(m.newest)) {
		fmt.Fprintf(&b, "cdw_data_freshness_seconds{entity=%s} %g\n", label(e), now.Sub(m.newest[e]).Seconds())
	}
	w.Write([]byte(b.String()))
}

// label quotes a label value as the exposition format wants.
func label(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

func sortedResults(m map[[2]string]extract.Result) [][2]string {
	flat := make(map[[2]string]int64, len(m))
	for k := range m {
		flat[k] = 0
	}
	return sortedPairs(flat)
}

func sortedPairs(m map[[2]string]int64) [][2]string {
	out := make([][2]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i][0] != out[j][0] {
			return out[i][0] < out[j][0]
		}
		return out[i][1] < out[j][1]
	})
	return out
}
