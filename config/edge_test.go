package config

import (
	"strings"
	"testing"
)

// "auto" puts listen on net/http where it shares a listener with the
// admin routes (they run on net/http only), on the event loops where they
// can serve, and on fasthttp elsewhere.
func TestEdgeServer(t *testing.T) {
	const (
		own    = "[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:8081\"\n"
		shared = "[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:8080\"\n"
		proxy  = "[proxy]\nupstream = \"http://127.0.0.1:9000\"\n"
	)
	cases := []struct {
		name, toml, want string
	}{
		{"proxy, own listener", own + proxy, EdgeEvLoop},
		{"proxy, shared listener", shared + proxy, EdgeNetHTTP},
		{"proxy, admin_listen empty", "[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"\"\n" + proxy, EdgeNetHTTP},
		{"two ephemeral ports", "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n" + proxy, EdgeEvLoop},
		{"forward auth", own, EdgeFastHTTP},
		{"https upstream", own + "[proxy]\nupstream = \"https://127.0.0.1:9000\"\n", EdgeFastHTTP},
		{"reduce_idle_memory", own + "reduce_idle_memory = true\n" + proxy, EdgeFastHTTP},
		{"redis (decisions off the loops)", own + proxy + "[redis]\nurl = \"redis://127.0.0.1:6379/0\"\n", EdgeEvLoop},
		{"cluster (keys from the mirror)", own + proxy + "[cluster]\npostgres_url = \"postgres://u@127.0.0.1/db\"\n", EdgeEvLoop},
		{"net/http named", own + "edge = \"net/http\"\n" + proxy, EdgeNetHTTP},
		{"fasthttp named", own + "edge = \"fasthttp\"\n" + proxy, EdgeFastHTTP},
	}
	for _, tc := range cases {
		c, err := Parse([]byte(tc.toml), "edge.toml")
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := c.EdgeServer(); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
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
