package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Presets a route may use; README.md, "What apiwarden decides", lists what each does.
var presets = []string{"public", "protected", "admin", "high_volume", "internal"}

// Severities in increasing order.
var severities = []string{"low", "medium", "high", "critical"}

var (
	alertTypes    = []string{"rate_limit_exceeded", "unusual_activity", "error_spike", "performance_degradation", "quota_warning"}
	alertSubjects = []string{"global", "key", "owner", "route"}
	directions    = []string{"spike", "drop", "both"}
	notifyTypes   = []string{"webhook", "slack", "email"}
	httpMethods   = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "*"}
	weekdayNames  = map[string]time.Weekday{"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday,
		"wednesday": time.Wednesday, "thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday}
	scopePattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9:_.\-]*$`)
	prefixPattern = regexp.MustCompile(`^[a-z0-9]{1,16}$`)
	tierPattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9_\-]*$`)
)

func (c *Config) validate(pl *problemList) {
	c.validateServer(pl)
	c.validateSecurity(pl)
	c.validateProxy(pl)
	c.validateKeys(pl)
	c.validateTiers(pl)
	c.validateCalendar(pl)
	c.validateRoutes(pl)
	c.validateMetrics(pl)
	c.validateAlerts(pl)
	c.validateRedis(pl)
	c.validateCluster(pl)
}

func (c *Config) validateServer(pl *problemList) {
	s := c.Server
	checkHostPort(pl, "server.listen", s.Listen, false)
	checkHostPort(pl, "server.admin_listen", s.AdminListen, true)
	c.validateEdge(pl)
	if s.DataDir == "" {
		pl.add("server.data_dir", "must not be empty")
	}
	for i, p := range s.TrustedProxies {
		if _, err := ParsePrefix(p); err != nil {
			pl.add(fmt.Sprintf("server.trusted_proxies[%d]", i), "%v", err)
		}
	}
	if s.ClientIPv6Prefix < 32 || s.ClientIPv6Prefix > 128 {
		pl.add("server.client_ipv6_prefix", "must be 32 to 128 (bits of an IPv6 address that name one client), got %d", s.ClientIPv6Prefix)
	}
	if _, err := time.LoadLocation(s.Timezone); err != nil || s.Timezone == "" {
		pl.add("server.timezone", "must be an IANA time zone such as \"UTC\" or \"Europe/Berlin\", got %q", s.Timezone)
	}
	if st := s.AuthorizeRateLimitedStatus; st != 429 && st != 403 && st != 401 {
		pl.add("server.authorize_rate_limited_status", "must be 429, 403 or 401, got %d", st)
	}
	if s.MaxHeaderBytes < 1024 || s.MaxHeaderBytes > 1<<20 {
		pl.add("server.max_header_bytes", "must be between 1024 and 1048576, got %d", s.MaxHeaderBytes)
	}
	if s.MemoryLimit != 0 && s.MemoryLimit < minMemoryLimit {
		pl.add("server.memory_limit", "must be 0 (no limit) or at least %s: the process holds about 30 MiB before any connection and more under load, and a limit below what is live makes the collector run without pause; got %s",
			Size(minMemoryLimit), s.MemoryLimit)
	}
	positive(pl, "server.read_header_timeout", s.ReadHeaderTimeout)
	positive(pl, "server.shutdown_timeout", s.ShutdownTimeout)
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, s.LogLevel) {
		pl.add("server.log_level", "must be one of debug, info, warn, error, got %q", s.LogLevel)
	}
	if s.LogFormat != "text" && s.LogFormat != "json" {
		pl.add("server.log_format", "must be text or json, got %q", s.LogFormat)
	}
}

// minMemoryLimit is the smallest server.memory_limit other than 0.
const minMemoryLimit = 64 << 20

// The servers server.edge names.
const (
	// EdgeAuto is net/http where listen shares a listener with the admin
	// routes, else the event loops where they can serve, else fasthttp
	// (Config.EdgeServer).
	EdgeAuto     = "auto"
	EdgeNetHTTP  = "net/http"
	EdgeFastHTTP = "fasthttp"
	// EdgeEvLoop is the proxy on event loops (api/loopedge): a listener of
	// its own, proxy mode to a plain-HTTP upstream (evLoopMisfits); a
	// decision that may wait on Redis is made off its loops.
	EdgeEvLoop = "evloop"
)

// SharedListener reports whether listen and the admin routes share one
// listener: admin_listen empty or the same address (two ":0" are two).
func (s Server) SharedListener() bool {
	return s.AdminListen == "" || (s.AdminListen == s.Listen && !strings.HasSuffix(s.Listen, ":0"))
}

// EdgeServer is the HTTP server listen runs on: server.edge, with
// EdgeAuto resolved. The admin routes run on net/http only, so a listen
// that shares their listener is EdgeNetHTTP; one of its own is
// EdgeEvLoop where the event loops can serve the configuration
// (EvLoopFits), else EdgeFastHTTP.
func (c *Config) EdgeServer() string {
	s := c.Server
	switch {
	case s.Edge != EdgeAuto:
		return s.Edge
	case s.SharedListener():
		return EdgeNetHTTP
	case c.EvLoopFits() == nil:
		return EdgeEvLoop
	}
	return EdgeFastHTTP
}

// validateEdge allows the fasthttp edge only on a listener of its own
// (the admin routes run on net/http).
func (c *Config) validateEdge(pl *problemList) {
	s := c.Server
	switch s.Edge {
	case EdgeAuto:
		if s.ReduceIdleMemory && s.SharedListener() {
			pl.add("server.reduce_idle_memory", "applies to the fasthttp edge only; edge %q is %q here, as listen shares its listener with admin_listen", EdgeAuto, EdgeNetHTTP)
		}
		return
	case EdgeNetHTTP:
		if s.ReduceIdleMemory {
			pl.add("server.reduce_idle_memory", "applies to edge = %q only; net/http keeps its buffers per connection", EdgeFastHTTP)
		}
		return
	case EdgeFastHTTP:
	case EdgeEvLoop:
		c.validateEvLoop(pl)
	default:
		pl.add("server.edge", "must be %q, %q, %q or %q, got %q", EdgeAuto, EdgeNetHTTP, EdgeFastHTTP, EdgeEvLoop, s.Edge)
		return
	}
	if s.SharedListener() {
		pl.add("server.edge", "%q needs a listener of its own: set server.admin_listen to another address than server.listen (the admin routes run on %q)",
			s.Edge, EdgeNetHTTP)
	}
}

// validateEvLoop allows the event-loop edge only where it can serve
// (evLoopMisfits).
func (c *Config) validateEvLoop(pl *problemList) {
	for _, m := range c.evLoopMisfits() {
		pl.add(m.key, "%s", m.msg)
	}
}

// EvLoopFits reports whether the event-loop edge can serve this
// configuration, on a listener of its own: nil, or an error naming every
// reason it cannot.
func (c *Config) EvLoopFits() error {
	var msgs []string
	for _, m := range c.evLoopMisfits() {
		msgs = append(msgs, m.key+": "+m.msg)
	}
	if msgs == nil {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}

// misfit is a setting that keeps an edge from serving, and why.
type misfit struct{ key, msg string }

// evLoopMisfits are the settings that keep the event-loop edge from
// serving: it serves the proxy to a plain-HTTP upstream only, and
// reduce_idle_memory is the fasthttp edge's. With Redis, the decisions,
// which may wait on it, are made off the loops (api/loopedge/async.go);
// in a cluster the keys are read from the local mirror, as in local mode.
func (c *Config) evLoopMisfits() []misfit {
	var m []misfit
	if u := c.Proxy.Upstream; u == "" || !strings.HasPrefix(u, "http://") {
		m = append(m, misfit{"server.edge", fmt.Sprintf("%q serves the proxy only: set proxy.upstream to an http:// URL", EdgeEvLoop)})
	}
	if c.Server.ReduceIdleMemory {
		m = append(m, misfit{"server.reduce_idle_memory", fmt.Sprintf("applies to edge = %q only", EdgeFastHTTP)})
	}
	return m
}

func (c *Config) validateSecurity(pl *problemList) {
	// A reference is checked by Load, once resolved; config check and
	// Parse see only the file, where a literal token is already its value.
	for _, t := range c.tokens() {
		if !isReference(string(*t.value)) {
			checkTokenLength(pl, t.key, *t.value, "")
		}
	}
	if !prefixPattern.MatchString(c.Security.KeyPrefix) {
		pl.add("security.key_prefix", "must be 1 to 16 lowercase letters or digits, got %q", c.Security.KeyPrefix)
	}
	if c.Security.AuthFailureLimit < 0 {
		pl.add("security.auth_failure_limit", "must be >= 0 (0 = no limit), got %d", c.Security.AuthFailureLimit)
	}
	positive(pl, "security.auth_failure_window", c.Security.AuthFailureWindow)
}

func (c *Config) validateProxy(pl *problemList) {
	p := c.Proxy
	if p.Upstream != "" {
		u, err := url.Parse(p.Upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			pl.add("proxy.upstream", "must be an http:// or https:// URL with a host, got %q", p.Upstream)
		}
	}
	positive(pl, "proxy.dial_timeout", p.DialTimeout)
	positive(pl, "proxy.response_header_timeout", p.ResponseHeaderTimeout)
	if p.MaxIdleConnsPerHost < 1 {
		pl.add("proxy.max_idle_conns_per_host", "must be at least 1, got %d", p.MaxIdleConnsPerHost)
	}
	if p.MaxConnsPerHost < 1 {
		pl.add("proxy.max_conns_per_host", "must be at least 1, got %d", p.MaxConnsPerHost)
	}
	if p.MaxBodyBytes < 0 {
		pl.add("proxy.max_body_bytes", "must be >= 0 (0 = unlimited), got %d", p.MaxBodyBytes)
	}
}

func (c *Config) validateKeys(pl *problemList) {
	seen := map[string]bool{}
	for i, s := range c.Keys.Scopes {
		key := fmt.Sprintf("keys.scopes[%d]", i)
		if !scopePattern.MatchString(s) {
			pl.add(key, "must be lowercase letters, digits and :_.- , got %q", s)
		}
		if seen[s] {
			pl.add(key, "repeats scope %q", s)
		}
		seen[s] = true
	}
	if c.Keys.CacheSize < 1 {
		pl.add("keys.cache_size", "must be at least 1, got %d", c.Keys.CacheSize)
	}
	positive(pl, "keys.last_used_flush_interval", c.Keys.LastUsedFlushInterval)
	if c.Limiter.MaxSubjects < 1000 {
		pl.add("limiter.max_subjects", "must be at least 1000, got %d", c.Limiter.MaxSubjects)
	}
	positive(pl, "limiter.snapshot_interval", c.Limiter.SnapshotInterval)
}

func (c *Config) validateTiers(pl *problemList) {
	if len(c.Tiers) == 0 {
		pl.add("tiers", "must define at least one tier")
	}
	for name, t := range c.Tiers {
		key := "tiers." + name
		if !tierPattern.MatchString(name) {
			pl.add(key, "tier names must be lowercase letters, digits, _ and -")
		}
		if t.RequestsPerHour <= 0 {
			pl.add(key+".requests_per_hour", "must be > 0, got %d", t.RequestsPerHour)
		}
		if t.BurstPerMinute <= 0 {
			pl.add(key+".burst_per_minute", "must be > 0, got %d", t.BurstPerMinute)
		}
		if t.MonthlyQuota < 0 {
			pl.add(key+".monthly_quota", "must be >= 0 (0 = none), got %d", t.MonthlyQuota)
		}
	}
}

func (c *Config) validateCalendar(pl *problemList) {
	for i, r := range c.Calendar {
		key := fmt.Sprintf("calendar[%d]", i)
		if r.Name == "" {
			pl.add(key+".name", "must not be empty")
		}
		for j, m := range r.Months {
			if m < 1 || m > 12 {
				pl.add(fmt.Sprintf("%s.months[%d]", key, j), "must be 1 to 12, got %d", m)
			}
		}
		for j, d := range r.Weekdays {
			if _, ok := weekdayNames[strings.ToLower(d)]; !ok {
				pl.add(fmt.Sprintf("%s.weekdays[%d]", key, j), "must be a weekday name such as \"saturday\", got %q", d)
			}
		}
		for j, d := range r.Dates {
			if _, _, err := ParseDateRange(d); err != nil {
				pl.add(fmt.Sprintf("%s.dates[%d]", key, j), "%v", err)
			}
		}
		c.checkTierNames(pl, key+".tiers", r.Tiers)
		if r.LimitMultiplier <= 0 || r.LimitMultiplier > 1000 {
			pl.add(key+".limit_multiplier", "must be > 0 and <= 1000, got %v", r.LimitMultiplier)
		}
		if r.AlertSeverityBoost < 0 || r.AlertSeverityBoost > 3 {
			pl.add(key+".alert_severity_boost", "must be 0 to 3, got %d", r.AlertSeverityBoost)
		}
	}
}

func (c *Config) validateRoutes(pl *problemList) {
	if !slices.Contains(presets, c.RoutesDefault.Preset) {
		pl.add("routes_default.preset", "must be one of %s, got %q", strings.Join(presets, ", "), c.RoutesDefault.Preset)
	}
	c.checkScopes(pl, "routes_default.scopes", c.RoutesDefault.Scopes)
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		if err := CheckPathPattern(r.Path); err != nil {
			pl.add(key+".path", "%v", err)
		}
		for j, m := range r.Methods {
			if !slices.Contains(httpMethods, strings.ToUpper(m)) {
				pl.add(fmt.Sprintf("%s.methods[%d]", key, j), "must be an HTTP method, got %q", m)
			}
		}
		if !slices.Contains(presets, r.Preset) {
			pl.add(key+".preset", "must be one of %s, got %q", strings.Join(presets, ", "), r.Preset)
		}
		c.checkScopes(pl, key+".scopes", r.Scopes)
		if r.RequestsPerMinute < 0 {
			pl.add(key+".requests_per_minute", "must be >= 0, got %d", r.RequestsPerMinute)
		}
		if r.Preset == "high_volume" && r.RequestsPerMinute == 0 {
			pl.add(key+".requests_per_minute", "must be set on a high_volume route (it is the route's own limit)")
		}
		if r.Tier != "" {
			c.checkTier(pl, key+".tier", r.Tier)
		}
		if r.Cost < 0 || r.Cost > 1000 {
			pl.add(key+".cost", "must be 0 to 1000 (0 = 1), got %d", r.Cost)
		}
	}
}

func (c *Config) validateMetrics(pl *problemList) {
	m := c.Metrics
	if m.RawRetentionDays < 1 {
		pl.add("metrics.raw_retention_days", "must be at least 1, got %d", m.RawRetentionDays)
	}
	if m.HourlyRetentionDays < 1 {
		pl.add("metrics.hourly_retention_days", "must be at least 1, got %d", m.HourlyRetentionDays)
	}
	if m.DailyRetentionDays < 0 {
		pl.add("metrics.daily_retention_days", "must be >= 0 (0 = keep), got %d", m.DailyRetentionDays)
	}
	positive(pl, "metrics.flush_interval", m.FlushInterval)
	if m.SampleRate <= 0 || m.SampleRate > 1 {
		pl.add("metrics.sample_rate", "must be > 0 and <= 1, got %v", m.SampleRate)
	}
	if m.InternalSampleRate < 0 || m.InternalSampleRate > 1 {
		pl.add("metrics.internal_sample_rate", "must be 0 to 1, got %v", m.InternalSampleRate)
	}
	if m.BufferSize < 64 {
		pl.add("metrics.buffer_size", "must be at least 64, got %d", m.BufferSize)
	}
	positive(pl, "metrics.max_ingested_age", m.MaxIngestedAge)
	positive(pl, "metrics.max_ingested_future", m.MaxIngestedFuture)
	if m.MaxIngestedRoutes < 1 || m.MaxIngestedRoutes > 1_000_000 {
		pl.add("metrics.max_ingested_routes", "must be 1 to 1000000, got %d", m.MaxIngestedRoutes)
	}
	switch m.ClientIP {
	case "", ClientIPFull, "truncated", "none":
	default:
		pl.add("metrics.client_ip", "must be \"full\", \"truncated\" or \"none\", got %q", m.ClientIP)
	}
}

func (c *Config) validateAlerts(pl *problemList) {
	a := c.Alerts
	positive(pl, "alerts.evaluation_interval", a.EvaluationInterval)
	if a.RetentionDays < 1 {
		pl.add("alerts.retention_days", "must be at least 1, got %d", a.RetentionDays)
	}
	names := map[string]bool{}
	for i, r := range a.Rules {
		key := fmt.Sprintf("alerts.rules[%d]", i)
		if !slices.Contains(alertTypes, r.Type) {
			pl.add(key+".type", "must be one of %s, got %q", strings.Join(alertTypes, ", "), r.Type)
		}
		if r.Name != "" && names[r.Name] {
			pl.add(key+".name", "repeats rule name %q", r.Name)
		}
		names[r.Name] = true
		if r.Subject != "" && !slices.Contains(alertSubjects, r.Subject) {
			pl.add(key+".subject", "must be one of %s, got %q", strings.Join(alertSubjects, ", "), r.Subject)
		}
		if !slices.Contains(severities, r.Severity) {
			pl.add(key+".severity", "must be one of %s, got %q", strings.Join(severities, ", "), r.Severity)
		}
		switch {
		case r.Type == "quota_warning":
		case r.Window <= 0:
			pl.add(key+".window", "must be > 0")
		case r.Window > Duration(15*time.Minute):
			pl.add(key+".window", "must be at most 15m (rules read the last 15 minutes kept in memory), got %s", r.Window)
		}
		if r.Threshold <= 0 {
			pl.add(key+".threshold", "must be > 0, got %v", r.Threshold)
		}
		switch r.Type {
		case "rate_limit_exceeded", "error_spike":
			if r.Threshold > 1 {
				pl.add(key+".threshold", "is a fraction of requests for %s (0.05 = 5%%), got %v", r.Type, r.Threshold)
			}
		case "quota_warning":
			if r.Threshold > 1 {
				pl.add(key+".threshold", "is a fraction of the limit for quota_warning (0.8 = 80%%), got %v", r.Threshold)
			}
			if r.Quota != "" && r.Quota != "hourly" && r.Quota != "monthly" {
				pl.add(key+".quota", "must be hourly, monthly or empty (either), got %q", r.Quota)
			}
		}
		if r.MinRequests < 0 {
			pl.add(key+".min_requests", "must be >= 0, got %d", r.MinRequests)
		}
		if r.Direction != "" && !slices.Contains(directions, r.Direction) {
			pl.add(key+".direction", "must be one of spike, drop, both, got %q", r.Direction)
		}
		if r.BaselineFactor < 0 {
			pl.add(key+".baseline_factor", "must be >= 0, got %v", r.BaselineFactor)
		}
		c.checkTierNames(pl, key+".tiers", r.Tiers)
	}
	for i, n := range a.Notify {
		key := fmt.Sprintf("alerts.notify[%d]", i)
		if !slices.Contains(notifyTypes, n.Type) {
			pl.add(key+".type", "must be one of webhook, slack, email, got %q", n.Type)
		}
		if n.MinSeverity != "" && !slices.Contains(severities, n.MinSeverity) {
			pl.add(key+".min_severity", "must be one of %s, got %q", strings.Join(severities, ", "), n.MinSeverity)
		}
		switch n.Type {
		case "webhook", "slack":
			if !isReference(string(n.URL)) {
				if u, err := url.Parse(string(n.URL)); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					pl.add(key+".url", "must be an http:// or https:// URL")
				}
			}
		case "email":
			if n.SMTPHost == "" {
				pl.add(key+".smtp_host", "must be set for email")
			}
			if n.SMTPPort < 1 || n.SMTPPort > 65535 {
				pl.add(key+".smtp_port", "must be a port number, got %d", n.SMTPPort)
			}
			if n.From == "" {
				pl.add(key+".from", "must be set for email")
			}
			if len(n.To) == 0 {
				pl.add(key+".to", "must name at least one recipient")
			}
		}
	}
}

func (c *Config) validateRedis(pl *problemList) {
	if u := string(c.Redis.URL); u != "" && !isReference(u) {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "redis" && p.Scheme != "rediss") || p.Host == "" {
			pl.add("redis.url", "must look like redis://host:6379/0")
		}
	}
	positive(pl, "redis.timeout", c.Redis.Timeout)
}

func (c *Config) checkScopes(pl *problemList, key string, scopes []string) {
	for j, s := range scopes {
		if !slices.Contains(c.Keys.Scopes, s) {
			pl.add(fmt.Sprintf("%s[%d]", key, j), "names scope %q, which keys.scopes does not define", s)
		}
	}
}

func (c *Config) checkTierNames(pl *problemList, key string, tiers []string) {
	for j, t := range tiers {
		c.checkTier(pl, fmt.Sprintf("%s[%d]", key, j), t)
	}
}

func (c *Config) checkTier(pl *problemList, key, tier string) {
	if _, ok := c.Tiers[tier]; !ok {
		pl.add(key, "names tier %q, which is not defined under [tiers]", tier)
	}
}

// MinTokenLength is the fewest characters an admin, service or metrics
// token may have. A presented token is compared whole, so its length is
// all that stands between the port and a guesser: 24 random hex
// characters are 96 bits, out of reach of any number of attempts.
const MinTokenLength = 24

// tokenSetting is a setting that holds a bearer token.
type tokenSetting struct {
	key   string
	value *Secret
}

// tokens lists the bearer tokens, the admin token first.
func (c *Config) tokens() []tokenSetting {
	return []tokenSetting{
		{"security.admin_token", &c.Security.AdminToken},
		{"security.service_token", &c.Security.ServiceToken},
		{"security.metrics_token", &c.Security.MetricsToken},
	}
}

// checkTokenLength refuses a set token shorter than MinTokenLength; an
// empty one turns its feature off and is fine. from names where the
// value came from when it is not the file's own text ("env:SVC_TOKEN",
// "APIWARDEN_ADMIN_TOKEN").
func checkTokenLength(pl *problemList, key string, token Secret, from string) {
	n := utf8.RuneCountInString(string(token))
	if n == 0 || n >= MinTokenLength {
		return
	}
	if from != "" {
		from = " (from " + from + ")"
	}
	pl.add(key, "must be at least %d characters, got %d%s; make one with `openssl rand -hex 24`",
		MinTokenLength, n, from)
}

func positive(pl *problemList, key string, d Duration) {
	if d <= 0 {
		pl.add(key, "must be > 0")
	}
}

func isReference(s string) bool {
	return strings.HasPrefix(s, "env:") || strings.HasPrefix(s, "file:")
}

func checkHostPort(pl *problemList, key, addr string, mayBeEmpty bool) {
	if addr == "" {
		if !mayBeEmpty {
			pl.add(key, "must be host:port, got an empty string")
		}
		return
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		pl.add(key, "must be host:port such as 127.0.0.1:8080, got %q", addr)
	}
}

// ParsePrefix reads a CIDR or a single address (as a /32 or /128).
func ParsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("must be a CIDR such as 10.0.0.0/8 or an address, got %q", s)
}

// ParseDateRange reads "2026-06-13" or "2026-12-20..2027-01-02" (inclusive).
func ParseDateRange(s string) (from, to time.Time, err error) {
	a, b, isRange := strings.Cut(s, "..")
	if from, err = time.Parse(time.DateOnly, strings.TrimSpace(a)); err != nil {
		return from, to, fmt.Errorf("must be a date YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD, got %q", s)
	}
	to = from
	if isRange {
		if to, err = time.Parse(time.DateOnly, strings.TrimSpace(b)); err != nil {
			return from, to, fmt.Errorf("must be a date YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD, got %q", s)
		}
		if to.Before(from) {
			return from, to, fmt.Errorf("range %q ends before it starts", s)
		}
	}
	return from, to, nil
}

// Weekday parses a weekday name as written in [[calendar]] weekdays.
func Weekday(name string) (time.Weekday, bool) {
	d, ok := weekdayNames[strings.ToLower(name)]
	return d, ok
}

// CheckPathPattern validates a [[routes]] path: it starts with "/", a
// segment is literal, ":name" (one segment) or a final "*" (the rest).
func CheckPathPattern(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("must start with /, got %q", p)
	}
	segs := strings.Split(p[1:], "/")
	for i, seg := range segs {
		switch {
		case seg == "*" && i != len(segs)-1:
			return fmt.Errorf("may use * only as the last segment, got %q", p)
		case strings.HasPrefix(seg, ":") && len(seg) == 1:
			return fmt.Errorf("has a parameter without a name in %q", p)
		case strings.Contains(seg, "*") && seg != "*":
			return fmt.Errorf("may use * only as a whole segment, got %q", p)
		}
	}
	return nil
}
