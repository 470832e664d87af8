package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/apiwarden/apiwarden/config"
)

// healthcheckCmd asks a running server whether it is ready and succeeds
// only on a 200 answer. It exists for container health checks: the image
// is distroless, without a shell or curl, so the binary checks itself.
//
// The URL is -url, else /readyz on server.admin_listen of -config, else
// /readyz on APIWARDEN_URL (default http://127.0.0.1:8081).
func healthcheckCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := newFlags("healthcheck", stdout)
	target := fs.String("url", "", "URL to ask (default: /readyz on the admin listener)")
	configPath := fs.String("config", "", "configuration file whose server.admin_listen to ask")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"usage: apiwarden healthcheck [-url URL | -config FILE] [-timeout 3s]"}
	}
	url := *target
	switch {
	case url != "":
	case *configPath != "":
		u, err := readyzURLFromConfig(*configPath)
		if err != nil {
			return err
		}
		url = u
	default:
		url = adminBaseURL(getenv) + "/readyz"
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return usageError{"healthcheck: " + err.Error()}
	}
	// No proxy: the server is local, and a container's HTTP_PROXY must not
	// decide whether it counts as healthy.
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(stdout, "%s: %s\n", url, strings.TrimSpace(string(body)))
	return nil
}

// readyzURLFromConfig is /readyz on the admin listener a configuration
// file sets. A wildcard address (0.0.0.0, ::, or none) is asked on
// loopback. Secrets are not resolved: the check needs only the address.
func readyzURLFromConfig(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("healthcheck: %w", err)
	}
	cfg, err := config.Parse(data, path)
	if err != nil {
		return "", err
	}
	addr := cfg.Server.AdminListen
	if addr == "" {
		addr = cfg.Server.Listen
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("healthcheck: server.admin_listen %q: %w", addr, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}
