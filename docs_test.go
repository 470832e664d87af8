package main

// The README, the guides in docs/ and the deployment files are checked
// against the program itself, so that they cannot drift from it:
//
//   - every apiwarden command line in a shell block (sh, bash, shell,
//     console) names a real subcommand and only flags it accepts, with
//     values of the right type: the line is run with -h appended, which
//     parses every flag and stops before anything runs;
//   - every TOML block is a configuration config.Parse accepts, and every
//     inline `section.key`, `[section] key` or `key = value` names a real
//     setting;
//   - the Dockerfile, the systemd unit and the Kubernetes manifests run
//     commands that parse, and agree with their configuration files on
//     ports, paths and the drain timeout.
//
// Nothing here builds a binary or starts a server.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/cli"
	"github.com/apiwarden/apiwarden/config"
)

// docFiles are the Markdown files whose commands and snippets are checked.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"README.md"}, files...)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDocCommandsParse(t *testing.T) {
	total := 0
	for _, file := range docFiles(t) {
		for _, b := range fencedBlocks(readFile(t, file)) {
			if !isShellBlock(b.lang) {
				continue
			}
			for _, c := range shellCommands(b.body, b.line+1, b.lang == "console") {
				where := fmt.Sprintf("%s:%d: %s", file, c.line, strings.Join(c.words, " "))
				if msg := checkTokenAssignments(c.words); msg != "" {
					t.Errorf("%s\n\t%s", where, msg)
				}
				args, ok := apiwardenArgs(c.words)
				if !ok {
					continue
				}
				total++
				if err := checkCommandLine(args, assignments(c.words)); err != nil {
					t.Errorf("%s\n\t%v", where, err)
				}
			}
		}
	}
	// README's own commands alone are more than this: finding fewer means
	// the extraction broke, not that the docs are right.
	if total < 5 {
		t.Fatalf("found only %d apiwarden command lines in README.md and docs/", total)
	}
}

// tokenAssignment is a literal admin, service or metrics token set in a
// shell line: APIWARDEN_ADMIN_TOKEN=... .
var (
	tokenAssignment = regexp.MustCompile(`^APIWARDEN_(ADMIN|SERVICE|METRICS)_TOKEN=(.*)$`)
	envName         = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// checkTokenAssignments finds a token written out in a command that
// serve would refuse: readers copy the docs' tokens. A value made by a
// command ($(openssl rand -hex 24)), a printf verb or "..." is not one.
func checkTokenAssignments(words []string) string {
	for _, w := range words {
		m := tokenAssignment.FindStringSubmatch(w)
		if m == nil || m[2] == "..." || strings.ContainsAny(m[2], "$%") {
			continue
		}
		if n := len(m[2]); n < config.MinTokenLength {
			return fmt.Sprintf("the token %q is %d characters; serve refuses fewer than %d (use $(openssl rand -hex 24))",
				m[2], n, config.MinTokenLength)
		}
	}
	return ""
}

// assignments are the environment a command line sets for itself
// (NAME=value before the command), without values a shell computes.
func assignments(words []string) map[string]string {
	env := map[string]string{}
	for _, w := range words {
		name, value, ok := strings.Cut(w, "=")
		if !ok || !envName.MatchString(name) {
			break
		}
		if !strings.Contains(value, "$") {
			env[name] = value
		}
	}
	return env
}

// checkCommandLine runs args with -h appended: a real subcommand parses
// its flags (rejecting unknown ones and badly typed values) and then
// prints its help. A -config that names a file in this repository is
// checked with `config check` too, in the environment the line sets.
func checkCommandLine(args []string, env map[string]string) error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // nothing may start: a command that ignored -h would stop at once
	noEnv := func(string) string { return "" }
	var out bytes.Buffer
	code := run(ctx, append(slices.Clone(args), "-h"), &out, &out, noEnv)
	if code != cli.ExitOK {
		// The first line says what is wrong; the rest is the usage text.
		first, _, _ := strings.Cut(strings.TrimSpace(out.String()), "\n")
		return fmt.Errorf("apiwarden %s -h: exit %d: %s", strings.Join(args, " "), code, first)
	}
	for i, a := range args {
		if a != "-config" || i+1 >= len(args) || filepath.IsAbs(args[i+1]) {
			continue
		}
		if _, err := os.Stat(args[i+1]); err != nil {
			continue // a file the reader writes, not one of ours
		}
		out.Reset()
		getenv := func(name string) string { return env[name] }
		if code := run(ctx, []string{"config", "check", "-config", args[i+1]}, &out, &out, getenv); code != cli.ExitOK {
			return fmt.Errorf("config check -config %s: exit %d:\n%s", args[i+1], code, out.String())
		}
	}
	return nil
}

func TestDocTOMLIsValidConfig(t *testing.T) {
	blocks := 0
	for _, file := range docFiles(t) {
		text := readFile(t, file)
		for _, b := range fencedBlocks(text) {
			if b.lang != "toml" {
				continue
			}
			blocks++
			if _, err := config.Parse([]byte(b.body), fmt.Sprintf("%s:%d", file, b.line)); err != nil {
				t.Errorf("TOML block at %s:%d:\n%v", file, b.line, err)
			}
		}
		for _, s := range inlineCode(text) {
			if msg := checkInlineSetting(s.code); msg != "" {
				t.Errorf("%s:%d: `%s`: %s", file, s.line, s.code, msg)
			}
		}
	}
	if blocks == 0 {
		t.Fatal("no TOML blocks found in docs/: the extraction broke")
	}
	for _, path := range []string{"deploy/docker/apiwarden.toml", "deploy/kubernetes/apiwarden.toml"} {
		if _, err := config.Parse([]byte(readFile(t, path)), path); err != nil {
			t.Errorf("%v", err)
		}
	}
}

// Inline settings are written as in a TOML file, with spaces around "=";
// `interval=hour` is a query parameter, not a setting.
var (
	// tiers.free.requests_per_hour, server.listen = "0.0.0.0:8080"
	dottedSetting = regexp.MustCompile(`^([a-z_]+(?:\.[a-z0-9_]+)+)(?: = \S.*)?$`)
	// [proxy] upstream, [[routes]] path = "/*"
	sectionSetting = regexp.MustCompile(`^\[\[?([a-z0-9_.]+)\]\]?(?: ([a-z0-9_]+)(?: = \S.*)?)?$`)
	// preset = "internal"
	bareSetting = regexp.MustCompile(`^([a-z][a-z0-9_]*) = \S.*$`)
)

// checkInlineSetting says what is wrong with an inline code span that
// looks like a setting, or "" when it is fine or not a setting at all.
func checkInlineSetting(code string) string {
	if m := sectionSetting.FindStringSubmatch(code); m != nil {
		path := strings.Split(m[1], ".")
		if !isConfigSection(path[0]) {
			return ""
		}
		if m[2] != "" {
			path = append(path, m[2])
		}
		if !configKeyExists(path) {
			return "no such setting: " + strings.Join(path, ".")
		}
		return ""
	}
	if m := dottedSetting.FindStringSubmatch(code); m != nil {
		path := strings.Split(m[1], ".")
		if isConfigSection(path[0]) && !configKeyExists(path) {
			return "no such setting: " + m[1]
		}
		return ""
	}
	if m := bareSetting.FindStringSubmatch(code); m != nil && !allConfigKeys()[m[1]] {
		return "no setting is called " + m[1]
	}
	return ""
}

func isConfigSection(name string) bool {
	_, ok := tomlField(reflect.TypeFor[config.Config](), name)
	return ok
}

// configKeyExists follows a dotted path through config.Config by TOML
// names; a map (tiers) takes any name, an array of tables its elements'.
func configKeyExists(path []string) bool {
	t := reflect.TypeFor[config.Config]()
	for _, name := range path {
		for t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Struct:
			f, ok := tomlField(t, name)
			if !ok {
				return false
			}
			t = f.Type
		case reflect.Map:
			t = t.Elem()
		default:
			return false
		}
	}
	return true
}

func tomlField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); strings.Split(f.Tag.Get("toml"), ",")[0] == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// allConfigKeys is every TOML name in the schema, at any depth.
func allConfigKeys() map[string]bool {
	keys := map[string]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			if name := strings.Split(f.Tag.Get("toml"), ",")[0]; name != "" && !keys[name] {
				keys[name] = true
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeFor[config.Config]())
	return keys
}

// Dockerfile: the commands it runs parse, and it agrees with the
// configuration it ships on ports, the data volume and the file's path.
func TestDockerfile(t *testing.T) {
	text := readFile(t, "Dockerfile")
	instr := dockerInstructions(text)
	one := func(name string) string {
		t.Helper()
		if len(instr[name]) == 0 {
			t.Fatalf("Dockerfile has no %s", name)
		}
		return instr[name][len(instr[name])-1]
	}
	jsonArgs := func(name, s string) []string {
		t.Helper()
		var list []string
		if err := json.Unmarshal([]byte(s), &list); err != nil || len(list) == 0 {
			t.Fatalf("Dockerfile %s %s: want exec form (a JSON array): %v", name, s, err)
		}
		return list
	}
	entry := jsonArgs("ENTRYPOINT", one("ENTRYPOINT"))
	cmd := jsonArgs("CMD", one("CMD"))
	hc := one("HEALTHCHECK")
	_, hcJSON, ok := strings.Cut(hc, "CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %s: no CMD", hc)
	}
	health := jsonArgs("HEALTHCHECK", hcJSON)
	if len(entry) != 1 || health[0] != entry[0] {
		t.Errorf("ENTRYPOINT %v and HEALTHCHECK %v should both be just the binary", entry, health)
	}
	for _, args := range [][]string{cmd, health[1:]} {
		if err := checkCommandLine(args, nil); err != nil {
			t.Error(err)
		}
	}

	const builtIn = "deploy/docker/apiwarden.toml"
	var cfgPath string
	for _, c := range instr["COPY"] {
		if f := strings.Fields(c); len(f) == 2 && f[0] == builtIn {
			cfgPath = f[1]
		}
	}
	if cfgPath == "" || flagValue(cmd, "-config") != cfgPath || flagValue(health, "-config") != cfgPath {
		t.Errorf("the image's configuration is copied to %q; CMD %v and HEALTHCHECK %v should both read it", cfgPath, cmd, health)
	}
	cfg, err := config.Parse([]byte(readFile(t, builtIn)), builtIn)
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{cfg.Server.Listen, cfg.Server.AdminListen} {
		host, port, _ := net.SplitHostPort(addr)
		if host != "0.0.0.0" {
			t.Errorf("%s listens on %s: inside a container that must be 0.0.0.0", builtIn, addr)
		}
		if !slices.Contains(strings.Fields(one("EXPOSE")), port) {
			t.Errorf("EXPOSE %s lacks port %s of %s", one("EXPOSE"), port, builtIn)
		}
	}
	if one("VOLUME") != cfg.Server.DataDir {
		t.Errorf("VOLUME %s, but %s has data_dir %s", one("VOLUME"), builtIn, cfg.Server.DataDir)
	}
	if uid, _, _ := strings.Cut(one("USER"), ":"); uid == "0" || strings.Trim(uid, "0123456789") != "" {
		t.Errorf("USER %s: want a numeric, non-root user (Kubernetes' runAsNonRoot can only check a number)", one("USER"))
	}
	build := strings.Join(instr["RUN"], "\n")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}"} {
		if !strings.Contains(build, want) {
			t.Errorf("the build step lacks %s", want)
		}
	}
	if len(instr["FROM"]) < 2 {
		t.Error("want a multi-stage build: the final image holds the binary, not the toolchain")
	}
}

// dockerInstructions maps each instruction to its arguments, in order,
// with continuation lines joined.
func dockerInstructions(text string) map[string][]string {
	out := map[string][]string{}
	text = strings.ReplaceAll(text, "\\\n", " ")
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		out[strings.ToUpper(name)] = append(out[strings.ToUpper(name)], strings.Join(strings.Fields(rest), " "))
	}
	return out
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// The systemd unit runs a command that parses, reloads with SIGHUP, waits
// longer than the drain, and keeps its hardening.
func TestSystemdUnit(t *testing.T) {
	const path = "deploy/apiwarden.service"
	text := readFile(t, path)
	unit := map[string][]string{} // "Service.ExecStart" -> values
	section := ""
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Errorf("%s: %q is not key=value", path, line)
			}
			unit[section+"."+k] = append(unit[section+"."+k], v)
		}
	}
	get := func(key string) string {
		if v := unit[key]; len(v) > 0 {
			return v[len(v)-1]
		}
		return ""
	}
	execStart := strings.Fields(get("Service.ExecStart"))
	if len(execStart) == 0 || filepath.Base(execStart[0]) != "apiwarden" {
		t.Fatalf("ExecStart=%s: want the apiwarden binary", get("Service.ExecStart"))
	}
	if err := checkCommandLine(execStart[1:], nil); err != nil {
		t.Error(err)
	}
	want := map[string]string{
		"Service.ExecReload":              "/bin/kill -HUP $MAINPID",
		"Service.KillSignal":              "SIGTERM",
		"Service.StateDirectory":          "apiwarden",
		"Service.NoNewPrivileges":         "yes",
		"Service.ProtectSystem":           "strict",
		"Service.ProtectHome":             "yes",
		"Service.PrivateTmp":              "yes",
		"Service.CapabilityBoundingSet":   "",
		"Service.MemoryDenyWriteExecute":  "yes",
		"Service.LockPersonality":         "yes",
		"Service.RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"Service.SystemCallArchitectures": "native",
		"Service.DynamicUser":             "yes",
		"Service.EnvironmentFile":         "/etc/apiwarden/apiwarden.env",
		"Service.ProtectKernelTunables":   "yes",
		"Service.ProtectControlGroups":    "yes",
		"Service.RestrictSUIDSGID":        "yes",
		"Service.RestrictNamespaces":      "yes",
		"Install.WantedBy":                "multi-user.target",
	}
	for key, v := range want {
		if _, ok := unit[key]; !ok || get(key) != v {
			t.Errorf("%s: want %s=%s, have %q", path, key, v, unit[key])
		}
	}
	if !slices.Contains(unit["Service.SystemCallFilter"], "@system-service") {
		t.Errorf("%s: SystemCallFilter lacks @system-service", path)
	}
	stop, err := time.ParseDuration(get("Service.TimeoutStopSec"))
	if secs, aerr := strconv.Atoi(get("Service.TimeoutStopSec")); aerr == nil {
		stop, err = time.Duration(secs)*time.Second, nil // systemd reads a bare number as seconds
	}
	if drain := config.Default().Server.ShutdownTimeout.D(); err != nil || stop < drain+10*time.Second {
		t.Errorf("%s: TimeoutStopSec=%s: want at least the default shutdown_timeout (%s) + 10s for the final writes", path, get("Service.TimeoutStopSec"), drain)
	}

	// systemd's own check, where systemd is installed. It insists that the
	// binary exists, so it checks a copy that runs a stand-in.
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: skipping systemd's own check")
		return
	}
	dir := t.TempDir()
	standIn := filepath.Join(dir, "apiwarden")
	os.WriteFile(standIn, []byte("#!/bin/sh\n"), 0o755)
	copied := filepath.Join(dir, "apiwarden.service")
	os.WriteFile(copied, []byte(strings.ReplaceAll(text, execStart[0], standIn)), 0o644)
	if out, err := exec.Command(analyze, "verify", copied).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", path, err, out)
	}
}

// The Kubernetes manifests agree with the configuration they mount:
// ports, probes, mounts, the termination grace period, and cluster mode
// for the replicas and their rolling update.
func TestKubernetesManifests(t *testing.T) {
	const cfgFile = "deploy/kubernetes/apiwarden.toml"
	cfg, err := config.Parse([]byte(readFile(t, cfgFile)), cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	dep := readFile(t, "deploy/kubernetes/deployment.yaml")
	find := func(pattern string) []string {
		t.Helper()
		m := regexp.MustCompile(pattern).FindStringSubmatch(dep)
		if m == nil {
			t.Fatalf("deployment.yaml does not match %s", pattern)
		}
		return m
	}

	var args []string
	if err := json.Unmarshal([]byte(find(`(?m)^\s+args: (\[.*\])$`)[1]), &args); err != nil {
		t.Fatal(err)
	}
	if err := checkCommandLine(args, nil); err != nil {
		t.Error(err)
	}
	if got, want := flagValue(args, "-config"), find(`(?m)^\s+- name: config\n\s+mountPath: (\S+)`)[1]+"/apiwarden.toml"; got != want {
		t.Errorf("serve reads %s, the ConfigMap is mounted as %s", got, want)
	}
	if got := find(`(?m)^\s+- name: data\n\s+mountPath: (\S+)`)[1]; got != cfg.Server.DataDir {
		t.Errorf("the data volume is mounted at %s, %s has data_dir %s", got, cfgFile, cfg.Server.DataDir)
	}
	port := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	if got := find(`(?m)^\s+- name: apiwarden\n\s+containerPort: (\d+)`)[1]; got != port(cfg.Server.Listen) {
		t.Errorf("containerPort apiwarden %s, listen is %s", got, cfg.Server.Listen)
	}
	if got := find(`(?m)^\s+- name: admin\n\s+containerPort: (\d+)`)[1]; got != port(cfg.Server.AdminListen) {
		t.Errorf("containerPort admin %s, admin_listen is %s", got, cfg.Server.AdminListen)
	}
	for _, probe := range []string{"startupProbe", "readinessProbe", "livenessProbe"} {
		m := find(probe + `:\n\s+httpGet:\n\s+path: (\S+)\n\s+port: (\S+)`)
		want := "/healthz"
		if probe == "readinessProbe" {
			want = "/readyz"
		}
		if m[1] != want || m[2] != "admin" {
			t.Errorf("%s: %s on port %s, want %s on admin", probe, m[1], m[2], want)
		}
	}
	if !strings.Contains(readFile(t, "deploy/kubernetes/service.yaml"), "targetPort: apiwarden") {
		t.Error("service.yaml must send traffic to apiwarden's port, not the app's")
	}
	grace, _ := strconv.Atoi(find(`terminationGracePeriodSeconds: (\d+)`)[1])
	sleep, _ := strconv.Atoi(find(`preStop:\n\s+sleep:\n\s+seconds: (\d+)`)[1])
	if drain := cfg.Server.ShutdownTimeout.D(); time.Duration(grace)*time.Second < time.Duration(sleep)*time.Second+drain+5*time.Second {
		t.Errorf("terminationGracePeriodSeconds %d: want at least the preStop sleep (%ds) + shutdown_timeout (%s) + 5s", grace, sleep, drain)
	}
	for _, want := range []string{"runAsNonRoot: true", "readOnlyRootFilesystem: true", "allowPrivilegeEscalation: false", `drop: ["ALL"]`,
		"replicas: 3", "type: RollingUpdate", "maxUnavailable: 0", "maxSurge: 1"} {
		if !strings.Contains(dep, want) {
			t.Errorf("deployment.yaml lacks %s", want)
		}
	}
	// Several replicas, each with an emptyDir, are only right in cluster
	// mode: the keys come from PostgreSQL, named in the Secret.
	find(`(?m)^\s+- name: data\n\s+emptyDir:`)
	checkEmptyDirSize(t, find(`(?m)^\s+- name: data\n\s+emptyDir:\n\s+sizeLimit: (\d+)Gi$`)[1], cfg.Cluster.SpoolMaxRecords)
	if cfg.Cluster.PostgresURL != "env:APIWARDEN_POSTGRES_URL" || cfg.Cluster.InstanceID != "" {
		t.Errorf("%s: want postgres_url from env:APIWARDEN_POSTGRES_URL and instance_id empty (the pod's name), have %q, %q",
			cfgFile, cfg.Cluster.PostgresURL, cfg.Cluster.InstanceID)
	}
	if !strings.Contains(readFile(t, "deploy/kubernetes/secret.example.yaml"), "APIWARDEN_POSTGRES_URL:") {
		t.Error("secret.example.yaml lacks APIWARDEN_POSTGRES_URL, which apiwarden.toml reads")
	}
}

// checkEmptyDirSize checks the data emptyDir's sizeLimit (in GiB) against
// the rule docs/deploy-kubernetes.md gives: twice the spool at its bound
// (42 bytes a record; bbolt keeps the pages a drained spool freed) plus
// 1 GiB for the rollups and the key mirror. Past the limit the kubelet
// evicts the pod, and its unshipped records with it.
func checkEmptyDirSize(t *testing.T, gib string, spoolMaxRecords int) {
	t.Helper()
	const recordBytes, rest = 42, 1 << 30
	limit, _ := strconv.ParseInt(gib, 10, 64)
	if need := 2*int64(spoolMaxRecords)*recordBytes + rest; limit<<30 < need {
		t.Errorf("deployment.yaml: the data emptyDir's sizeLimit %dGi is below 2 x %d records x %d B + 1 GiB = %.1f GiB",
			limit, spoolMaxRecords, recordBytes, float64(need)/(1<<30))
	}
}

// --- Markdown and shell extraction ---

type fenced struct {
	lang string
	line int // of the opening fence, 1-based
	body string
}

// fencedBlocks returns the fenced code blocks of a Markdown text.
func fencedBlocks(text string) []fenced {
	var blocks []fenced
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimLeft(lines[i], " ")
		fence := ""
		for _, f := range []string{"```", "~~~"} {
			if strings.HasPrefix(trimmed, f) {
				fence = f
			}
		}
		if fence == "" {
			continue
		}
		indent := len(lines[i]) - len(trimmed)
		lang := strings.Fields(strings.TrimLeft(trimmed, fence[:1]) + " ")
		b := fenced{line: i + 1}
		if len(lang) > 0 {
			b.lang = lang[0]
		}
		var body []string
		for i++; i < len(lines) && !strings.HasPrefix(strings.TrimLeft(lines[i], " "), fence); i++ {
			l := lines[i]
			l = l[min(indent, len(l)-len(strings.TrimLeft(l, " "))):]
			body = append(body, l)
		}
		b.body = strings.Join(body, "\n")
		blocks = append(blocks, b)
	}
	return blocks
}

func isShellBlock(lang string) bool {
	return slices.Contains([]string{"sh", "bash", "shell", "console", "sh-session"}, lang)
}

type codeSpan struct {
	code string
	line int
}

// inlineCode returns the `code spans` outside fenced blocks, each with
// the line it starts on; a span may run over a line break.
func inlineCode(text string) []codeSpan {
	lines := strings.Split(text, "\n")
	for _, b := range fencedBlocks(text) {
		n := strings.Count(b.body, "\n") + 3 // the fences, and the body's lines
		for i := b.line - 1; i < b.line-1+n && i < len(lines); i++ {
			lines[i] = ""
		}
	}
	flat := strings.Join(lines, "\n")
	var spans []codeSpan
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatchIndex(flat, -1) {
		code := strings.Join(strings.Fields(flat[m[2]:m[3]]), " ")
		spans = append(spans, codeSpan{code: code, line: strings.Count(flat[:m[0]], "\n") + 1})
	}
	return spans
}

type shellCommand struct {
	words []string
	line  int
}

var heredocStart = regexp.MustCompile(`<<-?\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?`)

// shellCommands splits a shell block into simple commands, each a list
// of words with quotes removed. It knows comments, line continuations,
// here-documents (their text is skipped), ; && || | & and redirections.
// In a console block only lines with a "$ " prompt are commands.
func shellCommands(body string, firstLine int, console bool) []shellCommand {
	var cmds []shellCommand
	lines := strings.Split(body, "\n")
	for i := 0; i < len(lines); i++ {
		start := i
		line := lines[i]
		if console {
			rest, ok := strings.CutPrefix(strings.TrimSpace(line), "$ ")
			if !ok {
				continue
			}
			line = rest
		}
		for strings.HasSuffix(line, "\\") && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, "\\") + " " + strings.TrimSpace(lines[i])
		}
		if m := heredocStart.FindStringSubmatch(line); m != nil {
			for i+1 < len(lines) && strings.TrimSpace(lines[i+1]) != m[1] {
				i++
			}
			i++ // the terminator
		}
		for _, words := range splitShell(line) {
			cmds = append(cmds, shellCommand{words: words, line: firstLine + start})
		}
	}
	return cmds
}

// splitShell tokenizes one logical line into simple commands.
func splitShell(line string) [][]string {
	var (
		cmds  [][]string
		words []string
		word  strings.Builder
		inW   bool // a word has started (it may be "")
		drop  bool // the next word is a redirection target
	)
	endWord := func() {
		if inW {
			if drop {
				drop = false
			} else {
				words = append(words, word.String())
			}
		}
		word.Reset()
		inW = false
	}
	endCmd := func() {
		endWord()
		if len(words) > 0 {
			cmds = append(cmds, words)
		}
		words = nil
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				j = len(line) - i - 1
			}
			word.WriteString(line[i+1 : i+1+j])
			inW = true
			i += j + 1
		case c == '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) {
					i++
				}
				word.WriteByte(line[i])
			}
			inW = true
		case c == '\\' && i+1 < len(line):
			i++
			word.WriteByte(line[i])
			inW = true
		case c == '$' && i+1 < len(line) && line[i+1] == '(':
			depth := 0
			j := i
			for ; j < len(line); j++ {
				if line[j] == '(' {
					depth++
				} else if line[j] == ')' {
					if depth--; depth == 0 {
						break
					}
				}
			}
			word.WriteString(line[i:min(j+1, len(line))])
			inW = true
			i = j
		case c == '#' && !inW:
			endCmd()
			return cmds
		case c == ' ' || c == '\t':
			endWord()
		case c == ';' || c == '|' || c == '&':
			if c == '&' && i > 0 && (line[i-1] == '>' || line[i-1] == '<') {
				continue // >&2
			}
			endCmd()
		case c == '>' || c == '<':
			if inW && strings.Trim(word.String(), "0123456789") == "" {
				word.Reset() // the 2 of 2>
				inW = false
			}
			endWord()
			for i+1 < len(line) && (line[i+1] == '>' || line[i+1] == '<' || line[i+1] == '&') {
				i++
			}
			drop = true
		default:
			word.WriteByte(c)
			inW = true
		}
	}
	endCmd()
	return cmds
}

// apiwardenArgs finds an apiwarden invocation in a simple command and
// returns its arguments: `apiwarden ...`, `/usr/local/bin/apiwarden ...`,
// `go run . ...`, behind environment assignments, sudo or env, after a
// `--` (kubectl exec), in `docker exec`, and `docker run` of an apiwarden
// image with arguments.
func apiwardenArgs(words []string) ([]string, bool) {
	i := 0
	for i < len(words) {
		w := words[i]
		switch {
		case regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`).MatchString(w):
			i++
		case w == "sudo" || w == "env":
			i++
			for i < len(words) && strings.HasPrefix(words[i], "-") {
				if slices.Contains([]string{"-u", "-g", "-C", "-D"}, words[i]) {
					i++
				}
				i++
			}
		case w == "exec" || w == "nohup" || w == "time" || w == "command":
			i++
		default:
			goto command
		}
	}
	return nil, false
command:
	words = words[i:]
	switch {
	case words[0] == "apiwarden" || strings.HasSuffix(words[0], "/apiwarden"):
		return words[1:], true
	case len(words) >= 3 && words[0] == "go" && words[1] == "run" && (words[2] == "." || words[2] == "./"):
		return words[3:], true
	case words[0] == "docker" && len(words) > 2 && (words[1] == "run" || words[1] == "exec"):
		rest, ok := skipDockerOptions(words[2:])
		if !ok || len(rest) == 0 {
			return nil, false
		}
		if words[1] == "exec" {
			return apiwardenArgs(rest[1:])
		}
		image := rest[0]
		if name, _, _ := strings.Cut(filepath.Base(image), ":"); name == "apiwarden" && len(rest) > 1 {
			return rest[1:], true
		}
		return nil, false
	}
	if j := slices.Index(words, "--"); j >= 0 {
		return apiwardenArgs(words[j+1:])
	}
	return nil, false
}

// skipDockerOptions drops the options of docker run or exec. An option it
// does not know makes it give up (ok false), so that the test says so
// instead of mistaking an option's value for the image.
func skipDockerOptions(words []string) (rest []string, ok bool) {
	withValue := []string{"-p", "--publish", "-v", "--volume", "-e", "--env", "--env-file", "--name",
		"-u", "--user", "-w", "--workdir", "--stop-timeout", "--mount", "--network", "--restart",
		"--tmpfs", "--entrypoint", "-l", "--label", "-m", "--memory", "--cpus", "--platform", "--pull",
		"--health-cmd", "--add-host", "--cap-add", "--cap-drop", "--security-opt", "--log-opt"}
	flags := []string{"--rm", "-d", "--detach", "-i", "-t", "-it", "-ti", "--interactive", "--tty",
		"--read-only", "--init"}
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case !strings.HasPrefix(w, "-"):
			return words[i:], true
		case strings.Contains(w, "=") || slices.Contains(flags, w):
		case slices.Contains(withValue, w):
			i++
		default:
			return nil, false
		}
	}
	return nil, true
}

// The extraction itself, on lines like the ones the docs hold.
func TestShellExtraction(t *testing.T) {
	for line, want := range map[string]string{
		`APIWARDEN_ADMIN_TOKEN=change-me go run . serve -config config.example.toml   # run it`:      `serve|-config|config.example.toml`,
		`go run . keys create -name "planner app" -owner org_42 -scopes forms:read`:                  `keys|create|-name|planner app|-owner|org_42|-scopes|forms:read`,
		`sudo -u nobody /usr/local/bin/apiwarden config check -config /etc/apiwarden/apiwarden.toml`: `config|check|-config|/etc/apiwarden/apiwarden.toml`,
		`apiwarden backup -out "apiwarden-$(date +%F).db" && ls -l`:                                  `backup|-out|apiwarden-$(date +%F).db`,
		`kubectl exec deploy/myapp -c apiwarden -- apiwarden version 2>&1 | tee log`:                 `version`,
		`docker run --rm -p 127.0.0.1:8081:8081 -v data:/data apiwarden:1.0.0 version`:               `version`,
		`docker exec -it apiwarden apiwarden healthcheck >/dev/null`:                                 `healthcheck`,
		`sudo install -m 0755 apiwarden /usr/local/bin/apiwarden`:                                    `(none)`,
		`docker run -d --name apiwarden apiwarden:1.0.0`:                                             `(none)`,
		`systemctl reload apiwarden # SIGHUP`:                                                        `(none)`,
	} {
		got := "(none)"
		for _, words := range splitShell(line) {
			if args, ok := apiwardenArgs(words); ok {
				got = strings.Join(args, "|")
			}
		}
		if got != want {
			t.Errorf("%s\n\tgot  %s\n\twant %s", line, got, want)
		}
	}
	cmds := shellCommands("cat > f <<'EOF'\napiwarden not-a-command\nEOF\napiwarden version \\\n  --x", 10, false)
	if len(cmds) != 2 || cmds[1].line != 13 || strings.Join(cmds[1].words, " ") != "apiwarden version --x" {
		t.Errorf("here-document and continuation: %+v", cmds)
	}
	if err := checkCommandLine([]string{"keys", "create", "-nmae", "x"}, nil); err == nil {
		t.Error("an unknown flag passed the check")
	}
	if err := checkCommandLine([]string{"frobnicate"}, nil); err == nil {
		t.Error("an unknown command passed the check")
	}
	for code, bad := range map[string]bool{
		"server.listen":               false,
		"[proxy] upstream":            false,
		"[[routes]] path = \"/*\"":    false,
		"tiers.free.burst_per_minute": false,
		"preset = \"internal\"":       false,
		"config.example.toml":         false,
		"server.lisen":                true,
		"[redis] uri":                 true,
		"presett = 1":                 true,
	} {
		if got := checkInlineSetting(code) != ""; got != bad {
			t.Errorf("`%s`: reported %v, want %v", code, got, bad)
		}
	}
}
