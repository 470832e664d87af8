package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/app"
	"github.com/apiwarden/apiwarden/config"
	"github.com/apiwarden/apiwarden/internal/edgetest"
	"github.com/apiwarden/apiwarden/store"
)

// exampleConfig writes config.example.toml with its listeners and data
// directory moved somewhere private to the test.
func exampleConfig(t *testing.T) (path, adminAddr string) {
	t.Helper()
	data, err := os.ReadFile("config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	adminAddr = edgetest.FreeAddr(t)
	text := string(data)
	for old, repl := range map[string]string{
		`listen = "127.0.0.1:8080"`:       `listen = "` + edgetest.FreeAddr(t) + `"`,
		`admin_listen = "127.0.0.1:8081"`: `admin_listen = "` + adminAddr + `"`,
		`data_dir = "./data"`:             `data_dir = "` + filepath.Join(dir, "data") + `"`,
	} {
		if !strings.Contains(text, old) {
			t.Fatalf("config.example.toml no longer contains %s", old)
		}
		text = strings.Replace(text, old, repl, 1)
	}
	path = filepath.Join(dir, "apiwarden.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, adminAddr
}

func httpPost(url, body string) (string, error) {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func waitReady(t *testing.T, base string) {
	t.Helper()
	edgetest.Poll(t, 10*time.Second, "the server ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// The README's promise: serve runs on config.example.toml and the keys
// client creates and lists a key against it.
func TestServeExampleConfigAndKeysClient(t *testing.T) {
	cfgPath, adminAddr := exampleConfig(t)
	env := envOf(map[string]string{"APIWARDEN_ADMIN_TOKEN": "e2e-serve-admin-token-0123", "APIWARDEN_URL": "http://" + adminAddr})
	ctx, cancel := context.WithCancel(context.Background())
	var serveErr bytes.Buffer
	done := make(chan int)
	go func() { done <- run(ctx, []string{"serve", "-config", cfgPath}, &bytes.Buffer{}, &serveErr, env) }()
	waitReady(t, "http://"+adminAddr)

	var out bytes.Buffer
	if code := run(context.Background(), []string{"keys", "create", "-name", "e2e", "-owner", "org_1", "-tier", "premium",
		"-scopes", "forms:read", "-json"}, &out, &out, env); code != 0 {
		t.Fatalf("keys create: exit %d: %s", code, out.String())
	}
	var created struct {
		Key struct {
			ID, Tier string
		} `json:"key"`
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(out.Bytes(), &created); err != nil || created.Secret == "" || created.Key.Tier != "premium" {
		t.Fatalf("create output %s (%v)", out.String(), err)
	}
	out.Reset()
	if code := run(context.Background(), []string{"keys", "list"}, &out, &out, env); code != 0 || !strings.Contains(out.String(), created.Key.ID) {
		t.Fatalf("keys list: exit %d: %s", code, out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"keys", "rotate", created.Key.ID, "-grace", "1h"}, &out, &out, env); code != 0 ||
		!strings.Contains(out.String(), "secret: wsk_") || strings.Contains(out.String(), created.Secret) {
		t.Fatalf("keys rotate: exit %d: %s", code, out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"keys", "revoke", created.Key.ID, "-reason", "test"}, &out, &out, env); code != 0 {
		t.Fatalf("keys revoke: exit %d: %s", code, out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"keys", "show", "key_missing"}, &out, &out, env); code != 1 ||
		!strings.Contains(out.String(), "RESOURCE_NOT_FOUND") {
		t.Fatalf("keys show missing: exit %d: %s", code, out.String())
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d: %s", code, serveErr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	if strings.Contains(serveErr.String(), created.Secret[4:]) {
		t.Fatal("the secret appears in the server log")
	}
}

func TestSecondInstanceOnSameDataDir(t *testing.T) {
	cfg := config.Default()
	cfg.Server.DataDir = t.TempDir()
	cfg.Server.Listen, cfg.Server.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Security.AdminToken, cfg.Security.KeySecret = "", "" // config.Load resolves the env: references
	first, err := app.New(cfg, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- first.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// The second instance gives up with ErrLocked (the store's lock
	// timeout) instead of waiting for the file; how long the wait lasts is
	// the store's constant, not something this test times.
	_, err = app.New(cfg, app.Options{})
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second instance: %v", err)
	}
}

func TestConfigCheckPrintsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(path, []byte("[server]\nlisen = \"x\"\n[tiers.free]\nrequests_per_hour = -1\n"), 0o600)
	var out bytes.Buffer
	code := run(context.Background(), []string{"config", "check", "-config", path}, &out, &out, envOf(nil))
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{"line 2: server.lisen is not a known setting", "line 4: tiers.free.requests_per_hour must be > 0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run(context.Background(), []string{"config", "check", "-config", "config.example.toml"}, &out, &out, envOf(nil)); code != 0 {
		t.Fatalf("example: exit %d: %s", code, out.String())
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"serve", "-nope"}, {"keys"}, {"keys", "explode"}, {"config"}, {"serve", "extra"}} {
		var out bytes.Buffer
		if code := run(context.Background(), args, &out, &out, envOf(nil)); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, out.String())
		}
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"version"}, &out, &out, envOf(nil)); code != 0 || !strings.HasPrefix(out.String(), "apiwarden ") {
		t.Errorf("version: %d %q", code, out.String())
	}
	if code := run(context.Background(), []string{"keys", "list"}, &out, &out, envOf(nil)); code != 2 {
		t.Errorf("keys without a token: exit %d, want 2", code)
	}
}
