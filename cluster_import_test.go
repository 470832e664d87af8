package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apiwarden/apiwarden/internal/edgetest"
	"github.com/apiwarden/apiwarden/internal/pgtest"
	"github.com/apiwarden/apiwarden/internal/redistest"
	"github.com/apiwarden/apiwarden/metrics"
)

const importSecret = "import-test-secret-0123456789abcdef"

const importAdminToken = "import-test-admin-token-0123456789"

// importConfig writes a configuration for one instance on dataDir;
// postgresURL and redisURL empty leave [cluster] and [redis] out.
func importConfig(t *testing.T, dataDir, postgresURL, redisURL string) (path, listen, admin string) {
	t.Helper()
	listen, admin = edgetest.FreeAddr(t), edgetest.FreeAddr(t)
	cfg := fmt.Sprintf(`
[server]
listen = %q
admin_listen = %q
data_dir = %q

[security]
admin_token = %q
key_secret = %q
`, listen, admin, dataDir, importAdminToken, importSecret)
	if postgresURL != "" {
		cfg += fmt.Sprintf("\n[cluster]\npostgres_url = %q\ninstance_id = %q\n", postgresURL, filepath.Base(dataDir))
	}
	if redisURL != "" {
		cfg += fmt.Sprintf("\n[redis]\nurl = %q\n", redisURL)
	}
	path = filepath.Join(t.TempDir(), "apiwarden.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, listen, admin
}

// importAdminRequest sends an admin API request to a process and decodes the
// answer into out.
func importAdminRequest(t *testing.T, admin, method, path, body string, out any) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+admin+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+importAdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 || (out != nil && json.Unmarshal(b, out) != nil) {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
}

// importCheckCode asks a process's /v1/check about secret on GET /x.
func importCheckCode(t *testing.T, listen, secret string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"key": secret, "method": "GET", "path": "/x", "ip": "192.0.2.1"})
	resp, err := http.Post("http://"+listen+"/v1/check", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer struct {
		Code string `json:"code"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		t.Fatal(err)
	}
	return answer.Code
}

// runImportCmd runs `apiwarden cluster import` and returns its exit
// status and output.
func runImportCmd(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"cluster", "import"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

// importSummaryCount reads "imported N" of a step from the import's summary.
func importSummaryCount(t *testing.T, out, step string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^  ` + step + `\s+imported (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %s line in the summary:\n%s", step, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// The real command moves a single instance into a cluster: refused while
// the instance runs, then run twice on its stopped data file (the second
// time importing nothing), after which two cluster instances with fresh
// data directories accept the key the single instance issued and refuse
// the one it revoked.
func TestClusterImportCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	var pg pgtest.Server
	t.Cleanup(pg.Close)
	postgresURL := pg.Database(t)
	redisURL := redistest.Start(t).URL()

	single := t.TempDir()
	cfg, listen, admin := importConfig(t, single, "", "")
	p := startProcess(t, bin, cfg, listen, admin)
	var kept, revoked struct {
		Key struct {
			ID string `json:"id"`
		} `json:"key"`
		Secret string `json:"secret"`
	}
	importAdminRequest(t, admin, "POST", "/admin/v1/keys", `{"name":"kept","owner_id":"org_1"}`, &kept)
	importAdminRequest(t, admin, "POST", "/admin/v1/keys", `{"name":"leaked","owner_id":"org_1"}`, &revoked)
	importAdminRequest(t, admin, "DELETE", "/admin/v1/keys/"+revoked.Key.ID, "", nil)
	for range 3 {
		if code := importCheckCode(t, listen, kept.Secret); code != "VALID" {
			t.Fatalf("single instance: %s", code)
		}
	}

	importCfg, joinListen, joinAdmin := importConfig(t, single, postgresURL, redisURL)
	status, out := runImportCmd(t, bin, "-config", importCfg)
	if status != 1 || !strings.Contains(out, "stop that apiwarden first") {
		t.Fatalf("import while the instance runs: exit %d\n%s", status, out)
	}
	// A hot backup of the running instance can be imported meanwhile; a
	// dry run of it shows what would come in and writes nothing.
	backup := filepath.Join(t.TempDir(), "backup.db")
	cmd := exec.Command(bin, "backup", "-out", backup)
	cmd.Env = append(os.Environ(), "APIWARDEN_URL=http://"+admin, "APIWARDEN_ADMIN_TOKEN="+importAdminToken)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("backup: %v\n%s", err, b)
	}
	status, out = runImportCmd(t, bin, "-config", importCfg, "-from", backup, "-dry-run")
	if status != 0 || importSummaryCount(t, out, "keys") != 2 || !strings.Contains(out, "dry run: nothing was written") {
		t.Fatalf("dry run of a backup: exit %d\n%s", status, out)
	}

	if err := p.signal(t, syscall.SIGTERM); err != nil {
		t.Fatalf("single instance did not stop cleanly: %v\n%s", err, p.log.String())
	}

	status, out = runImportCmd(t, bin, "-config", importCfg)
	t.Logf("first import:\n%s", out)
	if status != 0 || importSummaryCount(t, out, "keys") != 2 || importSummaryCount(t, out, "buckets") == 0 {
		t.Fatalf("first import: exit %d, want 2 keys and the spent buckets imported\n%s", status, out)
	}
	records, cells := importSummaryCount(t, out, "records"), importSummaryCount(t, out, "rollups")
	if records < 3 || cells == 0 {
		t.Fatalf("first import: %d records and %d rollup cells, want the 3 checks and their cells\n%s", records, cells, out)
	}
	instance := filepath.Base(single)
	wantImportedUsage(t, postgresURL, instance, records)
	status, out = runImportCmd(t, bin, "-config", importCfg)
	t.Logf("second import:\n%s", out)
	if status != 0 || importSummaryCount(t, out, "keys") != 0 || importSummaryCount(t, out, "alerts") != 0 ||
		importSummaryCount(t, out, "buckets") != 0 || importSummaryCount(t, out, "records") != 0 ||
		importSummaryCount(t, out, "rollups") != 0 ||
		!strings.Contains(out, fmt.Sprintf("records  imported 0, skipped %d", records)) ||
		!strings.Contains(out, "keys     imported 0, skipped 2, conflicts 0; audit events imported 0, skipped 3") {
		t.Fatalf("second import: exit %d, want nothing imported\n%s", status, out)
	}

	for _, name := range []string{"a", "b"} {
		cfg, listen, admin := importConfig(t, filepath.Join(t.TempDir(), name), postgresURL, redisURL)
		startProcess(t, bin, cfg, listen, admin)
		if code := importCheckCode(t, listen, kept.Secret); code != "VALID" {
			t.Errorf("instance %s: imported key answered %s, want VALID", name, code)
		}
		if code := importCheckCode(t, listen, revoked.Secret); code != "REVOKED" {
			t.Errorf("instance %s: revoked key answered %s, want REVOKED", name, code)
		}
	}
	wantImportedUsage(t, postgresURL, instance, records)

	// The single instance joins the cluster on its own data file: its
	// shipper finds the imported blocks shipped and replaces its cells'
	// rows, so only its new requests are added.
	p = startProcess(t, bin, importCfg, joinListen, joinAdmin)
	for range 2 {
		if code := importCheckCode(t, joinListen, kept.Secret); code != "VALID" {
			t.Fatalf("the single instance in the cluster: %s", code)
		}
	}
	if err := p.signal(t, syscall.SIGTERM); err != nil {
		t.Fatalf("the single instance in the cluster did not stop cleanly: %v\n%s", err, p.log.String())
	}
	wantImportedUsage(t, postgresURL, instance, records+2)
}

// wantImportedUsage checks instance's rows in PostgreSQL: records raw
// records, each request id once, and daily total cells counting as many.
func wantImportedUsage(t *testing.T, url, instance string, records int) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rows, distinct, counted int
	if err := pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT request_id) FROM apiwarden_records WHERE instance_id = $1`,
		instance).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT coalesce(sum(count), 0) FROM apiwarden_cells
		WHERE instance_id = $1 AND interval = $2 AND dim = $3`, instance, int16(metrics.Daily), int16(metrics.DimTotal)).Scan(&counted); err != nil {
		t.Fatal(err)
	}
	// Under any other id they would be counted twice once the instance
	// on the data file ships them (a and b are the fresh instances).
	var elsewhere int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT instance_id FROM apiwarden_records
		UNION ALL SELECT instance_id FROM apiwarden_cells) AS x WHERE instance_id <> ALL($1)`,
		[]string{instance, "a", "b"}).Scan(&elsewhere); err != nil || elsewhere != 0 {
		t.Fatalf("%d records or cells under another instance id than %s's (%v)", elsewhere, instance, err)
	}
	if rows != records || distinct != records || counted != records {
		t.Fatalf("instance %s in PostgreSQL: %d records (%d distinct request ids), daily totals counting %d; want %d",
			instance, rows, distinct, counted, records)
	}
}
