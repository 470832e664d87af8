package gateway

import (
	"net/netip"
	"net/url"
	"strings"

	"github.com/apiwarden/apiwarden/enforce"
)

// newFacts describes a request to the engine. Every entry point builds
// its facts here, so a request is judged the same whichever way it came
// in: the method upper-cased (routes list upper-case methods, and "get"
// must not slip past a GET route onto a looser one), the path as
// checkPath returned it (decoded and cleaned once, by the strict-path
// rules), and ?api_key= read only when the query names it (the engine
// uses it only where the route allows it).
func newFacts(key, method, path, rawQuery, origin string, client netip.Addr) enforce.Facts {
	f := enforce.Facts{HeaderKey: key, Method: strings.ToUpper(method), Path: path,
		ClientIP: client, Origin: origin}
	if strings.Contains(rawQuery, "api_key=") {
		if q, err := url.ParseQuery(rawQuery); err == nil {
			f.QueryKey = q.Get("api_key")
		}
	}
	return f
}
