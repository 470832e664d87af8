package api

import (
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/apiwarden/apiwarden/ui"
)

// dashboardRoutes serve the embedded dashboard at /ui/ and its login
// session under /admin/v1/session. The pages themselves are open: they
// hold no data, and everything they show comes from admin routes that
// need the session.
func (s *Server) dashboardRoutes() []Route {
	h := ui.New()
	serve := func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
		h.ServeHTTP(w, r)
		return nil
	}
	var rs []Route
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		rs = append(rs,
			Route{m, "/ui", "the dashboard (redirects to /ui/)", accessOpen, serve},
			Route{m, "/ui/*filepath", "the dashboard's page and assets", accessOpen, serve})
	}
	return append(rs, s.sessionRoutes()...)
}
