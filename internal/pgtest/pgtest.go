// Package pgtest gives tests a real, throwaway PostgreSQL server on loopback.
//
// One cluster is started per test binary, on first use, from the PostgreSQL
// server binaries installed on the machine (Debian: /usr/lib/postgresql/15/bin,
// package postgresql). Every test gets a fresh database on it (NewDB), dropped
// when the test ends. The cluster runs as a child of the test binary with a
// parent-death signal, so it goes away when the binary exits, even when it
// crashes or is killed; Main also stops it cleanly and removes its files.
//
// Set CDW_TEST_PG_DSN to use an existing server instead (its user needs
// CREATEDB). A missing PostgreSQL is a test failure, never a skip.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the environment variable that points tests at an existing
// server instead of a throwaway cluster.
const EnvDSN = "CDW_TEST_PG_DSN"

// Psql is where the psql client is looked up first.
const Psql = "/usr/bin/psql"

// Server is one PostgreSQL server that tests create databases on.
type Server struct {
	// DSN connects to the server's maintenance database as a superuser
	// (or as the user of CDW_TEST_PG_DSN).
	DSN string
	// Host and Port are where the server listens (127.0.0.1 for a throwaway cluster).
	Host string
	Port int

	external bool     // given by CDW_TEST_PG_DSN: never stopped or restarted here
	dir      string   // owns data/, the socket, the log and owner.pid
	bin      string   // directory holding initdb and postgres
	settings []string // extra server settings, after the defaults
	cred     *syscall.Credential

	mu   sync.Mutex
	proc *process // nil while stopped
}

// process is one running postmaster.
type process struct {
	pid    int
	exited chan struct{} // closed when the postmaster has exited
	err    error         // its exit status, valid after exited is closed
}

var (
	sharedMu  sync.Mutex
	shared    *Server
	sharedErr error
	dbSeq     atomic.Int64
)

// Main runs a package's tests and then stops the shared cluster and removes its
// files. Use it as TestMain: func TestMain(m *testing.M) { pgtest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if err := Shutdown(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
	}
	os.Exit(code)
}

// Shutdown stops the shared cluster, if one was started, and removes its files.
// Main calls it; call it yourself from a TestMain that does not use Main.
func Shutdown() error {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	s := shared
	shared, sharedErr = nil, nil
	if s == nil {
		return nil
	}
	return s.destroy()
}

// Start returns the shared server of this test binary, starting it on first use
// (and again if a test stopped it). It fails the test when PostgreSQL cannot be
// started; it never skips.
func Start(t testing.TB) *Server {
	t.Helper()
	sharedMu.Lock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = open()
	}
	s, err := shared, sharedErr
	sharedMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s
}

// StartPrivate starts a cluster used by this test alone, stopped and removed at
// the end of the test. Use it for tests that stop or restart the server, so
// that other tests of the binary are not disturbed. With CDW_TEST_PG_DSN set
// it fails the test: an external server cannot be made private.
func StartPrivate(t testing.TB) *Server {
	t.Helper()
	if os.Getenv(EnvDSN) != "" {
		t.Fatalf("pgtest: this test needs a server it can stop and restart; unset %s to let it start its own", EnvDSN)
	}
	s, err := newCluster()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.destroy(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func open() (*Server, error) {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		return external(dsn)
	}
	return newCluster()
}

func external(dsn string) (*Server, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgtest: parsing %s: %w", EnvDSN, err)
	}
	s := &Server{DSN: dsn, Host: cfg.Host, Port: int(cfg.Port), external: true}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("pgtest: connecting to the server in %s: %w", EnvDSN, err)
	}
	conn.Close(ctx)
	return s, nil
}

// newCluster runs initdb into a new directory under os.TempDir and starts it.
func newCluster() (*Server, error) {
	sweepStale()
	dir, err := os.MkdirTemp("", "cdw-pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: creating cluster directory: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("pgtest: writing owner.pid: %w", err)
	}
	s, err := startCluster(dir, nil)
	ok = err == nil
	return s, err
}

// Keep starts a cluster whose files live in dir and outlive the process:
// initdb on first use, the data kept for the next call (the benchmark harness
// loads its tables once). settings are extra server settings ("name=value",
// e.g. "shared_buffers=1GB"). The server stops with the process or on Stop.
func Keep(dir string, settings ...string) (*Server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("pgtest: creating %s: %w", dir, err)
	}
	return startCluster(dir, settings)
}

// startCluster runs initdb in dir unless it holds a cluster, then starts it
// on a free port.
func startCluster(dir string, settings []string) (*Server, error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	s := &Server{Host: "127.0.0.1", dir: dir, bin: bin, settings: settings}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: run it as the postgres user,
		// which then has to own the directory.
		cred, err := postgresUser()
		if err != nil {
			return nil, err
		}
		s.cred = cred
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("pgtest: handing %s to the postgres user: %w", dir, err)
		}
	}
	if !fileExists(filepath.Join(s.dataDir(), "PG_VERSION")) {
		initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", s.dataDir(), "-U", "postgres",
			"--auth=trust", "--no-sync", "--no-instructions", "--encoding=UTF8", "--locale=C")
		initdb.Dir = dir
		initdb.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGKILL}
		if out, err := initdb.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("pgtest: running initdb in %s: %w\n%s", dir, err, out)
		}
	}
	// A port picked free can be taken by someone else before the postmaster
	// binds it; try a few.
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s.Port = port
		s.DSN = fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", s.Host, port)
		err = s.Start()
		if err == nil {
			return s, nil
		}
		if attempt == 2 || !strings.Contains(err.Error(), "already in use") {
			return nil, err
		}
	}
}

// SocketDir is the directory of the server's Unix socket (a host: for
// clients on this machine, as psql -h DIR), empty for an external server.
func (s *Server) SocketDir() string { return s.dir }

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }
func (s *Server) logPath() string { return filepath.Join(s.dir, "postgres.log") }

// Start starts the server again after Stop; it does nothing when it runs.
// An external server (CDW_TEST_PG_DSN) is assumed to run.
func (s *Server) Start() error {
	if s.external {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		select {
		case <-s.proc.exited:
			s.proc = nil // died on its own: start it again
		default:
			return nil
		}
	}
	p, err := s.spawn()
	if err != nil {
		return err
	}
	if err := s.waitReady(p); err != nil {
		s.kill(p)
		return err
	}
	s.proc = p
	return nil
}

// spawn starts the postmaster from a goroutine locked to its OS thread: the
// parent-death signal fires when the thread that forked the child exits, so
// that thread must live exactly as long as the postmaster.
func (s *Server) spawn() (*process, error) {
	logf, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pgtest: opening server log: %w", err)
	}
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", s.dataDir(),
		"-p", strconv.Itoa(s.Port), "-k", s.dir,
		"-c", "listen_addresses="+s.Host,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200", "-c", "shared_buffers=128MB",
		"-c", "log_min_messages=warning", "-c", "TimeZone=UTC",
		// Logical replication, for the postgres source's mode: cdc.
		"-c", "wal_level=logical", "-c", "max_replication_slots=50", "-c", "max_wal_senders=50")
	for _, kv := range s.settings { // the last -c of a setting wins
		cmd.Args = append(cmd.Args, "-c", kv)
	}
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: s.cred,
		Setpgid:    true,            // keep a terminal's Ctrl-C for the test binary
		Pdeathsig:  syscall.SIGQUIT, // immediate shutdown when the test binary dies
	}
	p := &process{exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := cmd.Start(); err != nil {
			logf.Close()
			started <- fmt.Errorf("pgtest: starting postgres: %w", err)
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		p.err = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

func (s *Server) waitReady(p *process) error {
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("pgtest: postgres exited while starting (%v); log:\n%s", p.err, s.logTail())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.DSN)
		if err == nil {
			conn.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		last = err
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("pgtest: postgres did not accept connections within 60s: %v; log:\n%s", last, s.logTail())
}

// Stop shuts the server down (fast shutdown: open sessions are ended) and
// waits until it is gone. Tests sharing the server see it down until Start.
func (s *Server) Stop() error {
	if s.external {
		return fmt.Errorf("pgtest: cannot stop the external server given by %s", EnvDSN)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil
	}
	p := s.proc
	s.proc = nil
	if err := syscall.Kill(p.pid, syscall.SIGINT); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("pgtest: signalling postgres: %w", err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(30 * time.Second):
		s.kill(p)
		return fmt.Errorf("pgtest: postgres did not shut down within 30s; killed it")
	}
}

// Restart stops the server and starts it again on the same port, as an
// operator restarting PostgreSQL would: sessions are cut, data is kept.
func (s *Server) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.Start()
}

// kill ends a postmaster the hard way (immediate shutdown, then SIGKILL).
func (s *Server) kill(p *process) {
	syscall.Kill(p.pid, syscall.SIGQUIT)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		syscall.Kill(p.pid, syscall.SIGKILL)
		<-p.exited
	}
}

// destroy stops the cluster and removes its directory.
func (s *Server) destroy() error {
	if s.external {
		return nil
	}
	err := s.Stop()
	if rmErr := os.RemoveAll(s.dir); rmErr != nil && err == nil {
		err = fmt.Errorf("pgtest: removing %s: %w", s.dir, rmErr)
	}
	return err
}

func (s *Server) logTail() string {
	data, _ := os.ReadFile(s.logPath())
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

// DB is a fresh database created for one test.
type DB struct {
	Server *Server
	Name   string
	// DSN connects to this database (no password: the cluster trusts loopback).
	DSN string
}

// NewDB creates an empty database on the shared server, dropped when the test
// ends (after open sessions are ended).
func NewDB(t testing.TB) *DB {
	t.Helper()
	return Start(t).NewDB(t)
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

// NewDB creates an empty database on s, dropped when the test ends.
func (s *Server) NewDB(t testing.TB) *DB {
	t.Helper()
	name := unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	name = fmt.Sprintf("t%d_%d_%s", os.Getpid(), dbSeq.Add(1), name)
	if err := s.admin(context.Background(), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: creating database %s: %v", name, err)
	}
	db := &DB{Server: s, Name: name, DSN: withDatabase(s.DSN, name)}
	t.Cleanup(func() {
		// A test may have stopped the server; nothing to drop then, and a
		// private cluster is removed as a whole anyway. Replication slots
		// keep a database from being dropped: they go first (a slot still
		// in use by a walsender a killed child left goes a moment later).
		for range 50 {
			err := s.admin(context.Background(), "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '"+name+"' AND NOT active")
			if err != nil || s.admin(context.Background(), "DO $$ BEGIN IF EXISTS (SELECT FROM pg_replication_slots WHERE database = '"+name+"') THEN RAISE 'slots left'; END IF; END $$") == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err := s.admin(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("pgtest: dropping database %s: %v", name, err)
		}
	})
	return db
}

func (s *Server) admin(ctx context.Context, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// Connect opens a connection to the database, closed when the test ends.
func (db *DB) Connect(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, db.DSN)
	if err != nil {
		t.Fatalf("pgtest: connecting to %s: %v", db.Name, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Exec runs SQL statements (several separated by semicolons are fine when
// there are no args) and fails the test on error.
func (db *DB) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.DSN)
	if err != nil {
		t.Fatalf("pgtest: connecting to %s: %v", db.Name, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("pgtest: running SQL on %s: %v\n%s", db.Name, err, sql)
	}
}

// PsqlPath returns the psql client to use: /usr/bin/psql, else the cluster's
// bin directory, else PATH.
func PsqlPath() (string, error) {
	if _, err := os.Stat(Psql); err == nil {
		return Psql, nil
	}
	if bin, err := findBinaries(); err == nil {
		if p := filepath.Join(bin, "psql"); fileExists(p) {
			return p, nil
		}
	}
	p, err := exec.LookPath("psql")
	if err != nil {
		return "", fmt.Errorf("pgtest: psql not found: %s", installHint())
	}
	return p, nil
}

// Psql returns a command that runs psql against the database with the given
// arguments (quiet, stops on the first error). Set its Stdout as needed.
func (db *DB) Psql(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	p, err := PsqlPath()
	if err != nil {
		t.Fatal(err)
	}
	all := append([]string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db.DSN}, args...)
	return exec.Command(p, all...)
}

// withDatabase returns dsn (URL or key=value form) pointed at database name.
func withDatabase(dsn, name string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			u.Path = "/" + name
			q := u.Query()
			q.Del("dbname")
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	// In key=value form the last setting of a key wins.
	return dsn + " dbname='" + name + "'"
}

// findBinaries locates initdb and postgres: PostgreSQL 15 first, then any
// installed version (newest first), then PATH.
func findBinaries() (string, error) { return findBinariesIn(binaryDirs()) }

func binaryDirs() []string {
	dirs := []string{"/usr/lib/postgresql/15/bin"}
	others, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(others)))
	dirs = append(dirs, others...)
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	return dirs
}

func findBinariesIn(dirs []string) (string, error) {
	for _, d := range dirs {
		if fileExists(filepath.Join(d, "initdb")) && fileExists(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("pgtest: PostgreSQL server binaries (initdb, postgres) not found in /usr/lib/postgresql/*/bin or PATH: %s", installHint())
}

func installHint() string {
	hint := "install postgresql (apt-get install -y postgresql), or set " + EnvDSN + " to a server whose user may CREATE DATABASE"
	if os.Getenv("CI") != "" {
		return hint + ". CI must provide PostgreSQL: these tests fail rather than skip"
	}
	return hint + ". Tests that need PostgreSQL fail rather than skip, so a missing server is never mistaken for a pass"
}

func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root needs the postgres system user to run the server as (%v): %s", err, installHint())
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("pgtest: unexpected uid/gid %q/%q of the postgres user", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// sweepStale removes cluster directories of test binaries that no longer run
// (killed before Main could clean up). Their servers died with them.
func sweepStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "cdw-pgtest-*"))
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue // being set up right now, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 || alive(pid) {
			continue
		}
		if pm, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid")); err == nil {
			first, _, _ := strings.Cut(string(pm), "\n")
			if p, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && alive(p) {
				continue
			}
		}
		os.RemoveAll(d)
	}
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
