package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
)

// MaxJSONBody caps the JSON bodies DecodeJSON reads.
const MaxJSONBody = 1 << 20

// errorBody is the error body every answer uses (README.md, "The three ways in"): {"error":{"code","message","request_id"}}.
type errorBody struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// WriteError answers with the error body and the status of e.Code.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, e *Error) {
	WriteErrorStatus(w, r, log, e, StatusOf(e.Code))
}

// WriteErrorStatus is writeError with a status chosen by the caller (the
// forward-auth deny_status for nginx).
func WriteErrorStatus(w http.ResponseWriter, r *http.Request, log *slog.Logger, e *Error, status int) {
	rid := RequestIDFrom(r.Context())
	LogError(r.Context(), log, e, status, rid, r.Method, r.URL.Path)
	body := ErrorAnswer(w.Header(), e, status, rid)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// LogError logs the internal details of an error answer (e.Err), when it
// has any, with the request id: at warn level, error for a 5xx.
func LogError(ctx context.Context, log *slog.Logger, e *Error, status int, requestID, method, path string) {
	if e.Err == nil {
		return
	}
	level := slog.LevelWarn
	if status >= 500 {
		level = slog.LevelError
	}
	log.Log(ctx, level, "request failed", "request_id", requestID, "method", method,
		"path", path, "code", e.Code, "err", e.Err)
}

// ErrorAnswer sets in h what an error answer carries besides its status
// (WWW-Authenticate on a 401, Retry-After, and JSONBody's headers) and
// returns its body. Every edge answers errors through it, whichever
// server writes the answer.
func ErrorAnswer(h http.Header, e *Error, status int, requestID string) []byte {
	if status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
		// RFC 9110 asks a 401 to name the scheme it wants.
		h.Set("WWW-Authenticate", `Bearer realm="apiwarden"`)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	var body errorBody
	body.Error.Code, body.Error.Message, body.Error.RequestID = e.Code, e.Message, requestID
	b, _ := JSONBody(h, &body) // an errorBody always encodes
	return b
}

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := JSONBody(w.Header(), v)
	if err != nil {
		http.Error(w, `{"error":{"code":"INTERNAL","message":"encoding the response failed","request_id":""}}`, 500)
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// JSONBody encodes v as a JSON answer's body (HTML characters not
// escaped, one trailing newline) and sets its Content-Type,
// Content-Length and Cache-Control in h. On an error h is unchanged.
func JSONBody(h http.Header, v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	SetJSONHeaders(h, buf.Len())
	return buf.Bytes(), nil
}

// SetJSONHeaders sets in h the headers JSONBody sets for a body of n
// bytes, for a body encoded by hand.
func SetJSONHeaders(h http.Header, n int) {
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(n))
	h.Set("Cache-Control", "no-store")
}

// DecodeJSON reads exactly one JSON object into v: unknown fields,
// trailing data, a wrong content type and bodies over 1 MiB are errors.
// An empty body decodes as {} when allowEmpty is set.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any, allowEmpty bool) error {
	return DecodeJSONFrom(http.MaxBytesReader(w, r.Body, MaxJSONBody), r.Header.Get("Content-Type"), v, allowEmpty)
}

// DecodeJSONFrom is DecodeJSON over a body read from any server:
// contentType is the request's Content-Type header ("" when absent).
// It reads at most one byte more than MaxJSONBody of body.
func DecodeJSONFrom(body io.Reader, contentType string, v any, allowEmpty bool) error {
	data, err := ReadJSONBody(body, contentType)
	if err != nil {
		return err
	}
	return DecodeJSONBytes(data, v, allowEmpty)
}

// ReadJSONBody is the first half of DecodeJSONFrom: it refuses a content
// type other than JSON and reads the body, refusing one over MaxJSONBody.
func ReadJSONBody(body io.Reader, contentType string) ([]byte, error) {
	if err := JSONContentType(contentType); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(body, MaxJSONBody+1))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, Errorf(CodePayloadTooLarge, "request body is larger than %d bytes", MaxJSONBody)
		}
		return nil, Errorf(CodeInvalidRequest, "reading the request body: %v", err)
	}
	if err := JSONBodySize(len(data)); err != nil {
		return nil, err
	}
	return data, nil
}

// JSONContentType refuses, as DecodeJSONFrom does, a Content-Type header
// that is neither absent ("") nor application/json.
func JSONContentType(contentType string) error {
	if contentType == "" || contentType == "application/json" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/json" {
		return Errorf(CodeUnsupportedMedia, "send the body as application/json, got %q", contentType)
	}
	return nil
}

// JSONBodySize refuses, as DecodeJSONFrom does, a body of n bytes when n
// is over MaxJSONBody.
func JSONBodySize(n int) error {
	if n > MaxJSONBody {
		return Errorf(CodePayloadTooLarge, "request body is larger than %d bytes", MaxJSONBody)
	}
	return nil
}

// DecodeJSONBytes is the second half of DecodeJSONFrom: it decodes
// exactly one JSON object from data into v, refusing unknown fields and
// trailing data; an empty body decodes as {} when allowEmpty is set.
func DecodeJSONBytes(data []byte, v any, allowEmpty bool) error {
	if len(bytes.TrimSpace(data)) == 0 {
		if allowEmpty {
			return nil
		}
		return Errorf(CodeInvalidJSON, "request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Errorf(CodeInvalidJSON, "%s", describeJSONError(err, data))
	}
	if dec.More() {
		return Errorf(CodeInvalidJSON, "request body has data after the JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errorf(CodeInvalidJSON, "request body has data after the JSON object")
	}
	return nil
}

// describeJSONError says what is wrong with a body in words a client can act on.
func describeJSONError(err error, data []byte) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q must be %s, got %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
		}
		return fmt.Sprintf("the body must be a JSON object, got %s", typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: the body ends in the middle of a value"
	}
	msg := err.Error()
	if len(msg) > 5 && msg[:5] == "json:" {
		msg = msg[6:]
	}
	return msg
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	case "bool":
		return "true or false"
	}
	return "a number"
}
