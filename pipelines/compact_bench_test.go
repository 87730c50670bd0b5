package pipelines_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cdwhq/cdw/extract/extracttest"
	"github.com/cdwhq/cdw/internal/crashtest"
	"github.com/cdwhq/cdw/pipelines"
)

// BenchmarkCompact10k commits 10,000 small raw order files of 100 rows
// (1M rows, ten files per event day, every 50th of new versions) with
// Iceberg on, then measures: a full transform over them, `cdw compact`
// (the real binary, so its peak RSS is its own), and the same full
// transform over the compacted files. Run it alone, -benchtime 1x:
//
//	go test -run '^$' -bench BenchmarkCompact10k -benchtime 1x ./pipelines/
func BenchmarkCompact10k(b *testing.B) {
	bin := crashtest.Binary(b)
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		wh := filepath.Join(dir, "wh")
		extracttest.SmallOrderFiles(b, wh, "api", 10_000, 100, 50)
		cfg := filepath.Join(dir, "cdw.yaml")
		yaml := "warehouse: wh\niceberg: {catalog: filesystem}\nsources:\n  - name: api\n    kind: files\n    entities:\n      orders: {path: " +
			filepath.Join(dir, "none", "*.csv") + ", columns: {order_id: order_id, line_no: line_no, customer_id: customer_id, order_ts: order_ts, quantity: quantity, updated_at: updated_at}}\n"
		if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
			b.Fatal(err)
		}
		c, err := pipelines.LoadConfig(cfg)
		if err != nil {
			b.Fatal(err)
		}
		r := &pipelines.Runner{Cfg: c}
		transform := func() time.Duration {
			start := time.Now()
			_, err := r.Run(context.Background(), pipelines.Options{Steps: pipelines.Steps{Transform: true}, FullRefresh: true,
				Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			return time.Since(start)
		}
		before := transform()
		cmd := exec.Command(bin, "compact", "--config", cfg)
		cmd.Stderr = os.Stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB
		after := transform()
		b.ReportMetric(took.Seconds(), "compact-s")
		b.ReportMetric(10_000/took.Seconds(), "files/s")
		b.ReportMetric(float64(rss)/1024, "compact-peak-MB")
		b.ReportMetric(before.Seconds(), "transform-before-s")
		b.ReportMetric(after.Seconds(), "transform-after-s")
		b.ReportMetric(after.Seconds()/before.Seconds(), "after/before")
		b.StartTimer()
	}
}
