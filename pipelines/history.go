package pipelines

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cdwhq/cdw/internal/durable"
	"github.com/cdwhq/cdw/internal/secret"
)

// RunRecord is one line of run history (state/runs.jsonl). History lives in
// state/, not in the warehouse, so it survives a rebuild of warehouse.duckdb.
type RunRecord struct {
	ID        string        `json:"id"`
	Pipeline  string        `json:"pipeline"`
	Status    string        `json:"status"` // success, partial (on_source_error: continue), error, cancelled, interrupted, skipped, queued
	StartedAt time.Time     `json:"started_at"`
	Duration  time.Duration `json:"duration_ns"`
	Rows      int64         `json:"rows_extracted"`
	Rejected  int64         `json:"rows_rejected"`
	Models    int           `json:"models"`
	Published []string      `json:"published,omitempty"`
	Version   string        `json:"publish_version,omitempty"` // the version the targets serve after the run
	Error     string        `json:"error,omitempty"`
	Attempt   int           `json:"attempt,omitempty"`
}

func historyPath(dir string) string { return filepath.Join(dir, "state", "runs.jsonl") }

// AppendHistory appends one record and fsyncs it. A crash mid-append leaves
// at most a torn last line, which ReadHistory skips.
func AppendHistory(dir string, r RunRecord) error {
	p := historyPath(dir)
	if err := os.MkdirAll(filepath.Dir(p), durable.DirPerm); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(p), err)
	}
	r.Error = secret.Scrub(r.Error)
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding run record: %w", err)
	}
	f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, durable.FilePerm)
	if err != nil {
		return fmt.Errorf("opening run history: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("writing run history: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing run history: %w", err)
	}
	return nil
}

// ReadHistory returns the last n records, newest first (n <= 0: all).
func ReadHistory(dir string, n int) ([]RunRecord, error) {
	f, err := os.Open(historyPath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("opening run history: %w", err)
	}
	defer f.Close()
	var all []RunRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		var r RunRecord
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			r.Error = secret.Scrub(r.Error) // lines written before the secret was known
			all = append(all, r)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading run history: %w", err)
	}
	out := make([]RunRecord, 0, len(all))
	for i := len(all) - 1; i >= 0 && (n <= 0 || len(out) < n); i-- {
		out = append(out, all[i])
	}
	return out, nil
}

// A run in progress is recorded in state/run.json from the moment it holds
// the lock until its history line is written. A run killed in between
// (SIGKILL, OOM, power cut) leaves the file behind; whoever takes the lock
// next turns it into an "interrupted" history line, so no run goes
// unrecorded.
func runningPath(dir string) string { return filepath.Join(dir, "state", "run.json") }

// markRunning records r as the run in progress.
func markRunning(dir string, r RunRecord) error {
	r.Status = "running"
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding run record: %w", err)
	}
	if err := durable.WriteFile(runningPath(dir), data); err != nil {
		return fmt.Errorf("recording the run in progress: %w", err)
	}
	return nil
}

// finishRunning forgets the run in progress once its history line is written.
func finishRunning(dir string) error {
	if err := os.Remove(runningPath(dir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("clearing the run in progress: %w", err)
	}
	return nil
}

// recoverInterrupted records the run an earlier lock holder left unfinished.
// The caller holds the lock, so that holder is gone.
func recoverInterrupted(dir string) error {
	data, err := os.ReadFile(runningPath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the unfinished run: %w", err)
	}
	var r RunRecord
	if err := json.Unmarshal(data, &r); err != nil {
		// Unreadable (durable.WriteFile never leaves a torn file, so
		// something else wrote it): still record that a run was cut short.
		r = RunRecord{ID: "unknown", Pipeline: "unknown", StartedAt: time.Now().UTC()}
	}
	r.Status = "interrupted"
	r.Error = "the process stopped before the run finished (killed, out of memory or a power cut); found by the next run"
	if err := AppendHistory(dir, r); err != nil {
		return err
	}
	return finishRunning(dir)
}
