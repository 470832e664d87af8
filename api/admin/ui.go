package admin

import (
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/apiwarden/apiwarden/ui"
)

// dashboardRoutes serve the embedded dashboard at /ui/ and its login
// session under /admin/v1/session. The pages themselves are open: they
// hold no data, and everything they show comes from admin routes that
// need the session.
func (s *Server) dashboardRoutes() []httpapi.Route {
	h := ui.New()
	serve := func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
		h.ServeHTTP(w, r)
		return nil
	}
	var rs []httpapi.Route
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		rs = append(rs,
			httpapi.Route{Method: m, Path: "/ui", Summary: "the dashboard (redirects to /ui/)", Access: httpapi.AccessOpen, Handle: serve},
			httpapi.Route{Method: m, Path: "/ui/*filepath", Summary: "the dashboard's page and assets", Access: httpapi.AccessOpen, Handle: serve})
	}
	return append(rs, s.sessionRoutes()...)
}
