package cli

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":{"code":"UNAVAILABLE","message":"not ready: starting or draining"}}`))
			return
		}
		w.Write([]byte(`{"status":"ready","checks":{}}`))
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	cfgPath := filepath.Join(t.TempDir(), "apiwarden.toml")
	os.WriteFile(cfgPath, []byte("[server]\nlisten = \"0.0.0.0:1\"\nadmin_listen = \"0.0.0.0:"+port+"\"\n"+
		"[security]\nadmin_token = \"file:/nonexistent\"\n"), 0o600) // secrets are not read

	check := func(env map[string]string, args ...string) (string, error) {
		var out bytes.Buffer
		err := healthcheckCmd(context.Background(), args, &out, envOf(env))
		return out.String(), err
	}
	for name, c := range map[string]struct {
		env  map[string]string
		args []string
	}{
		"url":           {nil, []string{"-url", srv.URL + "/readyz"}},
		"config":        {nil, []string{"-config", cfgPath}},
		"APIWARDEN_URL": {map[string]string{"APIWARDEN_URL": srv.URL + "/"}, nil},
	} {
		out, err := check(c.env, c.args...)
		if err != nil || !strings.Contains(out, `"status":"ready"`) {
			t.Errorf("%s: %q, %v; want the readyz body and no error", name, out, err)
		}
	}

	ready = false
	if _, err := check(nil, "-config", cfgPath); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("draining server: %v, want an error naming the 503", err)
	}
	srv.Close()
	if _, err := check(nil, "-url", srv.URL+"/readyz"); err == nil {
		t.Error("stopped server: no error")
	}
	var ue usageError
	if _, err := check(nil, "extra"); !errors.As(err, &ue) {
		t.Errorf("positional argument: %v, want a usage error", err)
	}
	if _, err := check(nil, "-config", filepath.Join(t.TempDir(), "missing.toml")); err == nil {
		t.Error("missing config file: no error")
	}
}

func TestReadyzURLFromConfig(t *testing.T) {
	for admin, want := range map[string]string{
		`admin_listen = "0.0.0.0:9091"`:      "http://127.0.0.1:9091/readyz",
		`admin_listen = ":9091"`:             "http://127.0.0.1:9091/readyz",
		`admin_listen = "[::]:9091"`:         "http://[::1]:9091/readyz",
		`admin_listen = "10.1.2.3:9091"`:     "http://10.1.2.3:9091/readyz",
		`admin_listen = ""`:                  "http://127.0.0.1:9090/readyz", // shared with listen
		`# admin_listen left at its default`: "http://127.0.0.1:8081/readyz",
	} {
		path := filepath.Join(t.TempDir(), "apiwarden.toml")
		os.WriteFile(path, []byte("[server]\nlisten = \"0.0.0.0:9090\"\n"+admin+"\n"), 0o600)
		got, err := readyzURLFromConfig(path)
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", admin, got, err, want)
		}
	}
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
