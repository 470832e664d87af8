// Package app assembles apiwarden from its configuration: it opens the
// data file, builds the core services, binds the listeners and runs
// everything until its context ends, then shuts down in order. The serve
// and demo commands (cli/) use it; tests start it on 127.0.0.1:0.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/api"
	"github.com/apiwarden/apiwarden/api/admin"
	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/api/loopedge"
	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/config"
	"github.com/apiwarden/apiwarden/enforce"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/limiter"
	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/store"
	"github.com/apiwarden/apiwarden/telemetry"
)

// Options are what the process gives the app besides its configuration.
type Options struct {
	Version string
	Logger  *slog.Logger
	Now     func() time.Time
}

// App is a configured, bound, not yet running apiwarden.
type App struct {
	cfg *config.Config
	// server is [server] as New read it, and edge the enforcement
	// listener's server as New resolved it: Run reads these, not cfg,
	// which Reload replaces meanwhile, and [server] takes a restart.
	server    config.Server
	edge      string
	log       *slog.Logger
	now       func() time.Time
	st        *store.Store
	keys      *keys.Service
	limits    *limiter.Limiter
	redis     *limiter.Redis // nil without [redis] url
	engine    *enforce.Engine
	rec       *metrics.Recorder
	routeCap  *metrics.RouteCap // distinct routes /v1/events may file
	realtime  *analytics.Realtime
	analytics *analytics.Service
	alerts    *alerting.Evaluator
	notify    *alerting.Dispatcher
	telemetry *telemetry.Telemetry
	api       *api.Server
	cluster   *cluster.Cluster   // nil without [cluster] postgres_url
	listener  *cluster.Listener  // keeps the key mirror current; nil without cluster
	heartbeat *cluster.Heartbeat // this instance's row in GET /admin/v1/cluster; nil without cluster
	leader    *cluster.Leader    // elects the one instance that evaluates alerts; nil without cluster
	shipper   *cluster.Shipper   // ships request records to PostgreSQL; nil without cluster
	usageSrc  *cluster.Source    // the analytics' reads of PostgreSQL; nil without cluster
	instance  string             // cluster.instance_id, or the host name
	version   string
	startedAt time.Time

	// eraser is the data file's one eraser: the admin API and follower
	// (other instances' erasures; nil without cluster) take turns on it.
	eraser   *metrics.Eraser
	follower *cluster.ErasureFollower

	// pgRetention deletes expired records and rollups from PostgreSQL
	// while retentionLead elects this instance; both nil without cluster.
	pgRetention   *cluster.Retention
	retentionLead *cluster.Leader
	// pgFold merges closed cells' per-instance rows in PostgreSQL under
	// the same leadership as pgRetention; nil without cluster.
	pgFold *cluster.Fold

	calendar *limiter.Calendar // as configured at start; the limiter holds the one in force
	cleanups []func()          // undo what New opened, when a later step fails

	adminLn    net.Listener
	adminSrv   *http.Server
	enforceLn  net.Listener // nil when admin_listen serves everything
	enforceSrv server       // net/http's or api/fastedge's (server.edge)
}

// New opens the data directory and binds the listeners, so that when it
// returns without error the ports are taken and their addresses known.
// Everything opened is closed again if a later step fails.
func New(cfg *config.Config, opts Options) (_ *App, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := secretsResolved(cfg); err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, server: cfg.Server, edge: cfg.EdgeServer(), log: opts.Logger, now: opts.Now, version: opts.Version, startedAt: opts.Now()}
	defer func() {
		if err != nil {
			for i := len(a.cleanups) - 1; i >= 0; i-- {
				a.cleanups[i]()
			}
		}
	}()
	for _, step := range []func() error{a.openStore, a.newEnforcement, a.newRecording, a.newAlerts} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if err := a.newAPI(opts.Version); err != nil {
		return nil, err
	}
	if err := a.bind(); err != nil {
		return nil, err
	}
	return a, nil
}

// secretsResolved refuses secrets that are still env:/file: references:
// config.Load resolves them, and a Config built in code must hold the
// values themselves, never the reference text as a token.
func secretsResolved(cfg *config.Config) error {
	for name, v := range map[string]config.Secret{"security.admin_token": cfg.Security.AdminToken,
		"security.key_secret": cfg.Security.KeySecret, "security.service_token": cfg.Security.ServiceToken,
		"security.metrics_token": cfg.Security.MetricsToken, "cluster.postgres_url": cfg.Cluster.PostgresURL} {
		if s := v.Value(); strings.HasPrefix(s, "env:") || strings.HasPrefix(s, "file:") {
			return fmt.Errorf("%s is the unresolved reference %q: load the configuration with config.Load", name, s)
		}
	}
	return nil
}

// openStore opens the data file and the key service over it.
func (a *App) openStore() (err error) {
	cfg := a.cfg
	if a.st, err = store.Open(cfg.Server.DataDir, store.Options{Logger: a.log}); err != nil {
		return err
	}
	a.cleanups = append(a.cleanups, func() { a.st.Close() })
	secret, err := a.keySecret()
	if err != nil {
		return err
	}
	if err := a.openCluster(secret); err != nil {
		return err
	}
	a.keys, err = keys.New(keys.Options{
		Store:         a.st,
		Secret:        secret,
		Prefix:        cfg.Security.KeyPrefix,
		Policy:        KeyPolicy(cfg),
		CacheSize:     cfg.Keys.CacheSize,
		FlushInterval: cfg.Keys.LastUsedFlushInterval.D(),
		Now:           a.now,
		Logger:        a.log,
		Records:       a.keyRecords(),
	})
	if err != nil {
		return err
	}
	a.cleanups = append(a.cleanups, a.keys.Close)
	return a.startMirror()
}

// newEnforcement builds the limiter (shared through Redis when
// configured) and the decision engine.
func (a *App) newEnforcement() (err error) {
	cfg := a.cfg
	if a.calendar, err = Calendar(cfg); err != nil {
		return err
	}
	a.limits, err = limiter.New(limiter.Options{
		Store:            a.st,
		Tiers:            LimiterTiers(cfg),
		Calendar:         a.calendar,
		MaxSubjects:      cfg.Limiter.MaxSubjects,
		SnapshotInterval: cfg.Limiter.SnapshotInterval.D(),
		Now:              a.now,
		Logger:           a.log,
		// Minimised records would be pointless with full addresses in
		// the bucket snapshots: those stay in memory then.
		AddressesInMemory: cfg.Metrics.ClientIPPolicy() != config.ClientIPFull,
	})
	if err != nil {
		return err
	}
	var rateLimiter enforce.RateLimiter = a.limits
	if url := cfg.Redis.URL.Value(); url != "" {
		a.redis, err = limiter.NewRedis(a.limits, limiter.RedisOptions{URL: url, Timeout: cfg.Redis.Timeout.D(), Logger: a.log})
		if err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		a.cleanups = append(a.cleanups, func() { a.redis.Close() })
		rateLimiter = a.redis
	}
	policy, err := EnforcePolicy(cfg)
	if err != nil {
		return err
	}
	a.engine = enforce.NewEngine(minimisedDenials{a.keys, minimisation(cfg.Metrics).ClientIP}, rateLimiter, policy)
	return nil
}

// peeker reads live bucket state from whichever limiter decides.
func (a *App) peeker() analytics.Peeker {
	if a.redis != nil {
		return a.redis
	}
	return a.limits
}

func (a *App) retention() analytics.Retention {
	m := a.cfg.Metrics
	return analytics.Retention{RawDays: m.RawRetentionDays, HourlyDays: m.HourlyRetentionDays, DailyDays: m.DailyRetentionDays}
}

// minimisation turns [metrics] client_ip and user_agent into the
// Recorder's option; the config loader has already refused other values.
func minimisation(m config.Metrics) metrics.Minimisation {
	policy, _ := metrics.ParseClientIPPolicy(m.ClientIPPolicy())
	return metrics.Minimisation{ClientIP: policy, DropUserAgent: !m.UserAgent}
}

// newRecording builds the metrics writer, the realtime ring and the
// analytics service over the rollups.
func (a *App) newRecording() (err error) {
	m := a.cfg.Metrics
	a.rec, err = metrics.New(metrics.Options{
		Store:               a.st,
		FlushInterval:       m.FlushInterval.D(),
		SampleRate:          m.SampleRate,
		BufferSize:          m.BufferSize,
		RawRetentionDays:    m.RawRetentionDays,
		HourlyRetentionDays: m.HourlyRetentionDays,
		DailyRetentionDays:  m.DailyRetentionDays,
		Now:                 a.now,
		Logger:              a.log,
		// The cluster's shipper copies the cells each flush changed.
		MarkChangedCells: a.cfg.Cluster.PostgresURL.Value() != "",
		Minimise:         minimisation(m),
	})
	if err != nil {
		return err
	}
	a.eraser = metrics.NewEraser(a.st, a.rec, a.log)
	if a.cluster != nil {
		a.follower = cluster.NewErasureFollower(a.cluster, a.eraser)
	}
	if a.routeCap, err = a.newRouteCap(); err != nil {
		return err
	}
	if a.realtime, err = analytics.NewRealtime(analytics.RealtimeOptions{Now: a.now}); err != nil {
		return err
	}
	src, err := a.analyticsSource()
	if err != nil {
		return err
	}
	a.analytics, err = analytics.New(analytics.Options{
		Source:    src,
		Location:  a.calendar.Location(),
		Retention: a.retention(),
		Limits:    a.peeker(),
		Calendar:  calendarSource{a.limits},
		Now:       a.now,
	})
	return err
}

// newRouteCap caps the distinct routes /v1/events may file. It knows the
// configured patterns and the routes already stored, so that a restart
// makes no new room.
func (a *App) newRouteCap() (*metrics.RouteCap, error) {
	max := a.cfg.Metrics.MaxIngestedRoutes
	known, err := metrics.NewReader(a.st).Values(context.Background(), metrics.DimRoute, max)
	if err != nil {
		return nil, fmt.Errorf("reading the stored routes: %w", err)
	}
	return metrics.NewRouteCap(max, append(known, routePatterns(a.cfg)...)...), nil
}

// routePatterns lists the configured routes' path patterns.
func routePatterns(cfg *config.Config) []string {
	out := make([]string, 0, len(cfg.Routes))
	for _, r := range cfg.Routes {
		out = append(out, r.Path)
	}
	return out
}

// newAPI builds the HTTP handlers over the services.
func (a *App) newAPI(version string) error {
	cfg := a.cfg
	trusted, err := TrustedProxies(cfg)
	if err != nil {
		return err
	}
	upstream, err := Upstream(cfg)
	if err != nil {
		return err
	}
	if a.shared() && upstream != nil {
		return errors.New("server.admin_listen must differ from server.listen in proxy mode: every path of listen goes upstream")
	}
	if err := a.checkEdge(); err != nil {
		return err
	}
	if cfg.Security.AdminToken == "" {
		a.log.Warn("no admin token configured: the admin API refuses every call; set APIWARDEN_ADMIN_TOKEN (or security.admin_token) to enable it")
	}
	recorder := metrics.Tee{Recorder: a.rec, Live: a.realtime}
	a.telemetry = telemetry.New(telemetry.Limiter(a.limits), telemetry.Redis(a.redis),
		telemetry.Recorder(a.rec), telemetry.IngestedRoutes(a.routeCap), telemetry.Store(a.st), telemetry.Alerts(a.alerts),
		telemetry.ClusterStore(a.healthReporter()), telemetry.Shipping(a.shipReporter()),
		telemetry.ClusterRetention(a.retentionReporter()), telemetry.ClusterErasures(a.erasureReporter()))
	a.api = api.New(api.Options{
		Gateway: gateway.Options{
			Gate: gateway.GateOptions{
				Engine:                     a.engine,
				Recorder:                   recorder,
				Observer:                   a.telemetry,
				Trusted:                    trusted,
				Paths:                      PathRules(cfg),
				ServiceToken:               cfg.Security.ServiceToken.Value(),
				AuthorizeRateLimitedStatus: cfg.Server.AuthorizeRateLimitedStatus,
				CountryHeader:              cfg.Metrics.CountryHeader,
				MaxHeaderBytes:             cfg.Server.MaxHeaderBytes,
				InternalSampleRate:         cfg.Metrics.InternalSampleRate,
			},
			Proxy: gateway.ProxyOptions{
				Upstream:              upstream,
				DialTimeout:           cfg.Proxy.DialTimeout.D(),
				ResponseHeaderTimeout: cfg.Proxy.ResponseHeaderTimeout.D(),
				IdleConnTimeout:       cfg.Proxy.IdleConnTimeout.D(),
				MaxIdleConnsPerHost:   cfg.Proxy.MaxIdleConnsPerHost,
				MaxConnsPerHost:       cfg.Proxy.MaxConnsPerHost,
				MaxBodyBytes:          cfg.Proxy.MaxBodyBytes,
			},
			Events: recorder,
			Keys:   a.keys,
			Ingest: gateway.IngestLimits{
				MaxAge:    cfg.Metrics.MaxIngestedAge.D(),
				MaxFuture: cfg.Metrics.MaxIngestedFuture.D(),
				Routes:    a.routeCap,
			},
		},
		Admin: admin.Options{
			AdminToken: cfg.Security.AdminToken.Value(),
			Keys:       a.keys,
			Alerts:     a.alerts,
			// The same service answers the analytics routes and gives the
			// alert evaluator its history.
			Analytics: admin.AnalyticsOptions{
				Service:  a.analytics,
				Realtime: a.realtime,
			},
			DebugPprof:   cfg.Server.DebugPprof,
			Backup:       flushingBackup{a},
			Eraser:       usageEraser{a: a, eraser: a.eraser},
			Dashboard:    admin.DashboardOptions{SessionTTL: cfg.Dashboard.SessionTTL.D(), Store: a.sessionStore()},
			Metrics:      a.telemetry.Handler(),
			MetricsToken: cfg.Security.MetricsToken.Value(),
			ReadyChecks:  a.readyChecks(),
			Cluster:      a.clusterView(),
			Version:      version,

			// Wrong admin tokens per client, answered 429 past the limit.
			AuthFailureLimit:  authFailureLimit(cfg),
			AuthFailureWindow: cfg.Security.AuthFailureWindow.D(),
			IPv6Prefix:        cfg.Server.ClientIPv6Prefix,
		},
		SharedListener: a.shared(),
		Now:            a.now,
		Logger:         a.log,
	})
	return nil
}

// shared says listen and admin_listen are one address, served by one
// listener. Equal addresses with port 0 each get their own ephemeral
// port (tests do this).
func (a *App) shared() bool { return a.cfg.Server.SharedListener() }

// bind takes the ports, so that after New their addresses are known.
func (a *App) bind() (err error) {
	s := a.cfg.Server
	adminAddr := s.AdminListen
	if adminAddr == "" {
		adminAddr = s.Listen
	}
	if a.adminLn, err = net.Listen("tcp", adminAddr); err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	a.cleanups = append(a.cleanups, func() { a.adminLn.Close() })
	a.adminSrv = a.httpServer(a.api.AdminHandler())
	// Live streams never end on their own; Shutdown would wait for them.
	a.adminSrv.RegisterOnShutdown(a.api.Admin().CloseStreams)
	if !a.shared() {
		if a.enforceLn, err = net.Listen("tcp", s.Listen); err != nil {
			return fmt.Errorf("listener: %w", err)
		}
		a.cleanups = append(a.cleanups, func() { a.enforceLn.Close() })
		if a.enforceSrv, err = a.enforcementServer(); err != nil {
			return err
		}
	}
	a.warnOpenServiceAPI()
	return nil
}

// warnOpenServiceAPI says so when /v1/check, /v1/authorize and /v1/events
// have no service token on an address other machines can reach: they
// answer loopback clients only there (protected mode, api/gateway), so a
// proxy or app on another host is refused until a token is set.
func (a *App) warnOpenServiceAPI() {
	if a.cfg.Security.ServiceToken.Value() != "" {
		return
	}
	ln := a.adminLn // proxy mode, or one shared listener
	if a.cfg.Proxy.Upstream == "" && a.enforceLn != nil {
		ln = a.enforceLn
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && tcp.IP.IsLoopback() {
		return
	}
	a.log.Warn("security.service_token is empty: /v1/check, /v1/authorize and /v1/events answer loopback clients only, and refuse callers from other hosts with 403; set a service token for them",
		"addr", ln.Addr().String())
}

// keySecret is the configured HMAC pepper, or one generated into the
// data directory on first start (keys.ResolveSecret), with a warning then.
func (a *App) keySecret() ([]byte, error) {
	secret, created, err := keys.ResolveSecret(a.cfg.Security.KeySecret.Value(), a.cfg.Server.DataDir)
	if err != nil {
		return nil, err
	}
	if created {
		a.log.Warn("generated a key secret; back it up with the data file, or set APIWARDEN_KEY_SECRET",
			"file", a.cfg.Server.DataDir+"/"+keys.SecretFileName)
	}
	return secret, nil
}

func (a *App) httpServer(h http.Handler) *http.Server {
	s := a.cfg.Server
	return &http.Server{
		Handler: h,
		// The handlers refuse headers over max_header_bytes with the JSON
		// error body; the server's own, plain-text limit is a backstop.
		MaxHeaderBytes:    2*s.MaxHeaderBytes + 4096,
		ReadHeaderTimeout: s.ReadHeaderTimeout.D(),
		ReadTimeout:       s.ReadTimeout.D(),
		WriteTimeout:      s.WriteTimeout.D(),
		IdleTimeout:       s.IdleTimeout.D(),
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
}

// Reload applies what can change at run time from a newly loaded
// configuration: tiers, calendar rules, routes, alert rules, key scopes
// and grace period. Everything is translated and checked before anything changes,
// so an error leaves the running configuration in force. Settings that
// need a restart (listeners, data_dir, secrets, upstream, redis, metrics)
// are reported in the log when they differ.
func (a *App) Reload(cfg *config.Config) error {
	calendar, err := Calendar(cfg)
	if err != nil {
		return err
	}
	policy, err := EnforcePolicy(cfg)
	if err != nil {
		return err
	}
	rules, err := AlertRules(cfg)
	if err != nil {
		return err
	}
	if err := a.limits.SetTiers(LimiterTiers(cfg)); err != nil {
		return err
	}
	if err := a.alerts.SetRules(rules); err != nil {
		return err
	}
	a.limits.SetCalendar(calendar)
	// server.client_ipv6_prefix is read at start, like the rest of
	// [server] (the admin-token throttle has it too): keep the running one.
	policy.IPv6Prefix = a.engine.Policy().IPv6Prefix
	a.engine.SetPolicy(policy)
	a.keys.SetPolicy(KeyPolicy(cfg))
	a.routeCap.Reconfigure(cfg.Metrics.MaxIngestedRoutes, routePatterns(cfg)...)
	for _, name := range restartOnly(a.cfg, cfg) {
		a.log.Warn("setting changed but needs a restart to take effect", "setting", name)
	}
	a.cfg = cfg
	a.log.Info("configuration reloaded", "tiers", len(cfg.Tiers), "routes", len(cfg.Routes),
		"calendar_rules", len(cfg.Calendar), "alert_rules", len(rules))
	return nil
}

// restartOnly names the sections that differ between two configurations
// and are only read at start.
func restartOnly(old, cur *config.Config) []string {
	var changed []string
	oldAlerts, curAlerts := old.Alerts, cur.Alerts
	oldAlerts.Rules, curAlerts.Rules = nil, nil // reloaded
	oldServer, curServer := old.Server, cur.Server
	oldServer.CaseInsensitiveRoutes, curServer.CaseInsensitiveRoutes = false, false // reloaded with the routes
	oldMetrics, curMetrics := old.Metrics, cur.Metrics
	oldMetrics.MaxIngestedRoutes, curMetrics.MaxIngestedRoutes = 0, 0 // reloaded
	oldKeys, curKeys := old.Keys, cur.Keys
	oldKeys.Scopes, curKeys.Scopes, oldKeys.GracePeriod, curKeys.GracePeriod = nil, nil, 0, 0 // reloaded
	for name, differ := range map[string]bool{
		"server":                                 !reflect.DeepEqual(oldServer, curServer),
		"security":                               !reflect.DeepEqual(old.Security, cur.Security),
		"proxy":                                  !reflect.DeepEqual(old.Proxy, cur.Proxy),
		"metrics (but max_ingested_routes)":      !reflect.DeepEqual(oldMetrics, curMetrics),
		"limiter":                                !reflect.DeepEqual(old.Limiter, cur.Limiter),
		"redis":                                  !reflect.DeepEqual(old.Redis, cur.Redis),
		"cluster":                                !reflect.DeepEqual(old.Cluster, cur.Cluster),
		"dashboard":                              !reflect.DeepEqual(old.Dashboard, cur.Dashboard),
		"keys (other than scopes, grace_period)": !reflect.DeepEqual(oldKeys, curKeys),
		"alerts (other than rules)":              !reflect.DeepEqual(oldAlerts, curAlerts),
	} {
		if differ {
			changed = append(changed, name)
		}
	}
	slices.Sort(changed)
	return changed
}

// newAlerts builds the notification dispatcher and the evaluator over the
// realtime ring, the hourly rollups and the limiter.
func (a *App) newAlerts() error {
	rules, err := AlertRules(a.cfg)
	if err != nil {
		return err
	}
	receivers, err := Receivers(a.cfg)
	if err != nil {
		return err
	}
	if a.notify, err = alerting.NewDispatcher(receivers, a.log); err != nil {
		return err
	}
	a.alerts, err = alerting.New(alerting.Options{
		Store:          a.st,
		State:          a.alertState(),
		Leadership:     a.alertLeadership(),
		Rules:          rules,
		Traffic:        a.realtime,
		History:        a.analytics,
		Quotas:         quotaSource{limits: a.limits, keys: a.keys, fraction: func() float64 { return lowestQuotaThreshold(a.alerts.Rules()) }},
		Calendar:       calendarSource{a.limits},
		Keys:           keyDirectory{a.keys},
		Location:       a.calendar.Location(), // server.timezone needs a restart, like the evaluator
		Notify:         a.notify,
		Interval:       a.cfg.Alerts.EvaluationInterval.D(),
		RepeatInterval: RepeatInterval(a.cfg),
		Retention:      time.Duration(a.cfg.Alerts.RetentionDays) * 24 * time.Hour,
		Now:            a.now,
		Logger:         a.log,
	})
	return err
}

// readyChecks report conditions /readyz shows without failing: the
// instance still serves when they are degraded.
func (a *App) readyChecks() []admin.ReadyCheck {
	var checks []admin.ReadyCheck
	if a.redis != nil {
		checks = append(checks, admin.ReadyCheck{Name: "redis", Check: func() string {
			if a.redis.Healthy() {
				return "ok"
			}
			return "fallback: Redis unreachable, limits are per instance until it returns"
		}})
	}
	if a.cluster != nil {
		checks = append(checks, a.clusterCheck())
	}
	return checks
}

// AdminAddr is the bound address of the admin listener.
func (a *App) AdminAddr() string { return a.adminLn.Addr().String() }

// Addr is the bound address of the enforcement listener (the admin one
// when they are shared).
func (a *App) Addr() string {
	if a.enforceLn == nil {
		return a.AdminAddr()
	}
	return a.enforceLn.Addr().String()
}

// Run serves until ctx ends, then drains in-flight requests (up to
// server.shutdown_timeout), flushes what is written behind and closes the
// data file. It returns the first error that stopped it early. It first
// applies server.memory_limit, a setting of the whole process, and on the
// evloop edge raises GOMAXPROCS beside the loops (loopedge.Server.SpareP).
func (a *App) Run(ctx context.Context) error {
	if limit, from := applyMemoryLimit(a.server.MemoryLimit, os.Getenv); from != "none" {
		a.log.Info("memory limit", "bytes", limit, "set_by", from)
	}
	if loops, ok := a.enforceSrv.(*loopedge.Server); ok {
		a.log.Info("event loops", "gomaxprocs", loops.SpareP())
	}
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	serve := func(name string, srv server, ln net.Listener, edge string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.log.Info("listening", "listener", name, "addr", ln.Addr().String(), "edge", edge)
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s listener: %w", name, err)
			}
		}()
	}
	stopBackground := a.runBackground()

	serve("admin", a.adminSrv, a.adminLn, config.EdgeNetHTTP)
	if a.enforceSrv != nil {
		serve("enforcement", a.enforceSrv, a.enforceLn, a.edge)
	}
	a.api.Admin().SetReady(true)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	a.api.Admin().SetReady(false)
	if d := a.server.ShutdownDelay.D(); d > 0 && runErr == nil {
		a.log.Info("unready; serving until load balancers notice", "delay", d.String())
		time.Sleep(d)
	}
	a.log.Info("shutting down", "drain_timeout", a.server.ShutdownTimeout.D().String())

	a.drainListeners()
	wg.Wait()

	// Nothing decides requests any more.
	stopBackground()
	a.keys.Close()
	if a.redis != nil {
		a.redis.Close()
	}
	a.closeCluster()
	if err := a.st.Close(); err != nil && runErr == nil {
		runErr = err
	}
	a.log.Info("stopped")
	return runErr
}

// runBackground starts the parts that run beside the listeners (key
// usage, limiter, recorder, notifications, alerts, the Redis probe, the
// cluster mirror and realtime sync) and returns what stops them: it stops
// evaluating, writes what is buffered and saves the buckets, in that
// order, logging what fails.
func (a *App) runBackground() (stop func()) {
	keysDone := make(chan error, 1)
	go func() { keysDone <- a.keys.Run(context.Background()) }()
	limitsDone := make(chan error, 1)
	go func() { limitsDone <- a.limits.Run(context.Background()) }()
	recDone := make(chan error, 1)
	go func() { recDone <- a.rec.Run(context.Background()) }()
	go a.notify.Run(context.Background())
	go a.alerts.Run(context.Background())
	if a.redis != nil {
		// Probes an open breaker with no traffic, so /readyz recovers.
		go a.redis.Run(context.Background())
	}
	stopMirror := a.runMirror()
	stopRealtime := a.runRealtimeSync()
	return func() {
		a.alerts.Stop()
		a.notify.Stop()
		if a.redis != nil {
			a.redis.Stop()
		}
		a.rec.Stop()
		if err := <-recDone; err != nil {
			a.log.Error("final metrics flush failed", "err", err)
		}
		a.limits.Stop()
		if err := <-limitsDone; err != nil {
			a.log.Error("limiter", "err", err)
		}
		stopRealtime()
		stopMirror() // before the key service flushes and closes
		a.keys.Stop()
		if err := <-keysDone; err != nil {
			a.log.Error("final write of key usage failed", "err", err)
		}
	}
}

// drainListeners shuts both listeners' servers down at once, each given
// server.shutdown_timeout to finish its requests before it is closed.
func (a *App) drainListeners() {
	drainCtx, cancel := context.WithTimeout(context.Background(), a.server.ShutdownTimeout.D())
	defer cancel()
	var drain sync.WaitGroup
	for name, srv := range map[string]server{"admin": a.adminSrv, "enforcement": a.enforceSrv} {
		if srv == nil {
			continue
		}
		drain.Add(1)
		go func() {
			defer drain.Done()
			if err := srv.Shutdown(drainCtx); err != nil {
				a.log.Warn("listener did not drain in time; closing it", "listener", name, "err", err)
				srv.Close()
			}
		}()
	}
	drain.Wait()
}
