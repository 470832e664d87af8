package redistest_test

import (
	"net"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/internal/redistest"
)

// A started server answers; a paused one does not until resumed; a killed
// one refuses, and a restart brings it back on the same address.
func TestServerLifecycle(t *testing.T) {
	srv := redistest.Start(t)
	if !srv.Answers() {
		t.Fatal("a started server does not answer")
	}
	if srv.URL() != "redis://"+srv.Addr()+"/0" {
		t.Fatalf("URL %q", srv.URL())
	}
	srv.Pause()
	if srv.Answers() {
		t.Fatal("a paused server answered")
	}
	srv.Resume()
	if !srv.Answers() {
		t.Fatal("a resumed server does not answer")
	}
	srv.Kill()
	if c, err := net.DialTimeout("tcp", srv.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("a killed server accepted a connection")
	}
	srv.Restart()
	if !srv.Answers() {
		t.Fatal("a restarted server does not answer")
	}
}
