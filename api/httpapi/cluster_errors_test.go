package httpapi_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/apiwarden/apiwarden/keys"
)

// An admin write the cluster's PostgreSQL did not take answers 503
// UNAVAILABLE, with the cause kept for the log and not sent.
func TestClusterUnavailableIs503(t *testing.T) {
	cause := errors.New("dial tcp 10.0.0.5:5432: connect: connection refused")
	e := httpapi.AsError(fmt.Errorf("keys: create: %w", fmt.Errorf("%w: %w", keys.ErrUnavailable, cause)))
	if e.Code != httpapi.CodeUnavailable || httpapi.StatusOf(e.Code) != 503 {
		t.Fatalf("got %s (%d), want UNAVAILABLE (503)", e.Code, httpapi.StatusOf(e.Code))
	}
	if !errors.Is(e.Err, cause) {
		t.Fatalf("the cause is not kept for the log: %v", e.Err)
	}
	if e.Message == "" || strings.Contains(e.Message, "10.0.0.5") {
		t.Fatalf("message %q", e.Message)
	}
}

// An acknowledgement or resolve the cluster's PostgreSQL did not take
// answers 503 UNAVAILABLE too.
func TestClusterAlertStoreUnavailableIs503(t *testing.T) {
	cause := errors.New("dial tcp 10.0.0.5:5432: connect: connection refused")
	e := httpapi.AsError(fmt.Errorf("alerting: acknowledge x: %w", fmt.Errorf("%w: %w", alerting.ErrUnavailable, cause)))
	if e.Code != httpapi.CodeUnavailable || httpapi.StatusOf(e.Code) != 503 || !errors.Is(e.Err, cause) {
		t.Fatalf("got %s (%d), err %v; want UNAVAILABLE (503) with the cause kept", e.Code, httpapi.StatusOf(e.Code), e.Err)
	}
	if strings.Contains(e.Message, "10.0.0.5") {
		t.Fatalf("message %q", e.Message)
	}
}
