package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// adminClient talks to a running server's admin API.
type adminClient struct {
	base  string
	token string
	http  *http.Client
}

// newAdminClient is a client for the server at APIWARDEN_URL (default
// http://127.0.0.1:8081) with the token APIWARDEN_ADMIN_TOKEN; without a
// token it returns a usage error that says what to set.
func newAdminClient(getenv func(string) string) (*adminClient, error) {
	base := adminBaseURL(getenv)
	token := getenv("APIWARDEN_ADMIN_TOKEN")
	if token == "" {
		return nil, usageError{"set APIWARDEN_ADMIN_TOKEN to the server's admin token (and APIWARDEN_URL if it is not " + base + ")"}
	}
	return &adminClient{base: base, token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// adminBaseURL is APIWARDEN_URL without a trailing slash, or the default
// admin listener, http://127.0.0.1:8081.
func adminBaseURL(getenv func(string) string) string {
	if base := strings.TrimRight(getenv("APIWARDEN_URL"), "/"); base != "" {
		return base
	}
	return "http://127.0.0.1:8081"
}

// decodeAPIError reads the admin API's error body (docs/API.md), or
// describes a response without one.
func decodeAPIError(resp *http.Response, data []byte) error {
	var eb struct {
		Error struct {
			Code, Message string
			RequestID     string `json:"request_id"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
		return &apiError{Status: resp.StatusCode, Code: "HTTP_" + resp.Status, Message: strings.TrimSpace(string(data))}
	}
	return &apiError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message, RequestID: eb.Error.RequestID}
}

// apiError is an error body the server sent.
type apiError struct {
	Status    int
	Code      string
	Message   string
	RequestID string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s: %s (HTTP %d, request %s)", e.Code, e.Message, e.Status, e.RequestID)
}

// download streams a GET answer into w and returns the bytes written.
func (c *adminClient) download(ctx context.Context, path string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := (&http.Client{}).Do(req) // no overall timeout: a large file takes time
	if err != nil {
		return 0, fmt.Errorf("cannot reach apiwarden at %s: %w", c.base, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return 0, decodeAPIError(resp, data)
	}
	n, err := io.Copy(w, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("transfer ended after %d of %d bytes", n, resp.ContentLength)
	}
	return n, err
}

// do sends body as JSON (when not nil) and decodes a 2xx answer into out.
func (c *adminClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("X-Apiwarden-Actor", "cli")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach apiwarden at %s: %w", c.base, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return decodeAPIError(resp, data)
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = data
		return nil
	}
	return json.Unmarshal(data, out)
}
