package httpapi

import (
	"bytes"
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
	if e.Err != nil {
		level := slog.LevelWarn
		if status >= 500 {
			level = slog.LevelError
		}
		log.Log(r.Context(), level, "request failed", "request_id", rid, "method", r.Method,
			"path", r.URL.Path, "code", e.Code, "err", e.Err)
	}
	if status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		// RFC 9110 asks a 401 to name the scheme it wants.
		w.Header().Set("WWW-Authenticate", `Bearer realm="apiwarden"`)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	var body errorBody
	body.Error.Code, body.Error.Message, body.Error.RequestID = e.Code, e.Message, rid
	WriteJSON(w, status, &body)
}

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, `{"error":{"code":"INTERNAL","message":"encoding the response failed","request_id":""}}`, 500)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// DecodeJSON reads exactly one JSON object into v: unknown fields,
// trailing data, a wrong content type and bodies over 1 MiB are errors.
// An empty body decodes as {} when allowEmpty is set.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any, allowEmpty bool) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return Errorf(CodeUnsupportedMedia, "send the body as application/json, got %q", ct)
		}
	}
	body := http.MaxBytesReader(w, r.Body, MaxJSONBody)
	data, err := io.ReadAll(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return Errorf(CodePayloadTooLarge, "request body is larger than %d bytes", MaxJSONBody)
		}
		return Errorf(CodeInvalidRequest, "reading the request body: %v", err)
	}
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
