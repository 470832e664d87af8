package gateway

import (
	"net/http"
	"testing"
)

func TestApiwardenHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"X-Apiwarden-Owner": true, "X_apiwarden_owner": true, "X-APIWARDEN_TIER": true, "x_Apiwarden-Key_id": true,
		"X-Apiwarden": false, "X-Api-Key": false, "X-Apiwardens": true, "Xapiwarden-Owner": false,
	} {
		if got := apiwardenHeader(name); got != want {
			t.Errorf("apiwardenHeader(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestScrubHeadersUpgrade(t *testing.T) {
	cases := []struct {
		upgrade    []string
		connection string
		kept       bool
	}{
		{[]string{"websocket"}, "Upgrade", true},
		{[]string{"WebSocket"}, "keep-alive, upgrade", true},
		{[]string{"websocket"}, "keep-alive", false},
		{[]string{"h2c"}, "Upgrade, HTTP2-Settings", false},
		{[]string{"websocket, h2c"}, "Upgrade", false},
		{[]string{"websocket", "h2c"}, "Upgrade", false},
	}
	for _, c := range cases {
		h := http.Header{"Upgrade": c.upgrade, "Connection": {c.connection}, "Http2-Settings": {"AAMAAABkAARAAAAAAAIAAAAA"}}
		scrubHeaders(h)
		if _, ok := h["Upgrade"]; ok != c.kept {
			t.Errorf("Upgrade %q with Connection %q: kept %v, want %v", c.upgrade, c.connection, ok, c.kept)
		}
		if _, ok := h["Http2-Settings"]; ok != c.kept {
			t.Errorf("Upgrade %q: HTTP2-Settings kept %v", c.upgrade, ok)
		}
	}
}
