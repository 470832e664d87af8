// Package pgtest runs a throwaway PostgreSQL server for the tests of one
// package and gives each test its own database.
//
// A test package declares one Server, starts nothing until a test asks
// for a database, and stops the server in TestMain:
//
//	var pg pgtest.Server
//
//	func TestMain(m *testing.M) { os.Exit(pg.RunTests(m)) }
//
//	func TestSomething(t *testing.T) {
//		url := pg.Database(t) // a fresh database, dropped in t.Cleanup
//	}
//
// The server is a new cluster made with initdb in a temporary directory,
// listening on a free loopback port with fsync, full-page writes and
// synchronous commit off: fast, and disposable by design. PostgreSQL
// refuses to run as root, so when the tests run as root the directory
// belongs to the postgres user and initdb and pg_ctl run through runuser.
//
// When the PostgreSQL binaries are missing, Database skips the test,
// unless APIWARDEN_REQUIRE_POSTGRES=1 (CI sets it) turns that into a
// failure. Any other problem starting the server fails the test.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultBinDir is where Debian's postgresql-15 package puts initdb and
// pg_ctl. APIWARDEN_POSTGRES_BIN overrides it.
const DefaultBinDir = "/usr/lib/postgresql/15/bin"

// RequireEnv names the variable that turns a missing PostgreSQL into a
// test failure.
const RequireEnv = "APIWARDEN_REQUIRE_POSTGRES"

// ErrNotInstalled means initdb or pg_ctl was not found.
var ErrNotInstalled = errors.New("pgtest: PostgreSQL binaries not found")

// Server is one throwaway PostgreSQL server. The zero value is ready to
// use; it starts on the first Database call. All methods are safe for
// concurrent use; StopServer, StartServer and StopForTest affect every
// test using the server, so tests that call them must not run in parallel
// with others.
type Server struct {
	once     sync.Once
	startErr error

	binDir string
	dir    string // owns data/, the log and the unix socket
	port   int
	asUser *user.User // nil: run the binaries as ourselves
	dbSeq  atomic.Uint64
}

// Database returns the URL of a new, empty database on the server,
// starting the server on first use, and drops the database when the test
// ends. It skips the test when PostgreSQL is not installed (fails when
// APIWARDEN_REQUIRE_POSTGRES=1) and fails it when the server cannot start.
func (s *Server) Database(t testing.TB) string {
	t.Helper()
	s.once.Do(func() { s.startErr = s.start() })
	if errors.Is(s.startErr, ErrNotInstalled) {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%v and %s=1", s.startErr, RequireEnv)
		}
		t.Skipf("%v (install postgresql-15, or set %s=1 to fail instead)", s.startErr, RequireEnv)
	}
	if s.startErr != nil {
		t.Fatal(s.startErr)
	}
	name := fmt.Sprintf("t%d_%s", s.dbSeq.Add(1), sanitize(t.Name()))
	if err := s.admin(fmt.Sprintf("CREATE DATABASE %s", pgx.Identifier{name}.Sanitize())); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		if err := s.admin(fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pgx.Identifier{name}.Sanitize())); err != nil {
			t.Errorf("pgtest: drop database: %v", err)
		}
	})
	return s.URL(name)
}

// URL is the connection URL of database name on the server.
func (s *Server) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, name)
}

// StopServer stops PostgreSQL (fast shutdown: open sessions are ended),
// keeping its data, so a test can see what happens while it is down.
func (s *Server) StopServer() error {
	return s.pgCtl("stop", "-m", "fast", "-w")
}

// StartServer starts a server StopServer stopped, on the same port.
func (s *Server) StartServer() error {
	return s.pgCtl("start", "-w", "-t", "30", "-l", filepath.Join(s.dir, "log"), "-o", s.serverOptions())
}

// StopForTest stops the server like StopServer, failing t if it cannot,
// and returns the function that starts it again (failing t if that
// cannot). If t ends before that function is called, t's cleanup starts
// the server, so the tests after t find it running. Like StopServer it
// affects every test using the server.
func (s *Server) StopForTest(t testing.TB) (start func()) {
	t.Helper()
	if err := s.StopServer(); err != nil {
		t.Fatal(err)
	}
	var running atomic.Bool
	t.Cleanup(func() {
		if !running.Load() {
			_ = s.StartServer()
		}
	})
	return func() {
		t.Helper()
		if err := s.StartServer(); err != nil {
			t.Fatal(err)
		}
		running.Store(true)
	}
}

// RunTests runs the package's tests with m, then closes the server, and
// returns m.Run's exit code: a whole TestMain is
// os.Exit(pg.RunTests(m)).
func (s *Server) RunTests(m *testing.M) int {
	defer s.Close()
	return m.Run()
}

// Close stops the server and removes its files. It is safe to call when
// the server never started.
func (s *Server) Close() {
	s.once.Do(func() { s.startErr = errors.New("pgtest: closed") })
	if s.dir == "" {
		return
	}
	_ = s.pgCtl("stop", "-m", "immediate", "-w")
	os.RemoveAll(s.dir)
}

func (s *Server) start() (err error) {
	if s.binDir, err = findBinDir(); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		if s.asUser, err = user.Lookup("postgres"); err != nil {
			return fmt.Errorf("pgtest: running as root needs a postgres user: %w", err)
		}
	}
	if s.dir, err = os.MkdirTemp("", "apiwarden-pg-"); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if err := s.chown(s.dir); err != nil {
		return err
	}
	if out, err := s.command("initdb", "--auth=trust", "--username=postgres", "--encoding=UTF8",
		"--no-sync", "-D", filepath.Join(s.dir, "data")).CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %v: %s", err, out)
	}
	// A port found free may be taken before the server binds it: try a few.
	for range 3 {
		if s.port, err = freePort(); err != nil {
			return err
		}
		if err = s.StartServer(); err == nil {
			return nil
		}
	}
	return err
}

func (s *Server) serverOptions() string {
	return strings.Join([]string{
		"-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + s.dir,
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "synchronous_commit=off",
		"-c", "max_connections=200",
	}, " ")
}

func (s *Server) pgCtl(args ...string) error {
	args = append([]string{"-D", filepath.Join(s.dir, "data")}, args...)
	if out, err := s.command("pg_ctl", args...).CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		return fmt.Errorf("pgtest: pg_ctl %s: %v: %s\nserver log:\n%s", args[2], err, out, tail(log, 2000))
	}
	return nil
}

// command runs one of the PostgreSQL binaries, as the postgres user when
// we are root.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	bin := filepath.Join(s.binDir, name)
	if s.asUser == nil {
		return exec.Command(bin, args...)
	}
	return exec.Command("runuser", append([]string{"-u", "postgres", "--", bin}, args...)...)
}

func (s *Server) chown(path string) error {
	if s.asUser == nil {
		return nil
	}
	uid, _ := strconv.Atoi(s.asUser.Uid)
	gid, _ := strconv.Atoi(s.asUser.Gid)
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// admin runs one statement on the maintenance database.
func (s *Server) admin(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func findBinDir() (string, error) {
	dir := os.Getenv("APIWARDEN_POSTGRES_BIN")
	if dir == "" {
		dir = DefaultBinDir
	}
	for _, name := range []string{"initdb", "pg_ctl"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return "", fmt.Errorf("%w in %s", ErrNotInstalled, dir)
		}
	}
	return dir, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// sanitize keeps a test name usable inside a database name (at most 63
// bytes in all).
func sanitize(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	out := b.String()
	if len(out) > 40 {
		out = out[:40]
	}
	return out
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
