package demo

import (
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/app"
	"github.com/apiwarden/apiwarden/config"
	"github.com/apiwarden/apiwarden/enforce"
)

// The demo configuration decodes strictly over the defaults, keeps the
// wedding tiers, and routes every demo endpoint to a route of its own
// with the intended preset.
func TestConfig(t *testing.T) {
	cfg, err := Config(ConfigOptions{AdminListen: "127.0.0.1:8080", Upstream: "http://127.0.0.1:3000", DataDir: "/tmp/x", AdminToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	def := config.Default()
	for name, tier := range def.Tiers {
		got := cfg.Tiers[name]
		if got.RequestsPerHour != tier.RequestsPerHour || got.BurstPerMinute != tier.BurstPerMinute {
			t.Errorf("tier %s: %+v, want the default %+v", name, got, tier)
		}
	}
	if cfg.Tiers["free"].MonthlyQuota != 1000 {
		t.Errorf("free monthly quota %d", cfg.Tiers["free"].MonthlyQuota)
	}
	if len(cfg.Calendar) != len(def.Calendar) {
		t.Errorf("calendar rules %d, want the defaults' %d", len(cfg.Calendar), len(def.Calendar))
	}
	if cfg.Security.AdminToken.Value() != "tok" || cfg.Security.KeySecret.Value() != "" || cfg.Server.Listen != "127.0.0.1:0" ||
		cfg.Server.AdminListen != "127.0.0.1:8080" || cfg.Proxy.Upstream != "http://127.0.0.1:3000" || cfg.Server.DataDir != "/tmp/x" {
		t.Errorf("settings not applied: %+v %+v", cfg.Server, cfg.Proxy)
	}
	if cfg.Alerts.EvaluationInterval.D() > 5*time.Second {
		t.Errorf("alerts are evaluated every %v: too slow for a demo", cfg.Alerts.EvaluationInterval.D())
	}
	types := map[string]bool{}
	for _, r := range cfg.Alerts.Rules {
		types[r.Type] = true
	}
	for _, typ := range []string{"rate_limit_exceeded", "unusual_activity", "error_spike", "performance_degradation", "quota_warning"} {
		if !types[typ] {
			t.Errorf("no %s rule", typ)
		}
	}

	policy, err := app.EnforcePolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]struct {
		route  string
		preset enforce.Preset
		scope  string
	}{
		epGuestsList:      {"/api/guests/*", enforce.Protected, "guests:read"},
		epGuestUpdate:     {"/api/guests/*", enforce.Protected, "guests:write"},
		epFormSubmit:      {"/api/forms/*", enforce.Protected, "forms:write"},
		epTimelineUpdate:  {"/api/timeline/*", enforce.Protected, "timeline:write"},
		epClientCreate:    {"/api/clients/*", enforce.Protected, "clients:write"},
		epPhotoUpload:     {"/api/photos/upload", enforce.HighVolume, ""},
		epVenues:          {"/api/public/*", enforce.Public, ""},
		epRSVPSubmit:      {"/api/public/*", enforce.Public, ""},
		epHealth:          {"/healthz", enforce.Internal, ""},
		epFormSubmissions: {"/api/forms/*", enforce.Protected, "forms:read"},
	}
	for i, ep := range endpoints {
		r := policy.Routes.Match(ep.Method, pathOnly(fillPath(newPlanner(1, time.UTC, 1, nil).rng, ep.Pattern)))
		if r.Pattern == "*" {
			t.Errorf("%s %s falls to the default route", ep.Method, ep.Pattern)
			continue
		}
		w, ok := want[i]
		if !ok {
			continue
		}
		scope := ""
		if len(r.Scopes) > 0 {
			scope = r.Scopes[0]
		}
		if r.Pattern != w.route || r.Preset != w.preset || scope != w.scope {
			t.Errorf("%s %s: route %s %v %q, want %s %v %q", ep.Method, ep.Pattern, r.Pattern, r.Preset, scope, w.route, w.preset, w.scope)
		}
	}
}
