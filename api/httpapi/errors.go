// Package httpapi holds what apiwarden's two HTTP edges share: the error
// body and the one table from error code to status, request ids, JSON
// answers and strict JSON bodies, and the route table with its router.
// The request edge (api/gateway) and the admin edge (api/admin) answer
// through it, so a code has the same status and body everywhere.
package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/decision"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/store"
)

// Error is what a handler returns to answer with an error body. Code
// picks the status from StatusOf; Message is shown to the client; Err,
// if set, is logged with the request id and never sent.
type Error struct {
	Code    string
	Message string
	Err     error
	// RetryAfter, when > 0, is sent as Retry-After (seconds).
	RetryAfter int
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Error codes beyond the decision codes (package decision): those of the
// admin API and of the HTTP layer itself. README.md lists them.
const (
	CodeUnauthorized        = "UNAUTHORIZED"
	CodeTooManyAttempts     = "TOO_MANY_ATTEMPTS"
	CodeAdminDisabled       = "ADMIN_TOKEN_NOT_CONFIGURED"
	CodeForbidden           = "FORBIDDEN"
	CodeInvalidJSON         = "INVALID_JSON"
	CodeInvalidRequest      = "INVALID_REQUEST"
	CodeInvalidParameter    = "INVALID_PARAMETER"
	CodeInvalidPath         = "INVALID_PATH"
	CodeResourceNotFound    = "RESOURCE_NOT_FOUND"
	CodeRouteNotFound       = "ROUTE_NOT_FOUND"
	CodeMethodNotAllowed    = "METHOD_NOT_ALLOWED"
	CodeConflict            = "CONFLICT"
	CodePayloadTooLarge     = "PAYLOAD_TOO_LARGE"
	CodeHeadersTooLarge     = "HEADERS_TOO_LARGE"
	CodeUnsupportedMedia    = "UNSUPPORTED_MEDIA_TYPE"
	CodeUpstreamUnreachable = "UPSTREAM_UNREACHABLE"
	CodeUpstreamTimeout     = "UPSTREAM_TIMEOUT"
	CodeStorageFull         = "STORAGE_FULL"
	CodeUnavailable         = "UNAVAILABLE"
	CodeInternal            = "INTERNAL"
)

// codeStatus is the one place that decides which status an error code
// has, decision codes included.
var codeStatus = map[string]int{
	decision.MissingKey.String():        http.StatusUnauthorized,
	decision.NotFound.String():          http.StatusUnauthorized,
	decision.Expired.String():           http.StatusUnauthorized,
	decision.Revoked.String():           http.StatusUnauthorized,
	decision.IPNotAllowed.String():      http.StatusForbidden,
	decision.OriginNotAllowed.String():  http.StatusForbidden,
	decision.InsufficientScope.String(): http.StatusForbidden,
	decision.RateLimited.String():       http.StatusTooManyRequests,
	decision.QuotaExceeded.String():     http.StatusTooManyRequests,

	CodeUnauthorized:        http.StatusUnauthorized,
	CodeTooManyAttempts:     http.StatusTooManyRequests,
	CodeAdminDisabled:       http.StatusUnauthorized,
	CodeForbidden:           http.StatusForbidden,
	CodeInvalidJSON:         http.StatusBadRequest,
	CodeInvalidRequest:      http.StatusBadRequest,
	CodeInvalidParameter:    http.StatusBadRequest,
	CodeInvalidPath:         http.StatusBadRequest,
	CodeResourceNotFound:    http.StatusNotFound,
	CodeRouteNotFound:       http.StatusNotFound,
	CodeMethodNotAllowed:    http.StatusMethodNotAllowed,
	CodeConflict:            http.StatusConflict,
	CodePayloadTooLarge:     http.StatusRequestEntityTooLarge,
	CodeHeadersTooLarge:     http.StatusRequestHeaderFieldsTooLarge,
	CodeUnsupportedMedia:    http.StatusUnsupportedMediaType,
	CodeUpstreamUnreachable: http.StatusBadGateway,
	CodeUpstreamTimeout:     http.StatusGatewayTimeout,
	CodeStorageFull:         http.StatusInsufficientStorage,
	CodeUnavailable:         http.StatusServiceUnavailable,
	CodeInternal:            http.StatusInternalServerError,
}

// StatusOf returns the HTTP status for an error code (500 if unknown).
func StatusOf(code string) int {
	if s, ok := codeStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// DecisionStatus is the status a decided request is answered with: 200
// when it may pass, else its denial's status.
func DecisionStatus(c decision.Code) int {
	if c.Allowed() {
		return http.StatusOK
	}
	return StatusOf(c.String())
}

// Denial is the error body of a denied request.
func Denial(c decision.Code) *Error {
	return &Error{Code: c.String(), Message: c.Message()}
}

// Errorf makes an Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsError turns any error a handler returns into an *Error: domain
// sentinels get their codes, anything unknown becomes INTERNAL with the
// details kept for the log. It is the one translation from the core
// packages' errors to the error body.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var param *analytics.ParamError
	if errors.As(err, &param) {
		return &Error{Code: CodeInvalidParameter, Message: param.Error()}
	}
	switch {
	case errors.Is(err, keys.ErrNotFound):
		return &Error{Code: CodeResourceNotFound, Message: "no key with this id"}
	case errors.Is(err, keys.ErrInvalid):
		return &Error{Code: CodeInvalidRequest, Message: trimPrefix(err.Error(), "keys: invalid request: ")}
	case errors.Is(err, keys.ErrAlreadyRevoked):
		return &Error{Code: CodeConflict, Message: "the key is revoked and can no longer be changed"}
	case errors.Is(err, keys.ErrBadCursor):
		return &Error{Code: CodeInvalidParameter, Message: "cursor: not a cursor this server issued"}
	case errors.Is(err, alerting.ErrNotFound):
		return &Error{Code: CodeResourceNotFound, Message: "no alert with this id"}
	case errors.Is(err, alerting.ErrNotFiring):
		return &Error{Code: CodeConflict, Message: "only a firing alert can be acknowledged"}
	case errors.Is(err, alerting.ErrAlreadyAcknowledged):
		return &Error{Code: CodeConflict, Message: "the alert is already acknowledged"}
	case errors.Is(err, alerting.ErrAlreadyResolved):
		return &Error{Code: CodeConflict, Message: "the alert is already resolved"}
	case errors.Is(err, store.ErrDiskFull):
		return &Error{Code: CodeStorageFull, Message: "the data disk is full; nothing was changed", Err: err}
	case errors.Is(err, keys.ErrUnavailable):
		return &Error{Code: CodeUnavailable, Message: "the cluster's PostgreSQL is unreachable or did not confirm; retry when it is back (keys already in force keep working)", Err: err}
	case errors.Is(err, alerting.ErrUnavailable):
		return &Error{Code: CodeUnavailable, Message: "the cluster's PostgreSQL is unreachable or did not confirm; retry when it is back", Err: err}
	case errors.Is(err, store.ErrClosed):
		return &Error{Code: CodeUnavailable, Message: "the server is shutting down", Err: err}
	}
	return &Error{Code: CodeInternal, Message: "internal error; the server log has details under this request id", Err: err}
}

func trimPrefix(s, prefix string) string {
	if len(s) > len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):]
	}
	return s
}
