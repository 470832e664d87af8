package config

import "testing"

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
