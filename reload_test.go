package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// SIGHUP reloads tiers from the file: a changed limit takes effect, and a
// broken file is rejected with the old configuration left in force.
func TestReloadOnSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	addr := edgetest.FreeAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "apiwarden.toml")
	write := func(burst int, extra string) {
		// No calendar rules: the default Saturday and peak-season multipliers
		// would change the limit this test reads on those days.
		body := fmt.Sprintf("calendar = []\n\n[server]\nlisten = %q\nadmin_listen = %q\ndata_dir = %q\n\n[tiers.basic]\nrequests_per_hour = 1000\nburst_per_minute = %d\n%s",
			addr, addr, filepath.Join(t.TempDir(), "data"), burst, extra)
		if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(2, "")
	p := startProcess(t, bin, cfgPath, addr, addr, "APIWARDEN_ADMIN_TOKEN=reload-test-admin-token-0123")
	env := envOf(map[string]string{"APIWARDEN_ADMIN_TOKEN": "reload-test-admin-token-0123", "APIWARDEN_URL": "http://" + addr})
	var created struct {
		Secret string `json:"secret"`
	}
	json.Unmarshal([]byte(runCLI(t, env, "keys", "create", "-tier", "basic", "-json")), &created)

	minuteLimit := func() int64 {
		var r struct {
			Allowed   bool
			RateLimit struct{ Limit int64 } `json:"ratelimit"`
		}
		json.Unmarshal([]byte(postJSON(t, "http://"+addr+"/v1/check", `{"key":"`+created.Secret+`"}`)), &r)
		return r.RateLimit.Limit
	}
	if got := minuteLimit(); got != 2 {
		t.Fatalf("minute limit %d before reload, want 2", got)
	}

	write(40, "")
	p.cmd.Process.Signal(syscall.SIGHUP)
	edgetest.Poll(t, 10*time.Second, "the new limit after SIGHUP", func() bool { return minuteLimit() == 40 })

	write(7, "[tiers.basic.oops]\nx = 1\n") // not a valid file
	p.cmd.Process.Signal(syscall.SIGHUP)
	edgetest.Poll(t, 10*time.Second, "the rejection in the log", func() bool { return strings.Contains(p.log.String(), "reload rejected") })
	if got := minuteLimit(); got != 40 {
		t.Fatalf("minute limit %d after a broken reload, want the old 40", got)
	}
	if !strings.Contains(p.log.String(), "tiers.basic.oops") {
		t.Errorf("the log does not say what was wrong:\n%s", p.log.String())
	}
	if err := p.signal(t, syscall.SIGTERM); err != nil {
		t.Fatalf("exit after reloads: %v", err)
	}
}
