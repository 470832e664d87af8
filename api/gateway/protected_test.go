package gateway

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/apiwarden/apiwarden/api/httpapi"
)

// Protected mode reads the request's socket peer (RemoteAddr, which
// net/http sets from the connection), never X-Forwarded-For. The app's
// TestServiceAPIWithoutTokenAnswersOnlyLoopback calls over real sockets.
func TestProtectedModeReadsTheSocketPeer(t *testing.T) {
	const token = "service-token-0123456789abcdef"
	for _, tc := range []struct {
		peer, forwardedFor, token, sent string
		wantCode                        string // "" = allowed
	}{
		{"127.0.0.1:5000", "", "", "", ""},
		{"127.0.0.2:5000", "", "", "", ""}, // all of 127/8 is loopback
		{"[::1]:5000", "", "", "", ""},
		{"[::ffff:127.0.0.1]:5000", "", "", "", ""},
		{"203.0.113.7:5000", "", "", "", httpapi.CodeForbidden},
		{"203.0.113.7:5000", "127.0.0.1", "", "", httpapi.CodeForbidden},
		{"[fd00::2]:5000", "::1", "", "", httpapi.CodeForbidden},
		{"not an address", "", "", "", httpapi.CodeForbidden},
		{"203.0.113.7:5000", "", token, token, ""},
		{"203.0.113.7:5000", "", token, "wrong", httpapi.CodeUnauthorized},
		{"127.0.0.1:5000", "", token, "", httpapi.CodeUnauthorized}, // a token binds loopback too
	} {
		g := newGate(GateOptions{ServiceToken: tc.token})
		r := httptest.NewRequest("POST", "/v1/check", nil)
		r.RemoteAddr = tc.peer
		if tc.forwardedFor != "" {
			r.Header.Set("X-Forwarded-For", tc.forwardedFor)
		}
		if tc.sent != "" {
			r.Header.Set("X-Apiwarden-Token", tc.sent)
		}
		e := g.checkServiceToken(r)
		switch {
		case tc.wantCode == "" && e != nil:
			t.Errorf("%+v: refused: %v", tc, e)
		case tc.wantCode != "" && (e == nil || e.Code != tc.wantCode):
			t.Errorf("%+v: %v, want %s", tc, e, tc.wantCode)
		case tc.wantCode == httpapi.CodeForbidden && !strings.Contains(e.Message, "security.service_token"):
			t.Errorf("%+v: message %q does not name security.service_token", tc, e.Message)
		}
	}
}
