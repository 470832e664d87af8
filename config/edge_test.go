package config

import (
	"strings"
	"testing"
)

// "auto" puts listen on fasthttp only where it has a listener of its own:
// the admin routes run on net/http.
func TestEdgeServer(t *testing.T) {
	cases := []struct {
		edge, listen, admin, want string
	}{
		{EdgeAuto, "127.0.0.1:8080", "127.0.0.1:8081", EdgeFastHTTP},
		{EdgeAuto, "127.0.0.1:8080", "127.0.0.1:8080", EdgeNetHTTP},
		{EdgeAuto, "127.0.0.1:8080", "", EdgeNetHTTP},
		{EdgeAuto, "127.0.0.1:0", "127.0.0.1:0", EdgeFastHTTP}, // two ephemeral ports
		{EdgeNetHTTP, "127.0.0.1:8080", "127.0.0.1:8081", EdgeNetHTTP},
		{EdgeFastHTTP, "127.0.0.1:8080", "127.0.0.1:8081", EdgeFastHTTP},
	}
	for _, tc := range cases {
		s := Server{Edge: tc.edge, Listen: tc.listen, AdminListen: tc.admin}
		if got := s.EdgeServer(); got != tc.want {
			t.Errorf("edge %q, listen %q, admin_listen %q: %q, want %q", tc.edge, tc.listen, tc.admin, got, tc.want)
		}
	}
	if Default().Server.Edge != EdgeAuto {
		t.Errorf("default edge %q, want %q", Default().Server.Edge, EdgeAuto)
	}
}

// The event-loop edge is taken for a proxy to a plain-HTTP upstream on a
// listener of its own, with Redis and in a cluster too (decisions that
// may wait are made off its loops, api/loopedge/async.go).
func TestEvLoopEdgeForAPlainProxy(t *testing.T) {
	const base = "[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:8081\"\nedge = \"evloop\"\n"
	cases := []struct {
		name, toml, want string // want: a part of the problem, "" for none
	}{
		{"proxy", base + "[proxy]\nupstream = \"http://127.0.0.1:9000\"\n", ""},
		{"no proxy", base, "serves the proxy only"},
		{"https upstream", base + "[proxy]\nupstream = \"https://127.0.0.1:9000\"\n", "serves the proxy only"},
		{"redis", base + "[proxy]\nupstream = \"http://127.0.0.1:9000\"\n[redis]\nurl = \"redis://127.0.0.1:6379/0\"\n", ""},
		{"cluster", base + "[proxy]\nupstream = \"http://127.0.0.1:9000\"\n[cluster]\npostgres_url = \"postgres://u@127.0.0.1/db\"\n", ""},
		{"shared listener", "[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:8080\"\nedge = \"evloop\"\n[proxy]\nupstream = \"http://127.0.0.1:9000\"\n", "needs a listener of its own"},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(tc.toml), "edge.toml")
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want a problem saying %q", tc.name, err, tc.want)
		}
	}
}
