package app

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/apiwarden/apiwarden/config"
	"github.com/apiwarden/apiwarden/enforce"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/limiter"
)

// The configuration is translated into each package's own types here, so
// that no core package imports config.

// KeyPolicy is the part of the configuration key validation needs.
func KeyPolicy(cfg *config.Config) keys.Policy {
	p := keys.Policy{Scopes: cfg.Keys.Scopes, GracePeriod: cfg.Keys.GracePeriod.D()}
	for name := range cfg.Tiers {
		p.Tiers = append(p.Tiers, name)
	}
	slices.Sort(p.Tiers)
	if _, ok := cfg.Tiers["free"]; ok {
		p.DefaultTier = "free"
	}
	return p
}

// LimiterTiers is the tier table.
func LimiterTiers(cfg *config.Config) map[string]limiter.Tier {
	out := make(map[string]limiter.Tier, len(cfg.Tiers))
	for name, t := range cfg.Tiers {
		out[name] = limiter.Tier{Name: name, RequestsPerHour: t.RequestsPerHour, BurstPerMinute: t.BurstPerMinute, MonthlyQuota: t.MonthlyQuota}
	}
	return out
}

// Calendar builds the calendar in server.timezone.
func Calendar(cfg *config.Config) (*limiter.Calendar, error) {
	loc, err := time.LoadLocation(cfg.Server.Timezone)
	if err != nil {
		return nil, fmt.Errorf("server.timezone: %w", err)
	}
	rules := make([]limiter.Rule, 0, len(cfg.Calendar))
	for _, c := range cfg.Calendar {
		r := limiter.Rule{Name: c.Name, Tiers: c.Tiers, LimitMultiplier: c.LimitMultiplier, AlertSeverityBoost: c.AlertSeverityBoost}
		for _, m := range c.Months {
			r.Months = append(r.Months, time.Month(m))
		}
		for _, d := range c.Weekdays {
			wd, _ := config.Weekday(d)
			r.Weekdays = append(r.Weekdays, wd)
		}
		for _, d := range c.Dates {
			from, to, _ := strings.Cut(d, "..")
			if to == "" {
				to = from
			}
			f, err := limiter.ParseDate(strings.TrimSpace(from))
			if err != nil {
				return nil, err
			}
			t, err := limiter.ParseDate(strings.TrimSpace(to))
			if err != nil {
				return nil, err
			}
			r.Dates = append(r.Dates, limiter.DateRange{From: f, To: t})
		}
		rules = append(rules, r)
	}
	return limiter.NewCalendar(loc, rules)
}

// EnforcePolicy is the route table and the tiers the presets fall back on.
func EnforcePolicy(cfg *config.Config) (enforce.Policy, error) {
	var list []enforce.Route
	for _, r := range cfg.Routes {
		preset, err := enforce.ParsePreset(r.Preset)
		if err != nil {
			return enforce.Policy{}, err
		}
		list = append(list, enforce.Route{Pattern: r.Path, Methods: r.Methods, Preset: preset, Scopes: r.Scopes,
			RequestsPerMinute: r.RequestsPerMinute, Cost: r.Cost, Tier: r.Tier, AllowQueryKey: r.AllowQueryKey})
	}
	defPreset, err := enforce.ParsePreset(cfg.RoutesDefault.Preset)
	if err != nil {
		return enforce.Policy{}, err
	}
	routes, err := enforce.NewRoutes(list, enforce.Route{Preset: defPreset, Scopes: cfg.RoutesDefault.Scopes})
	if err != nil {
		return enforce.Policy{}, err
	}
	if cfg.Server.CaseInsensitiveRoutes {
		routes = routes.IgnoreCase()
	}
	return enforce.Policy{Routes: routes, PublicTier: publicTier(cfg), StrictestTier: strictestTier(cfg)}, nil
}

// publicTier limits client IPs on public routes: "free" when it exists,
// else the strictest tier.
func publicTier(cfg *config.Config) string {
	if _, ok := cfg.Tiers["free"]; ok {
		return "free"
	}
	return strictestTier(cfg)
}

// strictestTier is the tier with the smallest hourly limit (then burst,
// then name, so the choice is stable).
func strictestTier(cfg *config.Config) string {
	best := ""
	for name, t := range cfg.Tiers {
		if best == "" {
			best = name
			continue
		}
		b := cfg.Tiers[best]
		if t.RequestsPerHour < b.RequestsPerHour ||
			(t.RequestsPerHour == b.RequestsPerHour && (t.BurstPerMinute < b.BurstPerMinute ||
				(t.BurstPerMinute == b.BurstPerMinute && name < best))) {
			best = name
		}
	}
	return best
}

// PathRules are the server.allow_path_* settings: which request paths the
// request edge lets through.
func PathRules(cfg *config.Config) enforce.PathRules {
	s := cfg.Server
	return enforce.PathRules{AllowSemicolons: s.AllowPathSemicolons, AllowBackslashes: s.AllowPathBackslashes,
		AllowEncodedSlashes: s.AllowPathEncodedSlashes, AllowDotSegments: s.AllowPathDotSegments}
}

// TrustedProxies parses server.trusted_proxies.
func TrustedProxies(cfg *config.Config) (enforce.TrustedProxies, error) {
	var out enforce.TrustedProxies
	for _, s := range cfg.Server.TrustedProxies {
		p, err := config.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("server.trusted_proxies: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// Upstream parses proxy.upstream; nil when proxy mode is off.
func Upstream(cfg *config.Config) (*url.URL, error) {
	if cfg.Proxy.Upstream == "" {
		return nil, nil
	}
	u, err := url.Parse(cfg.Proxy.Upstream)
	if err != nil {
		return nil, fmt.Errorf("proxy.upstream: %w", err)
	}
	return u, nil
}
