// Package config is apiwarden's TOML configuration: the schema with its
// defaults, strict decoding that reports every problem with its line, and
// validation. Core packages never import it; app/ translates a
// Config into each package's own options.
package config

import "time"

// Config is the whole configuration file. Start from Default and decode a
// file over it with Load or Parse.
type Config struct {
	Server        Server          `toml:"server"`
	Security      Security        `toml:"security"`
	Proxy         Proxy           `toml:"proxy"`
	Keys          Keys            `toml:"keys"`
	Limiter       Limiter         `toml:"limiter"`
	Tiers         map[string]Tier `toml:"tiers"`
	Calendar      []CalendarRule  `toml:"calendar"`
	RoutesDefault RouteDefault    `toml:"routes_default"`
	Routes        []Route         `toml:"routes"`
	Metrics       Metrics         `toml:"metrics"`
	Alerts        Alerts          `toml:"alerts"`
	Dashboard     Dashboard       `toml:"dashboard"`
	Redis         Redis           `toml:"redis"`
	Cluster       Cluster         `toml:"cluster"`
}

// Server holds the listeners and process-wide settings.
type Server struct {
	Listen      string `toml:"listen"`
	AdminListen string `toml:"admin_listen"`
	// Edge is the HTTP server of listen: EdgeAuto (the default), EdgeNetHTTP,
	// EdgeFastHTTP (api/fastedge) or EdgeEvLoop (api/loopedge);
	// Config.EdgeServer resolves EdgeAuto.
	Edge string `toml:"edge"`
	// ReduceIdleMemory makes the fasthttp edge return a waiting keep-alive
	// connection's buffers to a pool: half the memory per idle connection,
	// one more read system call per request (docs/BENCHMARKS.md).
	ReduceIdleMemory bool `toml:"reduce_idle_memory"`
	// MemoryLimit is the Go runtime's soft memory limit
	// (runtime/debug.SetMemoryLimit), applied at start: the collector
	// works harder as the process nears it, instead of letting the heap
	// grow to twice what is live. 0 leaves the runtime's default (no
	// limit); the GOMEMLIMIT environment variable, when set, wins.
	MemoryLimit Size   `toml:"memory_limit"`
	DataDir     string `toml:"data_dir"`
	// TrustedProxies may set X-Forwarded-For; CIDRs or single addresses.
	TrustedProxies []string `toml:"trusted_proxies"`
	// ClientIPv6Prefix is how many leading bits of an IPv6 address name
	// one client, for per-IP limits on public routes and the admin-token
	// throttle; IPv4 addresses count one by one.
	ClientIPv6Prefix int    `toml:"client_ipv6_prefix"`
	Timezone         string `toml:"timezone"`
	// AuthorizeRateLimitedStatus is the status /v1/authorize answers a
	// rate-limited request with: 429, or 403 for nginx auth_request, which
	// turns anything but 401/403 into a 500.
	AuthorizeRateLimitedStatus int `toml:"authorize_rate_limited_status"`

	// Request paths that upstreams read in different ways are refused
	// with 400 on the proxy, /v1/authorize and /v1/check; each of these
	// lets one kind through for an upstream that needs it.
	AllowPathSemicolons     bool `toml:"allow_path_semicolons"`      // ";" and %3B
	AllowPathBackslashes    bool `toml:"allow_path_backslashes"`     // "\" and %5C
	AllowPathEncodedSlashes bool `toml:"allow_path_encoded_slashes"` // %2F
	AllowPathDotSegments    bool `toml:"allow_path_dot_segments"`    // ".." (resolved)
	CaseInsensitiveRoutes   bool `toml:"case_insensitive_routes"`    // for IIS-style upstreams

	MaxHeaderBytes    int      `toml:"max_header_bytes"`
	ReadHeaderTimeout Duration `toml:"read_header_timeout"`
	ReadTimeout       Duration `toml:"read_timeout"`
	WriteTimeout      Duration `toml:"write_timeout"`
	IdleTimeout       Duration `toml:"idle_timeout"`
	ShutdownTimeout   Duration `toml:"shutdown_timeout"`
	// ShutdownDelay keeps serving after SIGTERM, with /readyz at 503, so
	// a load balancer or Kubernetes stops sending before the listeners close.
	ShutdownDelay Duration `toml:"shutdown_delay"`

	LogLevel  string `toml:"log_level"`  // debug | info | warn | error
	LogFormat string `toml:"log_format"` // text | json
	// DebugPprof serves Go's profiler under /debug/pprof/ on the admin
	// listener, behind the admin token.
	DebugPprof bool `toml:"debug_pprof"`
}

// Security holds the secrets. Each may be given literally or as
// "env:NAME" or "file:PATH"; Load resolves them.
type Security struct {
	AdminToken   Secret `toml:"admin_token"`
	KeySecret    Secret `toml:"key_secret"`
	ServiceToken Secret `toml:"service_token"`
	// MetricsToken, when set, guards /metrics (Prometheus sends it as a
	// bearer token: authorization.credentials in the scrape config).
	MetricsToken Secret `toml:"metrics_token"`
	KeyPrefix    string `toml:"key_prefix"`
	// Past AuthFailureLimit wrong admin tokens from one client within
	// AuthFailureWindow, further wrong ones are answered 429 until the
	// window ends; the right token always works. 0 turns this off.
	AuthFailureLimit  int      `toml:"auth_failure_limit"`
	AuthFailureWindow Duration `toml:"auth_failure_window"`
}

// Proxy configures the sidecar reverse proxy on Server.Listen.
type Proxy struct {
	Upstream              string   `toml:"upstream"` // empty: proxy mode off
	DialTimeout           Duration `toml:"dial_timeout"`
	ResponseHeaderTimeout Duration `toml:"response_header_timeout"`
	IdleConnTimeout       Duration `toml:"idle_conn_timeout"`
	MaxIdleConnsPerHost   int      `toml:"max_idle_conns_per_host"`
	MaxConnsPerHost       int      `toml:"max_conns_per_host"`
	MaxBodyBytes          int64    `toml:"max_body_bytes"` // 0 = unlimited
}

// Keys configures API keys.
type Keys struct {
	Scopes      []string `toml:"scopes"`
	GracePeriod Duration `toml:"grace_period"` // old secret stays valid this long after a rotation
	// LastUsedFlushInterval batches last_used_at writes.
	LastUsedFlushInterval Duration `toml:"last_used_flush_interval"`
	CacheSize             int      `toml:"cache_size"` // verified keys kept in memory
}

// Limiter bounds the in-memory bucket table.
type Limiter struct {
	MaxSubjects      int      `toml:"max_subjects"`
	SnapshotInterval Duration `toml:"snapshot_interval"`
}

// Tier is a subscription level's limits.
type Tier struct {
	RequestsPerHour int64 `toml:"requests_per_hour"`
	BurstPerMinute  int64 `toml:"burst_per_minute"`
	MonthlyQuota    int64 `toml:"monthly_quota"` // 0 = none
}

// CalendarRule scales limits on the days it matches (in Server.Timezone).
// Every condition that is set must match; an unset one matches any day.
type CalendarRule struct {
	Name               string   `toml:"name"`
	Months             []int    `toml:"months"`
	Weekdays           []string `toml:"weekdays"`
	Dates              []string `toml:"dates"` // "2026-06-13" or "2026-12-20..2027-01-02"
	Tiers              []string `toml:"tiers"` // empty: all tiers
	LimitMultiplier    float64  `toml:"limit_multiplier"`
	AlertSeverityBoost int      `toml:"alert_severity_boost"`
}

// RouteDefault applies to paths no [[routes]] entry matches.
type RouteDefault struct {
	Preset string   `toml:"preset"`
	Scopes []string `toml:"scopes"`
}

// Route is one [[routes]] entry; the first that matches a request wins.
type Route struct {
	Path              string   `toml:"path"` // "/api/forms/*", "/api/guests/:id"
	Methods           []string `toml:"methods"`
	Preset            string   `toml:"preset"`
	Scopes            []string `toml:"scopes"`
	RequestsPerMinute int64    `toml:"requests_per_minute"`
	Cost              int      `toml:"cost"`
	// Tier limits callers of a public route per client IP (default: free)
	// and callers of an admin route (default: the strictest tier).
	Tier          string `toml:"tier"`
	AllowQueryKey bool   `toml:"allow_query_key"` // accept ?api_key= on this route
}

// Metrics configures request recording and retention.
type Metrics struct {
	RawRetentionDays    int      `toml:"raw_retention_days"`
	HourlyRetentionDays int      `toml:"hourly_retention_days"`
	DailyRetentionDays  int      `toml:"daily_retention_days"` // 0 = keep
	FlushInterval       Duration `toml:"flush_interval"`
	SampleRate          float64  `toml:"sample_rate"`
	// InternalSampleRate is the share of requests to internal routes
	// (health checks and the like) that are recorded at all.
	InternalSampleRate float64 `toml:"internal_sample_rate"`
	CountryHeader      string  `toml:"country_header"`
	BufferSize         int     `toml:"buffer_size"`
	// MaxIngestedAge and MaxIngestedFuture bound the time of a record
	// POST /v1/events takes, against the server's clock: older records
	// would change days already reported or billed.
	MaxIngestedAge    Duration `toml:"max_ingested_age"`
	MaxIngestedFuture Duration `toml:"max_ingested_future"`
	// MaxIngestedRoutes caps the distinct routes POST /v1/events may
	// file; records with further routes are filed under "(overflow)".
	MaxIngestedRoutes int `toml:"max_ingested_routes"`
	// ClientIP is how much of a client address stored records keep:
	// "full", "truncated" (IPv4 /24, IPv6 /48) or "none"; "" (not set)
	// is "full". Limits and allowlists always see the whole address.
	ClientIP string `toml:"client_ip"`
	// UserAgent stores each request's user agent when true.
	UserAgent bool `toml:"user_agent"`
}

// ClientIPFull is what an unset metrics.client_ip means.
const ClientIPFull = "full"

// ClientIPPolicy is metrics.client_ip with "" read as ClientIPFull.
func (m *Metrics) ClientIPPolicy() string {
	if m.ClientIP == "" {
		return ClientIPFull
	}
	return m.ClientIP
}

// Alerts holds the alert rules and where notifications go.
type Alerts struct {
	EvaluationInterval Duration `toml:"evaluation_interval"`
	RetentionDays      int      `toml:"retention_days"`
	// RepeatInterval re-sends a firing alert nobody acknowledged.
	RepeatInterval Duration `toml:"repeat_interval"`
	// ExternalURL is the dashboard's address, for links in notifications.
	ExternalURL string       `toml:"external_url"`
	Rules       []AlertRule  `toml:"rules"`
	Notify      []NotifyRule `toml:"notify"`
}

// AlertRule is one [[alerts.rules]] entry. Threshold's unit depends on
// the type: a fraction of requests (rate_limit_exceeded, error_spike), a
// fraction of the limit (quota_warning), a robust z-score
// (unusual_activity) or milliseconds of p95 (performance_degradation).
type AlertRule struct {
	Name          string   `toml:"name"`
	Type          string   `toml:"type"`
	Subject       string   `toml:"subject"` // global | key | owner | route
	Window        Duration `toml:"window"`  // at most 15m: rules read the in-memory realtime ring
	Threshold     float64  `toml:"threshold"`
	MinRequests   int64    `toml:"min_requests"`
	For           Duration `toml:"for"`
	KeepFiringFor Duration `toml:"keep_firing_for"`
	Severity      string   `toml:"severity"`
	// Filters narrow the subjects a rule looks at (path.Match patterns).
	Routes []string `toml:"routes"`
	Tiers  []string `toml:"tiers"`
	Owners []string `toml:"owners"`
	Keys   []string `toml:"keys"`
	// Cooldown keeps a subject quiet this long after its alert resolves.
	Cooldown Duration `toml:"cooldown"`
	// unusual_activity: spike | drop | both
	Direction string `toml:"direction"`
	// performance_degradation: also fire over BaselineFactor × the
	// route's usual p95 (0: absolute threshold only).
	BaselineFactor float64 `toml:"baseline_factor"`
	// quota_warning: hourly | monthly | "" (either)
	Quota string `toml:"quota"`
}

// NotifyRule is one [[alerts.notify]] receiver.
type NotifyRule struct {
	Type        string `toml:"type"` // webhook | slack | email
	URL         Secret `toml:"url"`
	MinSeverity string `toml:"min_severity"`
	// RepeatInterval overrides alerts.repeat_interval for this receiver;
	// 0 uses it.
	RepeatInterval Duration `toml:"repeat_interval"`
	// email
	SMTPHost     string   `toml:"smtp_host"`
	SMTPPort     int      `toml:"smtp_port"`
	SMTPUsername string   `toml:"smtp_username"`
	SMTPPassword Secret   `toml:"smtp_password"`
	From         string   `toml:"from"`
	To           []string `toml:"to"`
}

// Dashboard configures the embedded UI's sessions.
type Dashboard struct {
	SessionTTL Duration `toml:"session_ttl"`
}

// Redis enables shared limits across instances.
type Redis struct {
	URL     Secret   `toml:"url"` // empty: local buckets only
	Timeout Duration `toml:"timeout"`
}

// Default returns the built-in configuration: what `serve` runs with when
// no file is given, and what every key of config.example.toml documents.
func Default() *Config {
	return &Config{
		Server: Server{
			Listen:                     "127.0.0.1:8080",
			AdminListen:                "127.0.0.1:8081",
			Edge:                       EdgeAuto,
			DataDir:                    "./data",
			TrustedProxies:             []string{"127.0.0.1/32", "::1/128"},
			ClientIPv6Prefix:           64,
			Timezone:                   "UTC",
			AuthorizeRateLimitedStatus: 429,
			MaxHeaderBytes:             32 << 10,
			ReadHeaderTimeout:          Duration(5 * time.Second),
			ReadTimeout:                Duration(60 * time.Second),
			WriteTimeout:               Duration(60 * time.Second),
			IdleTimeout:                Duration(120 * time.Second),
			ShutdownTimeout:            Duration(15 * time.Second),
			LogLevel:                   "info",
			LogFormat:                  "text",
		},
		Security: Security{
			AdminToken: "env:APIWARDEN_ADMIN_TOKEN",
			KeySecret:  "env:APIWARDEN_KEY_SECRET",
			KeyPrefix:  "wsk",

			AuthFailureLimit:  20,
			AuthFailureWindow: Duration(5 * time.Minute),
		},
		Proxy: Proxy{
			DialTimeout:           Duration(5 * time.Second),
			ResponseHeaderTimeout: Duration(30 * time.Second),
			IdleConnTimeout:       Duration(90 * time.Second),
			MaxIdleConnsPerHost:   256,
			MaxConnsPerHost:       1024,
		},
		Keys: Keys{
			Scopes: []string{"forms:read", "forms:write", "clients:read", "clients:write", "guests:read",
				"guests:write", "timeline:read", "timeline:write", "analytics:read", "admin"},
			GracePeriod:           Duration(24 * time.Hour),
			LastUsedFlushInterval: Duration(10 * time.Second),
			CacheSize:             100_000,
		},
		Limiter: Limiter{
			MaxSubjects:      1_000_000,
			SnapshotInterval: Duration(10 * time.Second),
		},
		Tiers: map[string]Tier{
			"free":       {RequestsPerHour: 100, BurstPerMinute: 10},
			"basic":      {RequestsPerHour: 500, BurstPerMinute: 25},
			"premium":    {RequestsPerHour: 2000, BurstPerMinute: 100},
			"enterprise": {RequestsPerHour: 10000, BurstPerMinute: 500},
		},
		Calendar: []CalendarRule{
			{Name: "peak-season", Months: []int{5, 6, 7, 8, 9}, Tiers: []string{"free", "basic"}, LimitMultiplier: 0.75},
			{Name: "wedding-day", Weekdays: []string{"saturday"}, LimitMultiplier: 1.5, AlertSeverityBoost: 1},
		},
		RoutesDefault: RouteDefault{Preset: "protected"},
		Metrics: Metrics{
			RawRetentionDays:    90,
			HourlyRetentionDays: 400,
			DailyRetentionDays:  0,
			FlushInterval:       Duration(time.Second),
			SampleRate:          1.0,
			InternalSampleRate:  0.1,
			BufferSize:          65536,
			MaxIngestedAge:      Duration(24 * time.Hour),
			MaxIngestedFuture:   Duration(5 * time.Minute),
			MaxIngestedRoutes:   1000,
			UserAgent:           true,
		},
		Alerts: Alerts{
			EvaluationInterval: Duration(10 * time.Second),
			RetentionDays:      90,
			RepeatInterval:     Duration(4 * time.Hour),
			Rules:              DefaultAlertRules(),
		},
		Dashboard: Dashboard{SessionTTL: Duration(12 * time.Hour)},
		Redis:     Redis{Timeout: Duration(50 * time.Millisecond)},
		Cluster:   Cluster{SpoolMaxRecords: DefaultSpoolMaxRecords},
	}
}

// DefaultAlertRules is one rule of each type (and a second, sharper quota
// rule), tuned for a small API. A test keeps them equal to
// alerting.DefaultRules.
func DefaultAlertRules() []AlertRule {
	m := func(d time.Duration) Duration { return Duration(d) }
	return []AlertRule{
		{Name: "rate-limit-exceeded", Type: "rate_limit_exceeded", Subject: "key", Window: m(5 * time.Minute),
			Threshold: 0.5, MinRequests: 50, For: m(2 * time.Minute), KeepFiringFor: m(5 * time.Minute), Severity: "medium"},
		{Name: "unusual-activity", Type: "unusual_activity", Subject: "key", Window: m(15 * time.Minute),
			Threshold: 5, MinRequests: 100, For: m(10 * time.Minute), KeepFiringFor: m(15 * time.Minute),
			Cooldown: m(time.Hour), Direction: "both", Severity: "medium"},
		{Name: "error-spike", Type: "error_spike", Subject: "global", Window: m(5 * time.Minute),
			Threshold: 0.05, MinRequests: 50, For: m(time.Minute), KeepFiringFor: m(5 * time.Minute), Severity: "high"},
		{Name: "performance-degradation", Type: "performance_degradation", Subject: "route", Window: m(5 * time.Minute),
			Threshold: 2000, BaselineFactor: 3, MinRequests: 50, For: m(5 * time.Minute), KeepFiringFor: m(10 * time.Minute),
			Severity: "medium"},
		{Name: "quota-warning", Type: "quota_warning", Subject: "key", Threshold: 0.8,
			KeepFiringFor: m(10 * time.Minute), Severity: "medium"},
		{Name: "quota-critical", Type: "quota_warning", Subject: "key", Threshold: 0.95,
			KeepFiringFor: m(10 * time.Minute), Severity: "high"},
	}
}
