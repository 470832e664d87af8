package admin

import (
	"net/http"
	"net/http/pprof"

	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/julienschmidt/httprouter"
)

// pprofRoutes serve Go's profiler behind the admin token, for measuring a
// running instance ([server] debug_pprof = true).
func pprofRoutes() []httpapi.Route {
	return []httpapi.Route{{Method: "GET", Path: "/debug/pprof/*name", Summary: "Go profiler (index, profile, heap, goroutine, trace…)", Access: httpapi.AccessAdmin, Handle: func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
		switch ps.ByName("name") {
		case "/cmdline":
			pprof.Cmdline(w, r)
		case "/profile":
			pprof.Profile(w, r)
		case "/symbol":
			pprof.Symbol(w, r)
		case "/trace":
			pprof.Trace(w, r)
		default:
			pprof.Index(w, r) // the index and named profiles (heap, allocs, goroutine, …)
		}
		return nil
	}}}
}
