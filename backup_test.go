package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/internal/edgetest"
	"github.com/apiwarden/apiwarden/store"
)

// serveConfig writes a config for one in-process server with its own data
// directory, on one shared port (no upstream: /v1 and /admin together).
func serveConfig(t *testing.T, dataDir string) (path, addr string) {
	t.Helper()
	addr = edgetest.FreeAddr(t)
	body := "[server]\nlisten = \"" + addr + "\"\nadmin_listen = \"" + addr + "\"\ndata_dir = \"" + dataDir + "\"\n" +
		"[metrics]\nflush_interval = \"1h\"\n[routes_default]\npreset = \"protected\"\n"
	path = filepath.Join(t.TempDir(), "apiwarden.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, addr
}

// startServe runs `apiwarden serve` in-process and returns a stop function
// that waits for a clean exit.
func startServe(t *testing.T, cfgPath, addr string, env func(string) string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var logs bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "-config", cfgPath}, &bytes.Buffer{}, &logs, env) }()
	waitReady(t, "http://"+addr)
	return func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Fatalf("serve exited %d", code)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("serve did not stop")
		}
	}
}

func runCLI(t *testing.T, env func(string) string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if code := run(context.Background(), args, &out, &out, env); code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, out.String())
	}
	return out.String()
}

func TestBackupAndRestore(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	cfgPath, addr := serveConfig(t, dataDir)
	env := envOf(map[string]string{"APIWARDEN_ADMIN_TOKEN": "restore-test-admin-token-0123", "APIWARDEN_KEY_SECRET": "restore-test-secret-0123456789",
		"APIWARDEN_URL": "http://" + addr})
	stop := startServe(t, cfgPath, addr, env)

	var created struct {
		Key    struct{ ID string } `json:"key"`
		Secret string              `json:"secret"`
	}
	json.Unmarshal([]byte(runCLI(t, env, "keys", "create", "-tier", "basic", "-owner", "org_r", "-json")), &created)
	for range 5 {
		r := postJSON(t, "http://"+addr+"/v1/check", `{"key":"`+created.Secret+`","path":"/api/x"}`)
		if !strings.Contains(r, `"allowed":true`) {
			t.Fatalf("check before backup: %s", r)
		}
	}
	// No flush has run (the interval is an hour): the backup itself must
	// write the buffered records first.
	backupFile := filepath.Join(t.TempDir(), "backup.db")
	if out := runCLI(t, env, "backup", "-out", backupFile); !strings.Contains(out, "wrote "+backupFile) {
		t.Fatalf("backup output %q", out)
	}
	stop()
	rawBefore, rollupBefore := storedCounts(t, dataDir)
	if rawBefore != 5 || rollupBefore != 5 {
		t.Fatalf("history before backup: %d raw, %d rollup; want 5", rawBefore, rollupBefore)
	}

	// A fresh instance on the restored file serves the same keys and history.
	restoredDir := filepath.Join(t.TempDir(), "data")
	os.MkdirAll(restoredDir, 0o700)
	b, err := os.ReadFile(backupFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(restoredDir, store.FileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	raw, rollup := storedCounts(t, restoredDir)
	if raw != 5 || rollup != 5 {
		t.Fatalf("restored history: %d raw, %d rollup; want 5", raw, rollup)
	}
	cfg2, addr2 := serveConfig(t, restoredDir)
	env2 := envOf(map[string]string{"APIWARDEN_ADMIN_TOKEN": "restore-test-admin-token-0123", "APIWARDEN_KEY_SECRET": "restore-test-secret-0123456789",
		"APIWARDEN_URL": "http://" + addr2})
	stop2 := startServe(t, cfg2, addr2, env2)
	defer stop2()
	if out := runCLI(t, env2, "keys", "show", created.Key.ID); !strings.Contains(out, "org_r") {
		t.Fatalf("restored key: %s", out)
	}
	if r := postJSON(t, "http://"+addr2+"/v1/check", `{"key":"`+created.Secret+`","path":"/api/x"}`); !strings.Contains(r, `"allowed":true`) {
		t.Fatalf("the restored instance does not accept the key: %s", r)
	}
}

func postJSON(t *testing.T, url, body string) string {
	t.Helper()
	resp, err := httpPost(url, body)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
