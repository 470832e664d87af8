package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/store"
)

// Error is what a handler returns to answer with an error body. Code
// picks the status from codeStatus; Message is shown to the client; Err,
// if set, is logged with the request id and never sent.
type Error struct {
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Error codes. The decision codes are SPEC §5's; the rest belong to the
// admin API and the HTTP layer.
const (
	CodeValid             = "VALID"
	CodeMissingKey        = "MISSING_KEY"
	CodeNotFound          = "NOT_FOUND"
	CodeExpired           = "EXPIRED"
	CodeRevoked           = "REVOKED"
	CodeIPNotAllowed      = "IP_NOT_ALLOWED"
	CodeOriginNotAllowed  = "ORIGIN_NOT_ALLOWED"
	CodeInsufficientScope = "INSUFFICIENT_SCOPE"
	CodeRateLimited       = "RATE_LIMITED"
	CodeQuotaExceeded     = "QUOTA_EXCEEDED"

	CodeUnauthorized        = "UNAUTHORIZED"
	CodeTooManyAttempts     = "TOO_MANY_ATTEMPTS"
	CodeAdminDisabled       = "ADMIN_TOKEN_NOT_CONFIGURED"
	CodeForbidden           = "FORBIDDEN"
	CodeInvalidJSON         = "INVALID_JSON"
	CodeInvalidRequest      = "INVALID_REQUEST"
	CodeInvalidParameter    = "INVALID_PARAMETER"
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

// codeStatus is the one place that decides which status an error code has.
var codeStatus = map[string]int{
	CodeMissingKey:        http.StatusUnauthorized,
	CodeNotFound:          http.StatusUnauthorized,
	CodeExpired:           http.StatusUnauthorized,
	CodeRevoked:           http.StatusUnauthorized,
	CodeIPNotAllowed:      http.StatusForbidden,
	CodeOriginNotAllowed:  http.StatusForbidden,
	CodeInsufficientScope: http.StatusForbidden,
	CodeRateLimited:       http.StatusTooManyRequests,
	CodeQuotaExceeded:     http.StatusTooManyRequests,

	CodeUnauthorized:        http.StatusUnauthorized,
	CodeTooManyAttempts:     http.StatusTooManyRequests,
	CodeAdminDisabled:       http.StatusUnauthorized,
	CodeForbidden:           http.StatusForbidden,
	CodeInvalidJSON:         http.StatusBadRequest,
	CodeInvalidRequest:      http.StatusBadRequest,
	CodeInvalidParameter:    http.StatusBadRequest,
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

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// asError turns any error a handler returns into an *Error: domain
// sentinels get their codes, anything unknown becomes INTERNAL with the
// details kept for the log.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
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
	case errors.Is(err, store.ErrDiskFull):
		return &Error{Code: CodeStorageFull, Message: "the data disk is full; nothing was changed", Err: err}
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
