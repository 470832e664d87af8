package gateway

import (
	"net/http"
	"strings"

	"github.com/apiwarden/apiwarden/api/httpapi"
)

// checkPath checks the path of a request as the client sent it against
// the strict-path rules (enforce.PathRules) and returns the path its route
// is matched on. The proxy, /v1/authorize and /v1/check all ask it, so a
// path is refused or read the same way whichever way it came in.
func (g *gate) checkPath(escaped string) (string, *httpapi.Error) {
	p, err := g.Paths.Normalize(escaped)
	if err != nil {
		// One message for every rule, so that a proxy that renders the
		// body itself (nginx, docs/integrations.md) can say the same.
		return "", &httpapi.Error{Code: httpapi.CodeInvalidPath, Message: invalidPathMessage}
	}
	return p, nil
}

const invalidPathMessage = "the request path has a semicolon, a backslash, an encoded slash, backslash or semicolon, a NUL, an encoded line break or a dot-dot segment, which servers read in different ways"

// escapedPath is the path of r as the client sent it: percent-encoding
// kept, no query. The server's decoded r.URL.Path has lost the
// difference between "/" and "%2F".
func escapedPath(r *http.Request) string {
	if uri := r.RequestURI; uri != "" && uri[0] == '/' {
		path, _, _ := strings.Cut(uri, "?")
		return path
	}
	return r.URL.EscapedPath() // absolute-form ("GET http://host/path") and "*"
}
