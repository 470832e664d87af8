package metrics

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apiwarden/apiwarden/decision"
)

// Limits on what a stored Record keeps. Longer strings are cut at a UTF-8
// boundary when the record is written; ParseEvents rejects the ids that
// must round-trip exactly instead of cutting them.
const (
	MaxPathBytes      = 512 // Path, query string included
	MaxUserAgentBytes = 256 // UserAgent
	MaxRouteBytes     = 256 // Route
	MaxIDBytes        = 128 // RequestID, KeyID, OwnerID, Tier
	MaxMethodBytes    = 32  // Method
	MaxCountryBytes   = 8   // Country (ISO 3166 alpha-2 in practice)
)

// ValidMethod reports whether m can be a Record's Method: an HTTP token
// (RFC 9110 tchar) of 1 to MaxMethodBytes bytes. Every edge that takes a
// method from a client's words rather than its request line (forward
// auth's X-Forwarded-Method, /v1/check, /v1/events) refuses others.
// Tokens a spreadsheet reads as formulas ("-2+3", "+1+1") pass: exports
// defuse every cell.
func ValidMethod(m string) bool {
	if m == "" || len(m) > MaxMethodBytes {
		return false
	}
	for i := 0; i < len(m); i++ {
		if c := m[i]; !isAlnum(c) && strings.IndexByte("!#$%&'*+-.^_`|~", c) < 0 {
			return false
		}
	}
	return true
}

// Record times are clamped to [minRecordTime, maxRecordTime] when stored,
// so day names and interval numbers stay in range (ParseEvents refuses
// times outside a much narrower window).
var (
	minRecordTime = time.Unix(0, 0).UTC()
	maxRecordTime = time.Date(2399, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

// Record is one request as the metrics package stores it (docs/API.md, Record). The API
// layer fills it in and hands it to Recorder.Record; readers get it back from
// Reader.Records.
//
// Time is stored with microsecond precision in UTC, and Latency and
// UpstreamLatency with microsecond precision. An API key never belongs in a
// Record; as a safeguard an api_key query parameter is removed from Path.
type Record struct {
	Time            time.Time     // when the request arrived
	RequestID       string        // apiwarden's own ids (prefix + decimal counter) are stored in about a byte
	Method          string        // HTTP method
	Route           string        // the matched route pattern, e.g. "/api/forms/*"
	Path            string        // the request path and query, cut to MaxPathBytes
	Status          int           // HTTP status sent to the client
	Latency         time.Duration // total time apiwarden saw
	UpstreamLatency time.Duration // time spent waiting for the upstream, 0 if none
	RequestBytes    int64         // request body bytes
	ResponseBytes   int64         // response body bytes
	KeyID           string        // the key's id (never the key), "" when none
	OwnerID         string        // the key's owner
	Tier            string        // the tier the request was limited by
	ClientIP        netip.Addr    // the client address after trusted-proxy handling
	Country         string        // from the configured country header
	UserAgent       string        // cut to MaxUserAgentBytes
	ErrorCategory   ErrorCategory // why the request failed, ErrorNone if it did not
	CacheStatus     CacheStatus   // from Cache-Status or X-Cache, see ParseCacheStatus
	Decision        decision.Code // the enforcement decision, decision.None when the request was not decided
}

// StatusClass is the hundreds digit of Status (2 for 2xx), 0 if Status is
// out of range.
func (r *Record) StatusClass() int {
	if r.Status < 100 || r.Status > 599 {
		return 0
	}
	return r.Status / 100
}

// IsRateLimited reports whether the request was refused by a rate limit or
// quota: the decision says so or the error category is rate_limited.
func (r *Record) IsRateLimited() bool {
	return r.Decision.IsRateLimited() || r.ErrorCategory == ErrorRateLimited
}

// IsAuthFailure reports whether the request was refused for its key or
// identity: the decision is a 401/403 code or the error category is auth.
func (r *Record) IsAuthFailure() bool {
	return r.Decision.IsAuthFailure() || r.ErrorCategory == ErrorAuth
}

// sanitize brings a record to the form it is stored in: times and latencies
// at microsecond precision, strings cut to their limits, no api_key in the
// path, no negative sizes. It is idempotent, so a batch retried after a
// failed commit can be sanitized again.
func (r *Record) sanitize() {
	r.Time = r.Time.UTC().Truncate(time.Microsecond)
	if r.Time.Before(minRecordTime) {
		r.Time = minRecordTime
	} else if r.Time.After(maxRecordTime) {
		r.Time = maxRecordTime
	}
	r.Latency = max(r.Latency, 0).Truncate(time.Microsecond)
	r.UpstreamLatency = max(r.UpstreamLatency, 0).Truncate(time.Microsecond)
	r.RequestBytes = max(r.RequestBytes, 0)
	r.ResponseBytes = max(r.ResponseBytes, 0)
	r.Path = truncateUTF8(stripAPIKey(r.Path), MaxPathBytes)
	r.UserAgent = truncateUTF8(r.UserAgent, MaxUserAgentBytes)
	r.Route = truncateUTF8(r.Route, MaxRouteBytes)
	r.RequestID = truncateUTF8(r.RequestID, MaxIDBytes)
	r.KeyID = truncateUTF8(r.KeyID, MaxIDBytes)
	r.OwnerID = truncateUTF8(r.OwnerID, MaxIDBytes)
	r.Tier = truncateUTF8(r.Tier, MaxIDBytes)
	r.Method = truncateUTF8(r.Method, MaxMethodBytes)
	r.Country = truncateUTF8(r.Country, MaxCountryBytes)
	if r.ErrorCategory >= errorCategoryCount {
		r.ErrorCategory = ErrorNone
	}
	if r.CacheStatus >= cacheStatusCount {
		r.CacheStatus = CacheUnknown
	}
}

// truncateUTF8 cuts s to at most n bytes without splitting a UTF-8
// sequence. It slices, so it does not allocate.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	// Back up over continuation bytes to the start of the rune at cut, so
	// the rune that would straddle the limit is dropped whole.
	for cut > 0 && cut > n-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// stripAPIKey removes every api_key query parameter (by name, ignoring case
// and percent-encoding) from a path. The API layer never puts keys into
// records; this is a second line of defence. The common case, a path
// without one, returns s without allocating.
func stripAPIKey(s string) string {
	q := strings.IndexByte(s, '?')
	if q < 0 || !containsFold(s[q:], "api") {
		return s
	}
	var kept []string
	removed := false
	for _, param := range strings.FieldsFunc(s[q+1:], func(r rune) bool { return r == '&' || r == ';' }) {
		name, _, _ := strings.Cut(param, "=")
		if unescaped, err := url.QueryUnescape(name); err == nil {
			name = unescaped
		}
		if strings.EqualFold(strings.TrimSpace(name), "api_key") {
			removed = true
			continue
		}
		kept = append(kept, param)
	}
	if !removed {
		return s
	}
	if len(kept) == 0 {
		return s[:q]
	}
	return s[:q+1] + strings.Join(kept, "&")
}

func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// ErrorCategory says why a request failed (docs/API.md, Record).
type ErrorCategory uint8

// The error categories. The zero value is ErrorNone.
const (
	ErrorNone                ErrorCategory = iota // the request succeeded
	ErrorClient                                   // a 4xx the client caused, other than auth and limits
	ErrorAuth                                     // refused for its key: missing, unknown, expired, revoked, IP, origin, scope
	ErrorRateLimited                              // refused by a rate limit or quota
	ErrorUpstream5xx                              // the upstream answered 5xx
	ErrorUpstreamTimeout                          // the upstream did not answer in time
	ErrorUpstreamUnreachable                      // the upstream could not be reached
	errorCategoryCount
)

var errorCategoryNames = [errorCategoryCount]string{
	"none", "client", "auth", "rate_limited", "upstream_5xx", "upstream_timeout", "upstream_unreachable",
}

// String returns the category's name as docs/API.md spells it.
func (c ErrorCategory) String() string {
	if c < errorCategoryCount {
		return errorCategoryNames[c]
	}
	return fmt.Sprintf("ErrorCategory(%d)", uint8(c))
}

// ParseErrorCategory parses a name as String returns it; "" is ErrorNone.
// Anything else returns ErrUnknownName.
func ParseErrorCategory(s string) (ErrorCategory, error) {
	if s == "" {
		return ErrorNone, nil
	}
	for i, name := range errorCategoryNames {
		if s == name {
			return ErrorCategory(i), nil
		}
	}
	return ErrorNone, fmt.Errorf("%w: error category %q (want one of %s)", ErrUnknownName, s,
		strings.Join(errorCategoryNames[:], ", "))
}

// MarshalText implements encoding.TextMarshaler.
func (c ErrorCategory) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *ErrorCategory) UnmarshalText(b []byte) error {
	v, err := ParseErrorCategory(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// CategorizeError derives the error category from a status and a decision
// when the caller knows nothing more specific (ParseEvents uses it for
// records that leave error_category out). A proxy that saw the upstream time
// out or refuse the connection should set those categories itself.
func CategorizeError(status int, d decision.Code) ErrorCategory {
	switch {
	case d.IsRateLimited():
		return ErrorRateLimited
	case d.IsAuthFailure():
		return ErrorAuth
	case status == 429:
		return ErrorRateLimited
	case status == 401 || status == 403:
		return ErrorAuth
	case status >= 500 && status <= 599:
		return ErrorUpstream5xx
	case status >= 400 && status <= 499:
		return ErrorClient
	}
	return ErrorNone
}

// CacheStatus is what a cache in front of or inside the upstream did with
// the response, normalised from Cache-Status (RFC 9211) or X-Cache.
type CacheStatus uint8

// The cache statuses. The zero value, CacheUnknown, means no cache spoke.
const (
	CacheUnknown CacheStatus = iota // ""
	CacheHit                        // "hit": served from a cache
	CacheMiss                       // "miss": fetched from the origin
	CacheStale                      // "stale": a stale copy was served or revalidated
	CacheBypass                     // "bypass": the cache was not used for this request
	cacheStatusCount
)

var cacheStatusNames = [cacheStatusCount]string{"", "hit", "miss", "stale", "bypass"}

// String returns "", "hit", "miss", "stale" or "bypass".
func (c CacheStatus) String() string {
	if c < cacheStatusCount {
		return cacheStatusNames[c]
	}
	return fmt.Sprintf("CacheStatus(%d)", uint8(c))
}

// MarshalText implements encoding.TextMarshaler.
func (c CacheStatus) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// ParseCacheStatus normalises a Cache-Status or X-Cache header value (or an
// already normalised name). It never fails: a value it does not understand
// is CacheUnknown.
//
// Cache-Status (RFC 9211, e.g. `edge; hit, origin; fwd=uri-miss`): any
// cache that reports `hit` makes it a hit (stale if its ttl is negative);
// otherwise the last cache's fwd parameter decides: bypass, stale, or any
// other reason is a miss. X-Cache and similar (`HIT`, `Hit from cloudfront`,
// `TCP_MISS`, nginx's EXPIRED/UPDATING/REVALIDATED, Cloudflare's DYNAMIC):
// any hit wins, then stale, bypass, miss.
func ParseCacheStatus(v string) CacheStatus {
	v = strings.TrimSpace(v)
	if v == "" {
		return CacheUnknown
	}
	if strings.Contains(v, ";") {
		return parseRFC9211(v)
	}
	// Word by word, in place: strings.FieldsFunc would allocate the list
	// and hold a 512-byte array in its frame, strings.ToLower a copy of
	// an upper-case word, on the proxy's deepest path (docs/BENCHMARKS.md,
	// "Stacks per connection on the fasthttp proxy").
	var hit, stale, bypass, miss bool
	for v != "" {
		word := v
		if i := strings.IndexFunc(v, cacheSeparator); i >= 0 {
			word, v = v[:i], v[i+1:]
		} else {
			v = ""
		}
		switch cacheWord(word) {
		case CacheHit:
			hit = true
		case CacheStale:
			stale = true
		case CacheBypass:
			bypass = true
		case CacheMiss:
			miss = true
		}
	}
	switch {
	case hit:
		return CacheHit
	case stale:
		return CacheStale
	case bypass:
		return CacheBypass
	case miss:
		return CacheMiss
	}
	return CacheUnknown
}

// cacheSeparator says whether r separates the words of an X-Cache-like
// value.
func cacheSeparator(r rune) bool {
	return r == ',' || r == ' ' || r == '\t' || r == '_' || r == '-' || r == '/'
}

// cacheWord is the status a word of an X-Cache-like value names, in any
// case, or CacheUnknown.
func cacheWord(word string) CacheStatus {
	var lower [len("uncacheable")]byte // the longest word known
	if len(word) > len(lower) {
		return CacheUnknown
	}
	for i := range len(word) {
		c := word[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	switch string(lower[:len(word)]) {
	case "hit", "revalidated", "refresh":
		return CacheHit
	case "stale", "updating":
		return CacheStale
	case "bypass", "dynamic", "pass", "nocache", "uncacheable":
		return CacheBypass
	case "miss", "expired", "fetch", "refreshmiss":
		return CacheMiss
	}
	return CacheUnknown
}

func parseRFC9211(v string) CacheStatus {
	last := CacheUnknown
	for _, entry := range strings.Split(v, ",") {
		params := strings.Split(entry, ";")
		status := CacheUnknown
		hit, staleHit := false, false
		for _, p := range params[1:] {
			name, val, _ := strings.Cut(strings.TrimSpace(p), "=")
			val = strings.Trim(val, `"`)
			switch strings.ToLower(name) {
			case "hit":
				hit = true
			case "ttl":
				staleHit = strings.HasPrefix(val, "-")
			case "fwd":
				switch strings.ToLower(val) {
				case "bypass":
					status = CacheBypass
				case "stale":
					status = CacheStale
				default:
					status = CacheMiss
				}
			}
		}
		if hit {
			if staleHit {
				return CacheStale
			}
			return CacheHit
		}
		if status != CacheUnknown {
			last = status
		}
	}
	return last
}
