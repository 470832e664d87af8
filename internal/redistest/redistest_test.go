package redistest_test

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/internal/redistest"
)

// answers reports whether a PING to addr gets +PONG within a second.
func answers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
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

// A started server answers; a paused one does not until resumed; a killed
// one refuses, and a restart brings it back on the same address.
func TestServerLifecycle(t *testing.T) {
	srv := redistest.Start(t)
	if !answers(srv.Addr()) {
		t.Fatal("a started server does not answer")
	}
	if srv.URL() != "redis://"+srv.Addr()+"/0" {
		t.Fatalf("URL %q", srv.URL())
	}
	srv.Pause()
	if answers(srv.Addr()) {
		t.Fatal("a paused server answered")
	}
	srv.Resume()
	if !answers(srv.Addr()) {
		t.Fatal("a resumed server does not answer")
	}
	srv.Kill()
	if c, err := net.DialTimeout("tcp", srv.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("a killed server accepted a connection")
	}
	srv.Restart()
	if !answers(srv.Addr()) {
		t.Fatal("a restarted server does not answer")
	}
}
