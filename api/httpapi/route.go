package httpapi

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/julienschmidt/httprouter"
)

// Access says who may call a route.
type Access int

const (
	AccessOpen    Access = iota // health checks, the dashboard's pages
	AccessAdmin                 // the admin token (or a dashboard session)
	AccessService               // /v1: the service token, or a loopback peer without one (checked by the handler)
	// AccessAdminShadowed is an admin route that the router cannot hold
	// beside a :param route at the same place; that route serves it. It
	// is listed for the OpenAPI document and the tests only.
	AccessAdminShadowed
)

// HandlerFunc is a handler that returns its error instead of writing it.
type HandlerFunc func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error

// Route is one entry of a listener's route table; the table is also what
// tests and the OpenAPI document enumerate, so no route can escape them.
type Route struct {
	Method  string
	Path    string
	Summary string
	Access  Access
	Handle  HandlerFunc
}

// Router serves a route table: each handler's error becomes the error
// body through AsError, unknown paths and methods answer
// ROUTE_NOT_FOUND and METHOD_NOT_ALLOWED, and a panic answers INTERNAL.
// authorize guards AccessAdmin routes; it may be nil when the table has
// none.
func Router(routes []Route, authorize func(*http.Request) *Error, log *slog.Logger) http.Handler {
	router := httprouter.New()
	router.RedirectTrailingSlash = false
	router.RedirectFixedPath = false
	for _, rt := range routes {
		if rt.Access == AccessAdminShadowed {
			continue
		}
		router.Handle(rt.Method, rt.Path, wrap(rt, authorize, log))
	}
	router.NotFound = Plain(log, func(w http.ResponseWriter, r *http.Request) error {
		return Errorf(CodeRouteNotFound, "no route %s %s", r.Method, r.URL.Path)
	})
	router.MethodNotAllowed = Plain(log, func(w http.ResponseWriter, r *http.Request) error {
		return Errorf(CodeMethodNotAllowed, "%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, w.Header().Get("Allow"))
	})
	router.PanicHandler = func(w http.ResponseWriter, r *http.Request, v any) {
		WriteError(w, r, log, &Error{Code: CodeInternal, Message: "internal error; the server log has details under this request id",
			Err: panicError{v}})
	}
	return router
}

type panicError struct{ v any }

func (p panicError) Error() string { return fmt.Sprint("panic: ", p.v) }

// wrap applies a route's access rule and turns its error into a response.
func wrap(rt Route, authorize func(*http.Request) *Error, log *slog.Logger) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		if rt.Access == AccessAdmin {
			if e := authorize(r); e != nil {
				WriteError(w, r, log, e)
				return
			}
		}
		if err := rt.Handle(w, r, ps); err != nil {
			WriteError(w, r, log, AsError(err))
		}
	}
}

// Plain adapts an error-returning handler to http.Handler.
func Plain(log *slog.Logger, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			WriteError(w, r, log, AsError(err))
		}
	})
}

// Bearer extracts the token of an "Authorization: Bearer" header.
func Bearer(h string) (string, bool) {
	const p = "bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	t := strings.TrimSpace(h[len(p):])
	return t, t != ""
}

// PeerAddr is the socket peer of a request.
func PeerAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}
