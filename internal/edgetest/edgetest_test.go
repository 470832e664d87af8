package edgetest_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// A server from Serve answers a hand-written GET, and an upstream counts
// the connection that GET's proxy-less client opened and, once the
// server has closed it, its close.
func TestServeGetAndCount(t *testing.T) {
	up := edgetest.NewCountingUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, r.Host)
	})}
	addr := edgetest.Serve(t, srv.Serve, srv.Close)
	resp := edgetest.Get(t, addr, "/x")
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || string(body) != "app.example" {
		t.Fatalf("%d %q %v", resp.StatusCode, body, err)
	}
	edgetest.Get(t, up.Listener.Addr().String(), "/").Body.Close()
	if n := up.Conns.Load(); n != 1 {
		t.Fatalf("%d connections counted, want 1", n)
	}
	up.CloseClientConnections()
	edgetest.Poll(t, 10*time.Second, "the close counted", func() bool { return up.Open() == 0 })
}
