package schedule

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/cdwhq/cdw/extract/files" // the demo's sources
	"github.com/cdwhq/cdw/extract/sample"
	_ "github.com/cdwhq/cdw/load/duckdbfile" // the demo's publish targets
	_ "github.com/cdwhq/cdw/load/parquet"
	"github.com/cdwhq/cdw/pipelines"
	_ "github.com/cdwhq/cdw/transform/clv"      // Go models the marts need
	_ "github.com/cdwhq/cdw/transform/identity" // identity_components, which the built-in models read
)

// demo writes a small real demo warehouse into a temp dir and appends extra
// (top-level YAML: serve:, pipelines:) to its cdw.yaml, with an empty user
// models directory <dir>/models (see writeModel). It returns the dir.
func demo(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	cfgPath, _, err := pipelines.WriteDemo(dir, sample.Options{Customers: 300, Years: 2, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "models"), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("models: [models]\n" + extra); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeModel adds (or, with sql "", removes) a user model file.
func writeModel(t *testing.T, dir, name, sql string) {
	t.Helper()
	p := filepath.Join(dir, "models", name)
	if sql == "" {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.WriteFile(p, []byte(sql), 0o600); err != nil {
		t.Fatal(err)
	}
}

// slowModel is a user model that keeps DuckDB busy for a while: count over a
// generated range of the given size (about 10^9 rows per 2-4 s here).
func slowModel(rows int64) string {
	// always_rebuild: an unchanged model would be up to date on the next
	// run and keep nothing busy.
	return fmt.Sprintf("-- materialized: table\n-- always_rebuild: true\n-- description: test model that keeps the run busy\nSELECT count(*) AS n FROM range(%d) t(i) WHERE i %% 7 = 3\n", rows)
}

// newScheduler loads dir/cdw.yaml as cdw serve does.
func newScheduler(t *testing.T, dir string, log *slog.Logger) *Scheduler {
	t.Helper()
	cfg, err := pipelines.LoadConfig(filepath.Join(dir, "cdw.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ParseConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &Scheduler{Cfg: sc, Runner: &pipelines.Runner{Cfg: cfg}, Log: log}
}

// hook is a slog handler that calls on for every record (synchronously, in
// the logging goroutine) and forwards to the test log when verbose.
type hook struct {
	on    func(slog.Record)
	attrs []slog.Attr
	inner slog.Handler
}

func newHook(t *testing.T, on func(msg string, attrs map[string]string)) *slog.Logger {
	var inner slog.Handler = slog.DiscardHandler
	if testing.Verbose() {
		inner = slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})
	}
	return slog.New(&hook{inner: inner, on: func(r slog.Record) {
		if on == nil {
			return
		}
		m := map[string]string{}
		r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
		on(r.Message, m)
	}})
}

func (h *hook) Enabled(context.Context, slog.Level) bool { return true }
func (h *hook) Handle(ctx context.Context, r slog.Record) error {
	r2 := r.Clone()
	r2.AddAttrs(h.attrs...)
	h.on(r2)
	if h.inner.Enabled(ctx, r.Level) {
		return h.inner.Handle(ctx, r)
	}
	return nil
}
func (h *hook) WithAttrs(as []slog.Attr) slog.Handler {
	return &hook{on: h.on, attrs: append(append([]slog.Attr{}, h.attrs...), as...), inner: h.inner.WithAttrs(as)}
}
func (h *hook) WithGroup(name string) slog.Handler {
	return &hook{on: h.on, attrs: h.attrs, inner: h.inner.WithGroup(name)}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// waitFor polls cond every 50 ms until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// history reads the run history oldest first, only the given pipeline.
func history(t *testing.T, dir, pipeline string) []pipelines.RunRecord {
	t.Helper()
	recs, err := pipelines.ReadHistory(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []pipelines.RunRecord
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Pipeline == pipeline {
			out = append(out, recs[i])
		}
	}
	return out
}

func count(recs []pipelines.RunRecord, status string) int {
	n := 0
	for _, r := range recs {
		if r.Status == status {
			n++
		}
	}
	return n
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// cdwBinary builds cmd/cdw once per test process into the module's tmp/
// directory, so the child-process tests run the real binary.
func cdwBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = fmt.Errorf("finding the module root: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		binPath = filepath.Join(root, "tmp", fmt.Sprintf("cdw-schedule-test-%d", os.Getpid()))
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/cdw")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building cdw: %v\n%s", err, b)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.Remove(binPath)
	}
	os.Exit(code)
}

// promSample is one sample line of the Prometheus text format.
type promSample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

var (
	promMeta  = regexp.MustCompile(`^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$`)
	promLine  = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$`)
	promLabel = regexp.MustCompile(`^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)`)
)

// scrape GETs /metrics and parses the exposition text strictly: every line
// is HELP, TYPE or a sample of a declared family with a float value.
func scrape(t *testing.T, base string) []promSample {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("/metrics content type %q", ct)
	}
	types := map[string]string{}
	var out []promSample
	sc := bufio.NewScanner(resp.Body)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if m := promMeta.FindStringSubmatch(line); m != nil {
			if m[1] == "TYPE" {
				switch m[3] {
				case "counter", "gauge", "histogram", "summary", "untyped":
				default:
					t.Fatalf("/metrics line %d: unknown type %q", n, m[3])
				}
				types[m[2]] = m[3]
			}
			continue
		}
		m := promLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("/metrics line %d is not Prometheus text: %q", n, line)
		}
		if _, ok := types[m[1]]; !ok {
			t.Fatalf("/metrics line %d: sample of %s before its # TYPE", n, m[1])
		}
		v, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			t.Fatalf("/metrics line %d: value %q: %v", n, m[4], err)
		}
		s := promSample{Name: m[1], Labels: map[string]string{}, Value: v}
		for rest := m[3]; rest != ""; {
			lm := promLabel.FindStringSubmatch(rest)
			if lm == nil {
				t.Fatalf("/metrics line %d: bad labels %q", n, m[3])
			}
			s.Labels[lm[1]] = lm[2]
			rest = rest[len(lm[0]):]
		}
		if types[m[1]] == "counter" && v < 0 {
			t.Fatalf("/metrics line %d: negative counter", n)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sum adds the values of the samples of name whose labels include want.
func sum(samples []promSample, name string, want map[string]string) (float64, int) {
	total, n := 0.0, 0
next:
	for _, s := range samples {
		if s.Name != name {
			continue
		}
		for k, v := range want {
			if s.Labels[k] != v {
				continue next
			}
		}
		total += s.Value
		n++
	}
	return total, n
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
