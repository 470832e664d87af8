package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/apiwarden/apiwarden/metrics"
)

// FuzzCheckAndAuthorize sends arbitrary /v1/check bodies and arbitrary
// forwarded request lines to /v1/authorize, over loopback, with a real
// key. Bad input is the caller's mistake: the answer is never a 5xx, and
// /v1/check always answers JSON. A request decided (and so recorded) had
// an HTTP method: anything else is refused with 400 before it can reach
// an export. Both edges get every input: the admin listener of proxy mode
// (net/http) and the fasthttp edge. Seeds:
// testdata/fuzz/FuzzCheckAndAuthorize.
func FuzzCheckAndAuthorize(f *testing.F) {
	var fixtures []*gateFixture
	for _, edge := range []string{"", "fasthttp"} {
		fixtures = append(fixtures, newGateFixture(f, gateConfig{serviceToken: "svc-token", edge: edge}))
	}
	client := &http.Client{}
	f.Fuzz(func(t *testing.T, body, method, uri string) {
		for _, fx := range fixtures {
			checkAndAuthorize(t, client, fx, body, method, uri)
		}
	})
}

// checkAndAuthorize sends one input to one edge.
func checkAndAuthorize(t *testing.T, client *http.Client, fx *gateFixture, body, method, uri string) {
	t.Helper()
	secret := fx.secrets["bench"] // unlimited: the fuzzer never runs out of tokens
	body = strings.ReplaceAll(body, "$KEY", secret)
	req, err := http.NewRequest("POST", fx.admin.URL+"/v1/check", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Apiwarden-Token", "svc-token")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 500 || !json.Valid(b) {
		t.Fatalf("/v1/check %q: %d %.300s", body, resp.StatusCode, b)
	}
	var asked struct{ Method string }
	if resp.StatusCode == http.StatusOK && json.Unmarshal([]byte(body), &asked) == nil &&
		asked.Method != "" && !metrics.ValidMethod(asked.Method) {
		t.Fatalf("/v1/check decided a request with method %q: %.300s", asked.Method, b)
	}

	req, err = http.NewRequest("GET", fx.admin.URL+"/v1/authorize", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Apiwarden-Token", "svc-token")
	req.Header.Set("X-Api-Key", secret)
	req.Header.Set("X-Original-Method", method)
	req.Header.Set("X-Original-URI", uri)
	resp, err = client.Do(req)
	if err != nil {
		return // a header value the client refuses to send
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		t.Fatalf("/v1/authorize %q %q: %d %.300s", method, uri, resp.StatusCode, b)
	}
	// The server reads a header value without its surrounding blanks.
	if sent := strings.Trim(method, " \t"); resp.StatusCode != http.StatusBadRequest && sent != "" && !metrics.ValidMethod(sent) {
		t.Fatalf("/v1/authorize decided a request with method %q: %d %.300s", method, resp.StatusCode, b)
	}
}
