// Package redistest runs a real redis-server for one test: on a free
// loopback port, without persistence, killed when the test ends.
//
//	srv := redistest.Start(t)
//	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
//
// When redis-server is not on PATH, Start skips the test, unless
// APIWARDEN_REQUIRE_REDIS=1 (CI sets it) turns that into a failure.
package redistest

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// RequireEnv names the variable that turns a missing redis-server into a
// test failure.
const RequireEnv = "APIWARDEN_REQUIRE_REDIS"

// Server is a redis-server process on a loopback port, owned by one test.
// Its methods fail that test on error and are meant for the test's own
// goroutine.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	addr string
	cmd  *exec.Cmd // nil while killed
}

// Start starts redis-server for t on a free loopback port, returns once
// it answers PING (failing t after 10 s) and kills it when t ends. It
// skips t when redis-server is not installed, unless
// APIWARDEN_REQUIRE_REDIS=1 makes that a failure.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("redis-server not found and %s=1: %v", RequireEnv, err)
		}
		t.Skipf("redis-server not installed (set %s=1 to fail instead)", RequireEnv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &Server{t: t, bin: bin, dir: t.TempDir(), addr: addr}
	s.Restart()
	t.Cleanup(s.Kill)
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// URL is the redis:// URL of the server's database 0.
func (s *Server) URL() string { return "redis://" + s.addr + "/0" }

// Restart starts the server again on the same port after Kill (or
// KillPaused), with empty data, and returns once it answers PING.
func (s *Server) Restart() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.addr)
	s.cmd = exec.Command(s.bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--loglevel", "warning")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !s.Answers() {
		if time.Now().After(deadline) {
			s.Kill()
			s.t.Fatalf("redis-server on %s did not answer", s.addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Answers sends PING over a new connection and reports whether +PONG came
// back within about a second.
func (s *Server) Answers() bool {
	c, err := net.DialTimeout("tcp", s.addr, 100*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}

// Kill kills the server (letting a paused one run first) and waits for it
// to exit. It does nothing when the server is not running.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT)
	s.KillPaused()
}

// KillPaused kills the server without letting a paused one run first, so
// a round trip it holds fails rather than completes, and waits for it to
// exit. It does nothing when the server is not running.
func (s *Server) KillPaused() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Pause stops the server process (SIGSTOP): it accepts and answers
// nothing, so round trips hang, until Resume.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume lets a paused server run on (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	if s.cmd == nil {
		s.t.Fatalf("redis-server on %s is not running", s.addr)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
}
