package sample

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDeterministicAndParsable generates twice with the same options and
// checks byte-identical files that encoding/csv reads back with the right
// number of fields.
func TestDeterministicAndParsable(t *testing.T) {
	o := Options{Customers: 500, Orders: 5000, Seed: 7, Updates: 0.01, BadRows: 2}
	a, err := Write(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Write(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]string{{a.Orders, b.Orders}, {a.Tickets, b.Tickets}, {a.CRMContacts, b.CRMContacts}, {a.WebSignups, b.WebSignups}} {
		x, _ := os.ReadFile(p[0])
		y, _ := os.ReadFile(p[1])
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs with the same seed", filepath.Base(p[0]))
		}
		r := csv.NewReader(bytes.NewReader(x))
		hdr, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			rec, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", filepath.Base(p[0]), err)
			}
			if len(rec) != len(hdr) {
				t.Fatalf("%s row %d: %d fields, header has %d", filepath.Base(p[0]), n+2, len(rec), len(hdr))
			}
			n++
		}
		if n == 0 {
			t.Errorf("%s has no rows", filepath.Base(p[0]))
		}
	}
	if a.OrderLines != countLines(t, a.Orders)-1 {
		t.Errorf("reported %d order lines, file has %d", a.OrderLines, countLines(t, a.Orders)-1)
	}
}

// TestOrdersTarget checks the calibrated rates land near the target.
func TestOrdersTarget(t *testing.T) {
	for _, tc := range []struct{ customers, orders int }{{2000, 5000}, {2000, 40000}, {10000, 30000}} {
		var c countSink
		n, err := Generate(Options{Customers: tc.customers, Orders: tc.orders}, &c)
		if err != nil {
			t.Fatal(err)
		}
		if got := float64(n.OrderLines) / float64(tc.orders); got < 0.9 || got > 1.1 {
			t.Errorf("%d customers, target %d lines: got %d (%.0f%%)", tc.customers, tc.orders, n.OrderLines, 100*got)
		}
	}
}

// TestCSVFormatting compares the hand-written CSV encoding with encoding/csv
// and time.Format on awkward values.
func TestCSVFormatting(t *testing.T) {
	for _, s := range []string{"", "plain", "a,b", `say "hi"`, "  lead", "multi\nline", "Müller GmbH"} {
		var want bytes.Buffer
		w := csv.NewWriter(&want)
		w.Write([]string{s})
		w.Flush()
		if got := string(appendField(nil, s)) + "\n"; got != want.String() {
			t.Errorf("appendField(%q) = %q, encoding/csv gives %q", s, got, want.String())
		}
	}
	ts := time.Date(2024, 2, 29, 7, 5, 9, 999_999_999, time.UTC)
	if got, want := string(appendTime(nil, ts, 'T', true)), ts.Format(time.RFC3339); got != want {
		t.Errorf("appendTime = %q, want %q", got, want)
	}
	if got, want := string(appendTime(nil, ts, ' ', false)), ts.Format("2006-01-02 15:04:05"); got != want {
		t.Errorf("appendTime = %q, want %q", got, want)
	}
}

// TestDelta checks the change set: changed lines keep existing keys, new
// lines get fresh ones, and the sizes match the fraction.
func TestDelta(t *testing.T) {
	dir := t.TempDir()
	o := Options{Customers: 3000, Orders: 50000}
	f, err := Write(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	forLines(t, f.Orders, func(rec []string) { keys[rec[0]+"/"+rec[1]] = true })
	changed, added, err := WriteDelta(filepath.Join(dir, "delta.csv"), o, 0.02)
	if err != nil {
		t.Fatal(err)
	}
	var gotChanged, gotNew int
	forLines(t, filepath.Join(dir, "delta.csv"), func(rec []string) {
		if keys[rec[0]+"/"+rec[1]] {
			gotChanged++
		} else {
			gotNew++
		}
	})
	if gotChanged != changed || gotNew != added {
		t.Errorf("delta file has %d changed and %d new lines; WriteDelta reported %d and %d", gotChanged, gotNew, changed, added)
	}
	if frac := float64(changed+added) / float64(f.OrderLines); frac < 0.015 || frac > 0.025 {
		t.Errorf("delta is %.2f%% of the lines, want about 2%%", 100*frac)
	}
}

func forLines(t *testing.T, path string, fn func([]string)) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	r := csv.NewReader(bufio.NewReader(fh))
	if _, err := r.Read(); err != nil {
		t.Fatal(err)
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		fn(rec)
	}
}

func countLines(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// BenchmarkWriteCSV measures generation to CSV in order lines per second.
func BenchmarkWriteCSV(b *testing.B) {
	dir := b.TempDir()
	lines := 0
	for i := 0; i < b.N; i++ {
		f, err := Write(dir, Options{Customers: 50000, Orders: 500000})
		if err != nil {
			b.Fatal(err)
		}
		lines += f.OrderLines
	}
	b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
}
