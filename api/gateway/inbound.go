package gateway

import (
	"io"
	"net/http"
	"net/netip"

	"github.com/julienschmidt/httprouter"

	"github.com/apiwarden/apiwarden/api/httpapi"
)

// Inbound is what forward auth (/v1/authorize) and the check API
// (/v1/check) read of a request, gathered by whichever server received it:
// net/http here (inboundFromHTTP), fasthttp in api/fastedge. Authorize and
// Check decide on it alone, so both servers answer a request the same way.
// Strings must stay valid after the answer is written: a server that
// reuses its buffers copies them.
type Inbound struct {
	Method string
	// Path is the request path as the client sent it, percent-encoding
	// kept; RawQuery is its query, without the "?".
	Path     string
	RawQuery string
	// EnvoyForm says the request came to /v1/authorize/<path>: the
	// original request's path follows the endpoint's.
	EnvoyForm bool
	Peer      netip.Addr // the socket peer, never a forwarded address
	RequestID string
	// HeaderBytes is the request target plus every header's name and
	// value, 4 bytes more each (Host not counted): what max_header_bytes
	// bounds.
	HeaderBytes   int
	ContentLength int64 // -1: unknown
	Header        InboundHeader
	// Body is the request body, for /v1/check; nil reads BodyBytes.
	Body io.Reader
	// BodyBytes is the body when the server holds it in memory already
	// (fasthttp); nil reads as empty. It is only read, and only until the
	// call it is passed to returns.
	BodyBytes []byte
}

// InboundHeader holds the request headers forward auth and check read,
// each the first value sent, "" when absent (all values for
// X-Forwarded-For).
type InboundHeader struct {
	Token           string // X-Apiwarden-Token
	APIKey          string // X-Api-Key
	Authorization   string
	Origin          string
	UserAgent       string
	ContentType     string
	Country         string // the header GateOptions.CountryHeader names
	ForwardedMethod string // X-Forwarded-Method
	OriginalMethod  string // X-Original-Method
	ForwardedURI    string // X-Forwarded-Uri
	OriginalURI     string // X-Original-Uri
	ForwardedFor    []string
}

// CountryHeader is the header the client's country is read from ("": none).
func (s *Gateway) CountryHeader() string { return s.gate.CountryHeader }

// RequestIDs is the request-id generator the gateway answers with.
func (s *Gateway) RequestIDs() *httpapi.RequestIDs { return s.ids }

// inboundFromHTTP gathers what Authorize and Check read from a net/http
// request. It allocates nothing: every string is the request's own.
func (s *Gateway) inboundFromHTTP(r *http.Request, ps httprouter.Params) Inbound {
	h := r.Header
	in := Inbound{Method: r.Method, Path: escapedPath(r), RawQuery: r.URL.RawQuery,
		Peer: httpapi.PeerAddr(r), RequestID: httpapi.RequestIDFrom(r.Context()),
		HeaderBytes: headerBytes(r), ContentLength: r.ContentLength, Body: r.Body,
		Header: InboundHeader{
			Token:           h.Get("X-Apiwarden-Token"),
			APIKey:          h.Get("X-Api-Key"),
			Authorization:   h.Get("Authorization"),
			Origin:          h.Get("Origin"),
			UserAgent:       h.Get("User-Agent"),
			ContentType:     h.Get("Content-Type"),
			ForwardedMethod: h.Get("X-Forwarded-Method"),
			OriginalMethod:  h.Get("X-Original-Method"),
			ForwardedURI:    h.Get("X-Forwarded-Uri"),
			OriginalURI:     h.Get("X-Original-Uri"),
			ForwardedFor:    h.Values("X-Forwarded-For"),
		}}
	if suffix := ps.ByName("path"); suffix != "" && suffix != "/" {
		in.EnvoyForm = true
	}
	if s.gate.CountryHeader != "" {
		in.Header.Country = h.Get(s.gate.CountryHeader)
	}
	return in
}

// Answer is a decided forward-auth or check request, for the server that
// received it to write: the headers are already set in the header map
// Authorize or Check was given; Status and Body (nil: none) are the rest.
type Answer struct {
	Status int
	Body   []byte
}

// writeAnswer writes an answer through net/http.
func writeAnswer(w http.ResponseWriter, a Answer) {
	w.WriteHeader(a.Status)
	if a.Body != nil {
		_, _ = w.Write(a.Body)
	}
}
