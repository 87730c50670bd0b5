package extract

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Progress shows long extracts: a live line on a terminal (rows, rows/s, ETA
// when the total is known), or a structured log line every few seconds when
// output is not a terminal. A nil *Progress shows nothing.
type Progress struct {
	Out      io.Writer    // the terminal; nil means log lines instead
	Log      *slog.Logger // used when Out is nil
	Interval time.Duration
}

// Tick tracks one read.
type Tick struct {
	p     *Progress
	name  string
	total int64
	start time.Time
	mu    sync.Mutex
	last  time.Time
	rows  int64
}

// Start begins tracking a read; total is -1 when unknown.
func (p *Progress) Start(name string, total int64) *Tick {
	if p == nil {
		return nil
	}
	now := time.Now()
	return &Tick{p: p, name: name, total: total, start: now, last: now}
}

// Set records rows done and redraws when due.
func (t *Tick) Set(rows int64) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows = rows
	interval := t.p.Interval
	if interval == 0 {
		interval = 5 * time.Second
		if t.p.Out != nil {
			interval = 200 * time.Millisecond
		}
	}
	if time.Since(t.last) < interval {
		return
	}
	t.last = time.Now()
	t.show(false)
}

// Done draws the final state.
func (t *Tick) Done() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.p.Out != nil {
		t.show(true)
	}
}

func (t *Tick) show(final bool) {
	el := time.Since(t.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(t.rows) / el
	}
	eta := ""
	if t.total > 0 && rate > 0 && t.rows < t.total {
		eta = (time.Duration(float64(t.total-t.rows)/rate) * time.Second).Round(time.Second).String()
	}
	if t.p.Out == nil {
		log := t.p.Log
		if log == nil {
			log = slog.Default()
		}
		log.Info("extract progress", "read", t.name, "rows", t.rows, "total", t.total, "rows_per_s", int64(rate), "eta", eta)
		return
	}
	line := fmt.Sprintf("\r%-28s %12d rows %10.0f rows/s", t.name, t.rows, rate)
	if t.total > 0 {
		line += fmt.Sprintf("  %5.1f%%", 100*float64(t.rows)/float64(t.total))
		if eta != "" {
			line += "  ETA " + eta
		}
	}
	line += "\x1b[K"
	if final {
		line += "\n"
	}
	fmt.Fprint(t.p.Out, line)
}
