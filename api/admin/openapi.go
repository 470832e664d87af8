package admin

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/julienschmidt/httprouter"
)

// The OpenAPI 3.1 description is built from the route table, so a route
// cannot exist without appearing in it; opDocs gives each route its
// parameters and bodies, and a test fails for a route without an entry.

// opDoc describes one operation beyond what the route table says.
type opDoc struct {
	Query    []param // query parameters
	Request  string  // component schema of the JSON body ("" = none)
	Response string  // component schema of the success answer ("" = no JSON body)
	Status   int     // success status; 0 = 200
	Content  string  // success media type when not JSON
}

type param struct {
	Name, Description string
	Enum              []string
}

func q(name, desc string, enum ...string) param {
	return param{Name: name, Description: desc, Enum: enum}
}

var (
	pFrom    = q("from", "start of the range: RFC 3339 or Unix seconds")
	pTo      = q("to", "end of the range: RFC 3339 or Unix seconds")
	pTZ      = q("tz", "IANA time zone for day boundaries (default server.timezone)")
	pCursor  = q("cursor", "opaque cursor from next_cursor")
	pLimit   = q("limit", "page size")
	pRollups = q("rollups", "true also deletes the rollup cells of the key, or of the owner and its keys (billing no longer sums them)", "true", "false")
	pBlank   = q("blank", "true also clears the name and meta of the key, or of the owner's keys", "true", "false")
)

// opDocs is keyed by "METHOD /path" as in the route table.
var opDocs = map[string]opDoc{
	"GET /healthz":               {Response: "Health"},
	"GET /readyz":                {Response: "Ready"},
	"GET /metrics":               {Content: "text/plain; version=0.0.4"},
	"GET /ui":                    {Content: "text/html"},
	"HEAD /ui":                   {Content: "text/html"},
	"GET /ui/*":                  {Content: "text/html, text/css, text/javascript, image/svg+xml"},
	"HEAD /ui/*":                 {Content: "text/html, text/css, text/javascript, image/svg+xml"},
	"GET /debug/pprof/*":         {Content: "application/octet-stream"},
	"GET /admin/v1/openapi.json": {Response: "OpenAPI"},

	"POST /admin/v1/session":        {Request: "Login", Response: "Session"},
	"GET /admin/v1/session":         {Response: "Session"},
	"POST /admin/v1/session/logout": {Response: "Session"},

	"POST /admin/v1/keys":                     {Request: "CreateKey", Response: "KeyWithSecret", Status: 201},
	"GET /admin/v1/keys":                      {Query: []param{q("owner_id", "only keys of this owner"), q("tier", "only keys of this tier"), q("status", "only keys with this status", "active", "revoked", "expired"), pCursor, pLimit}, Response: "KeyList"},
	"GET /admin/v1/keys/{id}":                 {Response: "Key"},
	"PATCH /admin/v1/keys/{id}":               {Request: "PatchKey", Response: "Key"},
	"DELETE /admin/v1/keys/{id}":              {Request: "Revoke", Response: "Key"},
	"POST /admin/v1/keys/{id}/rotate":         {Request: "Rotate", Response: "KeyWithSecret"},
	"GET /admin/v1/keys/{id}/events":          {Query: []param{pCursor, pLimit}, Response: "KeyEvents"},
	"DELETE /admin/v1/keys/{id}/data":         {Query: []param{pRollups, pBlank}, Response: "Erasure"},
	"DELETE /admin/v1/owners/{owner_id}/data": {Query: []param{pRollups, pBlank}, Response: "Erasure"},
	"GET /admin/v1/backup":                    {Content: "application/octet-stream"},
	"GET /admin/v1/cluster":                   {Response: "Cluster"},
	"GET /admin/v1/alerts":                    {Query: []param{q("state", "comma-separated states", "pending", "firing", "recovering", "resolved", "acknowledged"), q("severity", "comma-separated severities"), q("type", "comma-separated rule types"), q("rule", "rule name"), q("subject", "subject value, e.g. a key id"), pLimit}, Response: "AlertList"},
	"GET /admin/v1/alerts/{id}":               {Response: "AlertDetail"},
	"GET /admin/v1/alerts/rules":              {Response: "AlertRules"},
	"POST /admin/v1/alerts/{id}/ack":          {Request: "AlertNote", Response: "Alert"},
	"POST /admin/v1/alerts/{id}/resolve":      {Request: "AlertNote", Response: "Alert"},

	"GET /admin/v1/keys/{id}/usage":      {Response: "KeyUsage"},
	"GET /admin/v1/analytics/realtime":   {Response: "Realtime"},
	"GET /admin/v1/analytics/summary":    {Query: []param{q("period", "the period in progress", "hour", "day", "week", "month"), pTZ}, Response: "Summary"},
	"GET /admin/v1/analytics/timeseries": {Query: seriesParamDocs(), Response: "TimeSeries"},
	"GET /admin/v1/analytics/top":        {Query: []param{q("by", "what to rank", "route", "key", "owner", "tier"), q("metric", "what to rank by", "requests", "errors", "error_rate", "p95", "bytes"), q("period", "", "hour", "day", "week", "month"), pFrom, pTo, pTZ, pLimit}, Response: "Top"},
	"GET /admin/v1/analytics/export":     {Query: append(recordFilters(), q("format", "", "csv", "ndjson"), q("interval", "export a time series instead of raw records", "minute", "hour", "day")), Content: "text/csv, application/x-ndjson"},
	"GET /admin/v1/analytics/usage":      {Query: []param{q("month", "YYYY-MM in server.timezone"), q("group_by", "", "owner", "key"), q("format", "", "json", "csv")}, Response: "Billing"},
	"GET /admin/v1/requests":             {Query: append(recordFilters(), pCursor, pLimit), Response: "Requests"},
	"GET /admin/v1/stream":               {Content: "text/event-stream"},
	"POST /v1/check":                     {Request: "CheckRequest", Response: "CheckResponse"},
	"POST /v1/events":                    {Request: "EventBatch", Response: "EventsAccepted", Status: 202},
}

func seriesParamDocs() []param {
	return []param{pFrom, pTo, q("interval", "", "minute", "hour", "day"), pTZ,
		q("group_by", "", "route", "key", "owner", "tier", "status"),
		q("route", "filter"), q("key_id", "filter"), q("owner_id", "filter"), q("tier", "filter")}
}

func recordFilters() []param {
	return []param{pFrom, pTo, q("key_id", "filter"), q("route", "filter"), q("status", "a status (404) or a class (4xx)"), q("method", "filter")}
}

func init() {
	// Forward auth answers every method alike.
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		doc := opDoc{Query: []param{q("deny_status", "status of a rate-limit denial (nginx: 403)", "401", "403", "429")}}
		opDocs[m+" /v1/authorize"] = doc
		opDocs[m+" /v1/authorize/{path}"] = opDoc{}
	}
}

var routeParam = regexp.MustCompile(`[:*]([a-z_]+)`)

// openAPIPath turns a router path into an OpenAPI path template. A
// catch-all under /ui or /debug is one documented prefix.
func openAPIPath(p string) string {
	if i := strings.Index(p, "*"); i > 0 && (strings.HasPrefix(p, "/ui/") || strings.HasPrefix(p, "/debug/")) {
		return p[:i] + "*"
	}
	return routeParam.ReplaceAllString(p, "{$1}")
}

// OpenAPI returns the description of every route the admin listener serves.
func (s *Server) OpenAPI() map[string]any {
	paths := map[string]map[string]any{}
	for _, rt := range s.routes {
		path := openAPIPath(rt.Path)
		doc := opDocs[rt.Method+" "+path]
		op := map[string]any{"summary": rt.Summary, "operationId": operationID(rt.Method, path)}
		switch rt.Access {
		case httpapi.AccessAdmin, httpapi.AccessAdminShadowed:
			op["security"] = []any{map[string]any{"adminToken": []string{}}, map[string]any{"session": []string{}}}
		case httpapi.AccessService:
			op["security"] = []any{map[string]any{}, map[string]any{"serviceToken": []string{}}}
		default:
			op["security"] = []any{}
		}
		var params []any
		for _, name := range routeParam.FindAllStringSubmatch(rt.Path, -1) {
			if strings.HasSuffix(path, "*") {
				break
			}
			params = append(params, map[string]any{"name": name[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, p := range doc.Query {
			schema := map[string]any{"type": "string"}
			if len(p.Enum) > 0 {
				schema["enum"] = p.Enum
			}
			params = append(params, map[string]any{"name": p.Name, "in": "query", "description": p.Description, "schema": schema})
		}
		if params != nil {
			op["parameters"] = params
		}
		if doc.Request != "" {
			op["requestBody"] = map[string]any{"required": rt.Method == "POST" && doc.Request != "Revoke" && doc.Request != "Rotate" && doc.Request != "AlertNote",
				"content": map[string]any{"application/json": map[string]any{"schema": ref(doc.Request)}}}
		}
		status := doc.Status
		if status == 0 {
			status = 200
		}
		ok := map[string]any{"description": http.StatusText(status)}
		switch {
		case doc.Response != "":
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": ref(doc.Response)}}
		case doc.Content != "":
			ok["content"] = map[string]any{doc.Content: map[string]any{}}
		}
		op["responses"] = map[string]any{
			strconv.Itoa(status): ok,
			"default":            map[string]any{"description": "an error", "content": map[string]any{"application/json": map[string]any{"schema": ref("Error")}}},
		}
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		paths[path][strings.ToLower(rt.Method)] = op
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "apiwarden admin API", "version": s.version,
			"description": "Keys, analytics, alerts and forward auth. Every error has the body {\"error\":{\"code\",\"message\",\"request_id\"}}."},
		"paths": paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{
				"adminToken":   map[string]any{"type": "http", "scheme": "bearer", "description": "security.admin_token"},
				"session":      map[string]any{"type": "apiKey", "in": "cookie", "name": SessionCookie, "description": "the dashboard's session (" + SecureSessionCookie + " over HTTPS); state-changing calls also send X-CSRF-Token"},
				"serviceToken": map[string]any{"type": "apiKey", "in": "header", "name": "X-Apiwarden-Token", "description": "security.service_token; when it is not set, only loopback clients are answered, without a token"},
			},
			"schemas": schemas,
		},
	}
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

func operationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, part := range strings.FieldsFunc(path, func(r rune) bool { return r == '/' || r == '{' || r == '}' || r == '.' || r == '*' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	httpapi.WriteJSON(w, http.StatusOK, s.OpenAPI())
	return nil
}

// undocumentedRoutes lists routes without an opDocs entry.
func undocumentedRoutes(s *Server) []string {
	var out []string
	for _, rt := range s.routes {
		key := rt.Method + " " + openAPIPath(rt.Path)
		if _, ok := opDocs[key]; !ok {
			out = append(out, key)
		}
	}
	return out
}
