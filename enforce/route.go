package enforce

import (
	"fmt"
	"strings"

	"github.com/apiwarden/apiwarden/limiter"
)

// Preset is what a route demands of a request (README.md, "Routes" under "What apiwarden decides";
// config.example.toml).
type Preset uint8

// Presets.
const (
	// Protected: a key is required; limited by the key's tier.
	Protected Preset = iota
	// Public: no key; limited per client IP with the route's tier (free).
	Public
	// Admin: a key with scope "admin"; limited by the route's tier or the
	// strictest tier.
	Admin
	// HighVolume: a key is required; only the route's own per-minute
	// bucket applies, not the tier's.
	HighVolume
	// Internal: no key and no limit; metrics are sampled.
	Internal
)

var presetNames = [...]string{Protected: "protected", Public: "public", Admin: "admin", HighVolume: "high_volume", Internal: "internal"}

func (p Preset) String() string {
	if int(p) < len(presetNames) {
		return presetNames[p]
	}
	return fmt.Sprintf("preset(%d)", p)
}

// ParsePreset reads a preset name as written in the configuration.
func ParsePreset(s string) (Preset, error) {
	for i, name := range presetNames {
		if s == name {
			return Preset(i), nil
		}
	}
	return 0, fmt.Errorf("enforce: unknown preset %q", s)
}

// Route is one [[routes]] entry, or the default for unmatched paths.
type Route struct {
	// Pattern is the path pattern; it names the route in metrics and is
	// the id of its per-route bucket. The default route's is "*".
	Pattern           string
	Methods           []string // upper case; empty: every method; GET includes HEAD
	Preset            Preset
	Scopes            []string // a key must hold all of them
	RequestsPerMinute int64    // the route's own bucket per key; 0 = none
	Cost              int      // tokens one request takes; 0 counts as 1
	Tier              string   // public: the IP tier; admin: the tier to apply
	AllowQueryKey     bool     // ?api_key= is accepted

	segments []segment
	bucket   limiter.RouteBucket // built once here, not per request
}

type segment struct {
	literal string
	kind    segmentKind
}

type segmentKind uint8

const (
	segLiteral segmentKind = iota
	segParam               // ":name": exactly one non-empty segment
	segRest                // "*": everything after, including nothing
)

func (r *Route) compile() error {
	if !strings.HasPrefix(r.Pattern, "/") {
		return fmt.Errorf("enforce: route pattern %q must start with /", r.Pattern)
	}
	r.segments = r.segments[:0]
	parts := strings.Split(r.Pattern[1:], "/")
	for i, p := range parts {
		switch {
		case p == "*" && i == len(parts)-1:
			r.segments = append(r.segments, segment{kind: segRest})
		case p == "*" || strings.Contains(p, "*"):
			return fmt.Errorf("enforce: route pattern %q: * may only be the last segment", r.Pattern)
		case strings.HasPrefix(p, ":") && len(p) > 1:
			r.segments = append(r.segments, segment{kind: segParam})
		default:
			r.segments = append(r.segments, segment{literal: p})
		}
	}
	for i, m := range r.Methods {
		r.Methods[i] = strings.ToUpper(m)
	}
	r.bucket = limiter.RouteBucketOf(r.Pattern)
	return nil
}

// matchPath reports whether path (starting with "/") fits the pattern,
// comparing literal segments in any case when foldCase is set. A trailing
// slash is tolerated ("/a/b/" matches "/a/b"). It walks the path without
// splitting it, so it allocates nothing.
func (r *Route) matchPath(path string, foldCase bool) bool {
	rest := path[1:]
	for _, seg := range r.segments {
		if seg.kind == segRest {
			return true
		}
		part, tail, _ := strings.Cut(rest, "/")
		if seg.kind == segLiteral && part != seg.literal && (!foldCase || !strings.EqualFold(part, seg.literal)) {
			return false
		}
		if seg.kind == segParam && part == "" {
			return false
		}
		rest = tail
	}
	return rest == ""
}

// matchMethod reports whether the route lists method. HEAD matches
// wherever GET does: frameworks answer HEAD with the GET handler, so a
// HEAD that skipped a GET route would reach the same handler past that
// route's limits, on whatever looser route came after it.
func (r *Route) matchMethod(method string) bool {
	if len(r.Methods) == 0 {
		return true
	}
	for _, m := range r.Methods {
		if m == method || m == "*" || (m == "GET" && method == "HEAD") {
			return true
		}
	}
	return false
}

// Routes is a compiled, immutable route table: first match wins, and the
// default applies to everything else.
type Routes struct {
	list     []Route
	def      Route
	foldCase bool // literal segments match in any case (IgnoreCase)
}

// IgnoreCase returns a table with the same routes whose literal segments
// match a path in any case (Unicode simple folding), for upstreams that
// serve /API/Admin as /api/admin (IIS, and apps on case-insensitive file
// systems): otherwise such a path escapes an /api/admin/* route. rs itself
// is unchanged.
func (rs *Routes) IgnoreCase() *Routes {
	folded := *rs
	folded.foldCase = true
	return &folded
}

// NewRoutes compiles routes and the default (whose Pattern is ignored).
func NewRoutes(routes []Route, def Route) (*Routes, error) {
	rs := &Routes{list: make([]Route, len(routes)), def: def}
	copy(rs.list, routes)
	for i := range rs.list {
		rs.list[i].Methods = append([]string(nil), rs.list[i].Methods...)
		if err := rs.list[i].compile(); err != nil {
			return nil, err
		}
	}
	rs.def.Pattern = "*"
	rs.def.bucket = limiter.RouteBucketOf(rs.def.Pattern)
	return rs, nil
}

// Match returns the first route matching method and path, or the default.
// path must be cleaned (see CleanPath).
func (rs *Routes) Match(method, path string) *Route {
	for i := range rs.list {
		r := &rs.list[i]
		if r.matchMethod(method) && r.matchPath(path, rs.foldCase) {
			return r
		}
	}
	return &rs.def
}
