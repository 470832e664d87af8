package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeAdmin answers the admin API's key routes with fixed bodies and
// records each request as "METHOD /path?query body".
type fakeAdmin struct {
	mu       sync.Mutex
	requests []string
}

const (
	fakeKey    = `{"id":"key_1","name":"planner","owner_id":"org_1","tier":"pro","status":"active","start":"wsk_ab","scopes":["forms:read"],"meta":{"team":"a"}}`
	fakeSecret = `{"key":` + fakeKey + `,"secret":"wsk_secret"}`
)

func (f *fakeAdmin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, strings.TrimSpace(r.Method+" "+r.URL.RequestURI()+" "+string(body)))
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("X-Apiwarden-Actor") != "cli" {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":{"code":"UNAUTHORIZED","message":"bad token","request_id":"req_1"}}`)
		return
	}
	switch {
	case r.Method == "POST" && r.URL.Path == "/admin/v1/keys":
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, fakeSecret)
	case r.Method == "GET" && r.URL.Path == "/admin/v1/keys" && r.URL.Query().Get("cursor") == "":
		io.WriteString(w, `{"keys":[`+fakeKey+`],"next_cursor":"c2"}`)
	case r.Method == "GET" && r.URL.Path == "/admin/v1/keys":
		io.WriteString(w, `{"keys":[{"id":"key_2","status":"revoked"}],"next_cursor":""}`)
	case r.Method == "GET" && r.URL.Path == "/admin/v1/keys/key_1":
		io.WriteString(w, fakeKey)
	case r.Method == "POST" && r.URL.Path == "/admin/v1/keys/key_1/rotate":
		io.WriteString(w, fakeSecret)
	case r.Method == "DELETE" && r.URL.Path == "/admin/v1/keys/key_1":
		io.WriteString(w, `{"id":"key_1","revoked_at":"2026-01-02T03:04:05Z","status":"revoked"}`)
	case r.Method == "GET" && r.URL.Path == "/admin/v1/keys/key_1/events":
		io.WriteString(w, `{"events":[{"key_id":"key_1","type":"created","actor":"cli","at":"2026-01-02T03:04:05Z"}]}`)
	default:
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":{"code":"RESOURCE_NOT_FOUND","message":"no such key","request_id":"req_2"}}`)
	}
}

// Every keys command sends the request its flags describe and prints the
// answer as text, or as JSON with -json.
func TestKeysCommands(t *testing.T) {
	for _, c := range []struct {
		args     []string
		requests []string
		output   []string // substrings of stdout
	}{
		{
			args: []string{"create", "-name", "planner", "-owner", "org_1", "-tier", "pro", "-scopes", "forms:read, forms:write",
				"-allowed-ips", "10.0.0.0/8", "-expires", "2030-01-01T00:00:00Z", "-meta", "team=a,env=prod"},
			requests: []string{`POST /admin/v1/keys {"name":"planner","owner_id":"org_1","tier":"pro","scopes":["forms:read","forms:write"],` +
				`"allowed_ips":["10.0.0.0/8"],"allowed_origins":null,"expires_at":"2030-01-01T00:00:00Z","meta":{"env":"prod","team":"a"}}`},
			output: []string{"id:", "key_1", "secret: wsk_secret", "shown once"},
		},
		{
			args:     []string{"list", "-owner", "org_1"},
			requests: []string{"GET /admin/v1/keys?limit=100&owner_id=org_1"},
			output:   []string{"ID  ", "key_1", "planner", "wsk_ab…"},
		},
		{
			args:     []string{"list", "-all", "-limit", "1"},
			requests: []string{"GET /admin/v1/keys?limit=1", "GET /admin/v1/keys?cursor=c2&limit=1"},
			output:   []string{"key_1", "key_2"},
		},
		{
			args:     []string{"show", "key_1"},
			requests: []string{"GET /admin/v1/keys/key_1"},
			output:   []string{"meta.team:", "scopes:", "forms:read"},
		},
		{
			args:     []string{"rotate", "key_1", "-grace", "1h"},
			requests: []string{`POST /admin/v1/keys/key_1/rotate {"grace_period":"1h"}`},
			output:   []string{"secret: wsk_secret"},
		},
		{
			args:     []string{"rotate", "key_1"},
			requests: []string{`POST /admin/v1/keys/key_1/rotate {}`},
			output:   []string{"secret: wsk_secret"},
		},
		{
			args:     []string{"revoke", "-reason", "leaked", "key_1"},
			requests: []string{`DELETE /admin/v1/keys/key_1 {"reason":"leaked"}`},
			output:   []string{"revoked key_1 at 2026-01-02T03:04:05Z\n"},
		},
		{
			args:     []string{"events", "key_1"},
			requests: []string{"GET /admin/v1/keys/key_1/events?limit=1000"},
			output:   []string{"TIME", "2026-01-02T03:04:05Z  created  cli    1"},
		},
		{
			args:     []string{"show", "key_1", "-json"},
			requests: []string{"GET /admin/v1/keys/key_1"},
			output:   []string{"{\n  \"id\": \"key_1\",\n"},
		},
	} {
		fake := &fakeAdmin{}
		srv := httptest.NewServer(fake)
		var out bytes.Buffer
		err := keysCmd(context.Background(), c.args, &out, envOf(map[string]string{"APIWARDEN_URL": srv.URL, "APIWARDEN_ADMIN_TOKEN": "tok"}))
		srv.Close()
		if err != nil {
			t.Errorf("%v: %v", c.args, err)
			continue
		}
		if got := strings.Join(fake.requests, "\n"); got != strings.Join(c.requests, "\n") {
			t.Errorf("%v: requests\n%s\nwant\n%s", c.args, got, strings.Join(c.requests, "\n"))
		}
		for _, want := range c.output {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%v: output lacks %q:\n%s", c.args, want, out.String())
			}
		}
	}
}

// The server's error body comes back as an error that names its code,
// status and request id.
func TestKeysServerError(t *testing.T) {
	srv := httptest.NewServer(&fakeAdmin{})
	defer srv.Close()
	err := keysCmd(context.Background(), []string{"show", "key_missing"}, io.Discard,
		envOf(map[string]string{"APIWARDEN_URL": srv.URL, "APIWARDEN_ADMIN_TOKEN": "tok"}))
	var ae *apiError
	if !errors.As(err, &ae) || ae.Code != "RESOURCE_NOT_FOUND" || ae.Status != 404 || ae.RequestID != "req_2" {
		t.Fatalf("%v, want the server's RESOURCE_NOT_FOUND", err)
	}
}

// Mistakes in the command line are usage errors, found before any
// request is sent.
func TestKeysUsageErrors(t *testing.T) {
	fake := &fakeAdmin{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	env := envOf(map[string]string{"APIWARDEN_URL": srv.URL, "APIWARDEN_ADMIN_TOKEN": "tok"})
	for args, want := range map[string]string{
		"":                         "usage: apiwarden keys <command>",
		"explode":                  `unknown keys command "explode"`,
		"show":                     "keys show takes one key id",
		"revoke a b":               "keys revoke takes one key id",
		"create -meta a=b,c":       `-meta: "c" is not key=value`,
		"create -expires soon":     `-expires: "soon" is neither an RFC 3339 time nor a positive duration`,
		"create -expires -1h":      `-expires: "-1h" is neither`,
		"list -limit many":         `invalid value "many" for flag -limit`,
		"events key_1 -no-such-fl": "flag provided but not defined: -no-such-fl",
	} {
		err := keysCmd(context.Background(), strings.Fields(args), io.Discard, env)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(ue.msg, want) {
			t.Errorf("keys %s: %v, want a usage error containing %q", args, err, want)
		}
	}
	if len(fake.requests) > 0 {
		t.Errorf("usage errors sent requests: %v", fake.requests)
	}
}
