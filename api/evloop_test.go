package api_test

import "testing"

// TestProxyOnEventLoops runs the proxy tests the experimental event-loop
// edge (api/loopedge, server.edge = "evloop") passes on it. It serves the
// lean path alone: the tests of what it hands to no one yet (upgrades,
// chunked and large uploads, Expect, HTTP/1.0, streamed answers, the
// header and idle timeouts, the drain) are listed in README.md, "The
// event-loop edge (experimental)", not here.
func TestProxyOnEventLoops(t *testing.T) {
	for name, test := range map[string]func(*testing.T, string){
		"LiveKeysNeverReachTheUpstream":       testLiveKeysNeverReachTheUpstream,
		"LookAlikeIdentityHeadersAreStripped": testLookAlikeIdentityHeadersAreStripped,
		"SessionCookieNeverReachesTheApp":     testSessionCookieNeverReachesTheApp,
		"ProxyDecisionsPerPresetAndCode":      testProxyDecisionsPerPresetAndCode,
		"RateLimitHeadersAndRetryAfter":       testRateLimitHeadersAndRetryAfter,
		"UpstreamSeesIdentityNotKey":          testUpstreamSeesIdentityNotKey,
		"ForwardedForTrust":                   testForwardedForTrust,
		"ProxyRecordsEveryRequest":            testProxyRecordsEveryRequest,
		"OversizedHeadersAndBody":             testOversizedHeadersAndBody,
		"ForwardedHeadersReachTheUpstream":    testForwardedHeadersReachTheUpstream,
		"InternalRoutesAreSampled":            testInternalRoutesAreSampled,
		"UnaskedSwitchingProtocols":           testUnaskedSwitchingProtocolsIsAnUpstreamError,
		"ForwardingDropsHopByHopHeaders":      testForwardingDropsHopByHopHeaders,
	} {
		t.Run(name, func(t *testing.T) { test(t, "evloop") })
	}
}
