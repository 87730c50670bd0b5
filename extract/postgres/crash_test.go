package postgres

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/durable"
	"github.com/cdwhq/cdw/internal/pgtest"
)

// The crash test re-runs this test binary as a child that extracts until it
// is killed. These variables tell the child what to do.
const (
	crashChildEnv = "CDW_PG_CRASH_CHILD" // set: TestMain runs crashChild instead of the tests
	crashDirEnv   = "CDW_PG_CRASH_DIR"   // warehouse directory
	crashYAMLEnv  = "CDW_PG_CRASH_YAML"  // the source's config
	crashSplitEnv = "CDW_PG_CRASH_SPLIT" // set: splitMinRows, so that the read is split
)

// crashChild extracts erp.orders slowly (a pause after every chunk) so the
// parent can kill it in the middle.
func crashChild() int {
	if v := os.Getenv(crashSplitEnv); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			return 2
		}
		splitMinRows = n
	}
	src, err := openSourceErr("erp", os.Getenv(crashYAMLEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 2
	}
	x := &extract.Extractor{Dir: os.Getenv(crashDirEnv), BatchRows: 5000}
	if _, err := x.Extract(context.Background(), "erp", slowSource{src}, "orders", false); err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 1
	}
	return 0
}

// slowSource pauses after each chunk its reads hand over.
type slowSource struct{ extract.Source }

func (s slowSource) Read(ctx context.Context, req extract.ReadRequest) (extract.Reader, error) {
	r, err := s.Source.Read(ctx, req)
	if err != nil {
		return nil, err
	}
	return slowReader{r}, nil
}

type slowReader struct{ extract.Reader }

func (r slowReader) Next(ctx context.Context) (extract.Chunk, error) {
	ch, err := r.Reader.Next(ctx)
	time.Sleep(15 * time.Millisecond)
	return ch, err
}

// TestCrashMidExtractExactlyOnce kills an extract of 200k rows with SIGKILL
// after some checkpoints committed and while a raw file is being written,
// then reruns it: every source row must be in the committed raw files exactly
// once.
func TestCrashMidExtractExactlyOnce(t *testing.T) {
	crashMidExtract(t, false)
}

// TestCrashMidSplitExtractExactlyOnce is the same with the read split in
// parts on three connections: the committed cursor is each part's
// progress, and the rerun finishes every part.
func TestCrashMidSplitExtractExactlyOnce(t *testing.T) {
	crashMidExtract(t, true)
}

func crashMidExtract(t *testing.T, split bool) {
	const total = 200_000
	db := pgtest.NewDB(t)
	db.Exec(t, ordersDDL)
	insertOrders(t, db, total, "now() - interval '1 day' + g * interval '1 millisecond'")
	dir := t.TempDir()
	yaml := sourceYAML(db, "checkpoint_rows: 20000\nsafety_lag: 0s\nparallel: 3\n", ordersEntity)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	splitMin := "1000000000" // 200k rows stay whole
	if split {
		splitMin = "1000"
	}
	cmd.Env = append(os.Environ(), crashChildEnv+"=1", crashDirEnv+"="+dir, crashYAMLEnv+"="+yaml, crashSplitEnv+"="+splitMin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	// Kill once two checkpoints are committed and the next file is in flight.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if len(committedFiles(t, dir, "erp", "orders")) >= 2 && len(tempFiles(t, dir)) > 0 {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("child finished before it could be killed (%v): %s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("child made no progress in 60s: %s", stderr.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	st := readState(t, dir, "erp", "orders")
	if st.Rows >= total || st.Rows < 40_000 {
		t.Fatalf("killed with %d rows committed; want a kill mid-extract", st.Rows)
	}
	t.Logf("killed after %d committed rows in %d files; %d uncommitted files left", st.Rows, len(st.Files), len(tempFiles(t, dir)))
	if p := statePosition(t, dir, "erp", "orders"); (len(p.Spans) == 3*partsPerConnection) != split {
		t.Fatalf("committed cursor %+v; want it split in %d parts: %v", p, 3*partsPerConnection, split)
	}

	src := openSource(t, "erp", yaml)
	res := extractOnce(t, dir, "erp", src, "orders", false)
	if res.Rows != total-st.Rows {
		t.Fatalf("rerun read %d rows, want the %d not committed before the crash", res.Rows, total-st.Rows)
	}
	d := rawDB(t, dir, "erp", "orders")
	var n, distinct int64
	var sum string
	if err := d.QueryRow("SELECT count(*), count(DISTINCT id), sum(amount)::VARCHAR FROM raw").Scan(&n, &distinct, &sum); err != nil {
		t.Fatal(err)
	}
	want := pgStrings(t, db, "SELECT sum(net_amount)::text FROM order_lines")[0]
	if n != total || distinct != total || sum != want {
		t.Fatalf("raw holds %d rows, %d distinct ids, amounts summing to %s; want %d, %d, %s", n, distinct, sum, total, total, want)
	}
	if left := tempFiles(t, dir); len(left) != 0 {
		t.Fatalf("files not listed in state remain: %v", left)
	}
}

// tempFiles lists files under raw/ that state does not list: temporary files
// being written and files renamed into place but not yet committed.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	committed := map[string]bool{}
	for _, f := range committedFiles(t, dir, "erp", "orders") {
		committed[f] = true
	}
	var out []string
	filepath.WalkDir(filepath.Join(dir, "raw"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (!committed[p] || durable.IsTemp(p)) {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out
}
