package enforce_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/apiwarden/apiwarden/enforce"
	"github.com/apiwarden/apiwarden/limiter"
)

func ExampleEngine_Decide() {
	routes, _ := enforce.NewRoutes([]enforce.Route{
		{Pattern: "/rsvp/*", Preset: enforce.Public},
	}, enforce.Route{Preset: enforce.Protected})
	lim, _ := limiter.New(limiter.Options{Tiers: map[string]limiter.Tier{"free": {RequestsPerHour: 100, BurstPerMinute: 2}}})
	// Public routes need no key, so this engine has no key verifier.
	engine := enforce.NewEngine(nil, lim, enforce.Policy{Routes: routes, PublicTier: "free"})

	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	guest := netip.MustParseAddr("203.0.113.7")
	for range 3 {
		d := engine.Decide(now, &enforce.Facts{Method: "POST", Path: "/rsvp/evt_1", ClientIP: guest})
		fmt.Println(d.Code, d.Route.Pattern, d.Tier)
	}
	d := engine.Decide(now, &enforce.Facts{Method: "GET", Path: "/guests", ClientIP: guest})
	fmt.Println(d.Code, d.Allowed())
	// Output:
	// VALID /rsvp/* free
	// VALID /rsvp/* free
	// RATE_LIMITED /rsvp/* free
	// MISSING_KEY false
}

func ExampleTrustedProxies_ClientIP() {
	trusted := enforce.TrustedProxies{netip.MustParsePrefix("10.0.0.0/8")}
	fmt.Println(trusted.ClientIP(netip.MustParseAddr("10.0.0.5"), []string{"6.6.6.6, 198.51.100.7"}))
	fmt.Println(trusted.ClientIP(netip.MustParseAddr("203.0.113.9"), []string{"198.51.100.7"}))
	// Output:
	// 198.51.100.7
	// 203.0.113.9
}
