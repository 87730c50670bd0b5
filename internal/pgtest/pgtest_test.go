package pgtest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// childEnv makes TestMain start a cluster, print its postmaster pid and die
// without cleaning up, so TestNoStrayServerAfterCrash can check that the
// server goes away with it.
const childEnv = "PGTEST_CRASH_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		s, err := newCluster()
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(3)
		}
		fmt.Printf("pid=%d dir=%s\n", s.proc.pid, s.dir)
		if os.Getenv(childEnv) == "kill" {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
		panic("test binary crashing on purpose")
	}
	Main(m)
}

func query(t *testing.T, dsn, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var out string
	if err := conn.QueryRow(ctx, sql).Scan(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestNewDBIsFreshAndDropped(t *testing.T) {
	var name string
	var s *Server
	t.Run("create", func(t *testing.T) {
		db := NewDB(t)
		s, name = db.Server, db.Name
		db.Exec(t, "CREATE TABLE x (id int); INSERT INTO x VALUES (1), (2)")
		if got := query(t, db.DSN, "SELECT count(*)::text FROM x"); got != "2" {
			t.Fatalf("count = %s", got)
		}
		if got := query(t, db.DSN, "SELECT current_database()"); got != db.Name {
			t.Fatalf("connected to %s, want %s", got, db.Name)
		}
		if got := query(t, db.DSN, "SELECT current_setting('server_version_num')"); !strings.HasPrefix(got, "1") {
			t.Fatalf("server_version_num = %s", got)
		}
		other := NewDB(t)
		if other.Name == db.Name {
			t.Fatal("two tests got the same database")
		}
	})
	got := query(t, s.DSN, "SELECT count(*)::text FROM pg_database WHERE datname = '"+name+"'")
	if got != "0" {
		t.Fatalf("database %s still exists after its test", name)
	}
}

func TestPsql(t *testing.T) {
	db := NewDB(t)
	db.Exec(t, "CREATE TABLE x AS SELECT g AS id FROM generate_series(1, 3) g")
	out, err := db.Psql(t, "-At", "-c", "SELECT string_agg(id::text, ',') FROM x").CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	if strings.TrimSpace(string(out)) != "1,2,3" {
		t.Fatalf("psql printed %q", out)
	}
}

func TestPrivateStopRestart(t *testing.T) {
	if os.Getenv(EnvDSN) != "" {
		t.Fatalf("unset %s: this test checks the throwaway cluster", EnvDSN)
	}
	s := StartPrivate(t)
	db := s.NewDB(t)
	db.Exec(t, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives')")
	conn := db.Connect(t)
	pid := s.proc.pid

	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Fatalf("old postmaster %d still runs after Restart", pid)
	}
	if err := conn.Ping(context.Background()); err == nil {
		t.Fatal("a session from before the restart still works")
	}
	if got := query(t, db.DSN, "SELECT v FROM kept"); got != "survives" {
		t.Fatalf("after restart got %q", got)
	}

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := pgx.Connect(ctx, db.DSN); err == nil {
		c.Close(ctx)
		t.Fatal("connected to a stopped server")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if got := query(t, db.DSN, "SELECT v FROM kept"); got != "survives" {
		t.Fatalf("after stop/start got %q", got)
	}
}

// TestNoStrayServerAfterCrash runs a test binary that starts a cluster and
// then dies without cleanup (a panic, and SIGKILL): its postgres must go too.
func TestNoStrayServerAfterCrash(t *testing.T) {
	if os.Getenv(EnvDSN) != "" {
		t.Fatalf("unset %s: this test checks the throwaway cluster", EnvDSN)
	}
	for _, mode := range []string{"panic", "kill"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+mode)
			out, _ := cmd.CombinedOutput() // it fails by design
			var pid int
			var dir string
			sc := bufio.NewScanner(strings.NewReader(string(out)))
			for sc.Scan() {
				if n, _ := fmt.Sscanf(sc.Text(), "pid=%d dir=%s", &pid, &dir); n == 2 {
					break
				}
			}
			if pid == 0 {
				t.Fatalf("child printed no postmaster pid:\n%s", out)
			}
			defer os.RemoveAll(dir)
			deadline := time.Now().Add(15 * time.Second)
			for alive(pid) {
				if time.Now().After(deadline) {
					syscall.Kill(pid, syscall.SIGKILL)
					t.Fatalf("postmaster %d outlived its test binary by 15s", pid)
				}
				time.Sleep(50 * time.Millisecond)
			}
			// The next cluster start sweeps the directory left behind.
			sweepStale()
			if _, err := os.Stat(dir); err == nil {
				t.Fatalf("stale cluster directory %s was not swept", dir)
			}
		})
	}
}

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"host=h port=1 user=u dbname=postgres", "host=h port=1 user=u dbname=postgres dbname='x1'"},
		{"postgres://u@h:1/postgres?sslmode=disable", "postgres://u@h:1/x1?sslmode=disable"},
	} {
		if got := withDatabase(tc.in, "x1"); got != tc.want {
			t.Errorf("withDatabase(%q) = %q, want %q", tc.in, got, tc.want)
		}
		cfg, err := pgx.ParseConfig(withDatabase(tc.in, "x1"))
		if err != nil || cfg.Database != "x1" {
			t.Errorf("parsed %q: database %q, %v", tc.in, cfg.Database, err)
		}
	}
}

func TestMissingBinariesFailWithInstallHint(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		_, err := findBinariesIn([]string{t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "apt-get install -y postgresql") || !strings.Contains(err.Error(), "fail rather than skip") {
			t.Errorf("CI=%q: %v", ci, err)
		}
		if ci != "" && !strings.Contains(err.Error(), "CI must provide PostgreSQL") {
			t.Errorf("CI=%q: %v", ci, err)
		}
	}
	if dir, err := findBinaries(); err != nil || !fileExists(dir+"/postgres") {
		t.Fatalf("this machine's binaries: %q, %v", dir, err)
	}
}

func TestExternalServer(t *testing.T) {
	if os.Getenv(EnvDSN) != "" {
		t.Fatalf("unset %s: this test starts the server it then treats as external", EnvDSN)
	}
	s := StartPrivate(t)
	ext, err := external(s.DSN)
	if err != nil {
		t.Fatal(err)
	}
	db := ext.NewDB(t)
	if got := query(t, db.DSN, "SELECT current_database()"); got != db.Name {
		t.Fatalf("connected to %s", got)
	}
	if err := ext.Stop(); err == nil || !strings.Contains(err.Error(), EnvDSN) {
		t.Fatalf("Stop on an external server: %v", err)
	}
	if _, err := external("host=127.0.0.1 port=1 user=x dbname=y connect_timeout=2"); err == nil || !strings.Contains(err.Error(), EnvDSN) {
		t.Fatalf("unreachable external server: %v", err)
	}
}

// TestKeep: a kept cluster takes extra settings and keeps its data between
// starts, as the benchmark harness relies on to load its tables once.
func TestKeep(t *testing.T) {
	if os.Getenv(EnvDSN) != "" {
		t.Fatalf("unset %s: Keep starts its own cluster", EnvDSN)
	}
	// Not t.TempDir: its parent is private to root, and as root the server
	// runs as the postgres user.
	dir, err := os.MkdirTemp("", "cdw-pgkeep-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s, err := Keep(dir, "shared_buffers=16MB")
	if err != nil {
		t.Fatal(err)
	}
	if got := query(t, s.DSN, "SHOW shared_buffers"); got != "16MB" {
		t.Errorf("shared_buffers = %s, want the given 16MB", got)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.DSN)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept AS SELECT 42 AS n"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	s, err = Keep(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	if got := query(t, s.DSN, "SELECT n::text FROM kept"); got != "42" {
		t.Errorf("after a restart the table holds %s, want 42", got)
	}
	if got := query(t, s.DSN, "SHOW shared_buffers"); got != "128MB" {
		t.Errorf("shared_buffers = %s, want the default 128MB without the setting", got)
	}
	if s.SocketDir() != dir {
		t.Errorf("SocketDir = %s, want %s", s.SocketDir(), dir)
	}
}
