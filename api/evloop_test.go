package api_test

import "testing"

// TestProxyOnEventLoops runs the proxy tests the experimental event-loop
// edge (api/loopedge, server.edge = "evloop") passes on it: the lean path
// on its loops, the rest handed with its connection to the fasthttp edge.
// What it does not do yet (shared upstream connections and
// max_conns_per_host) is listed in README.md, "The event-loop edge
// (experimental)", and its tests are left out here.
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
		// Handed to the fasthttp edge (loopedge's Options.Handoff):
		"ProxyEdgesParseAlike":               testProxyEdgesParseAlike,
		"ProxyEdgesStreamUploads":            testProxyEdgesStreamUploads,
		"ProxyEdgesOneContinue":              testProxyEdgesOneContinue,
		"UpgradeCannotTunnelPastTheGateway":  testUpgradeCannotTunnelPastTheGateway,
		"ConnectionHeaderCannotDropIdentity": testConnectionHeaderCannotDropIdentityHeaders,
		// The loop's deadlines and drain:
		"UpstreamDownAndSlow":         testUpstreamDownAndSlow,
		"ProxyEdgesCutOffSlowHeaders": testProxyEdgesCutOffSlowHeaders,
		"ProxyEdgesDrainOnShutdown":   testProxyEdgesDrainOnShutdown,
		// Chunked answers relayed on the loop:
		"StreamingAndWebSocketUpgrade": testStreamingAndWebSocketUpgrade,
		// Every answer's framing relayed, or refused, as on the other edges:
		"ProxyRelaysEveryAnswerFraming": testProxyRelaysEveryAnswerFraming,
		"ProxyRefusesBadAnswersAlike":   testProxyRefusesBadAnswersAlike,
		"ProxyCutAnswerIsNotReplayed":   testProxyCutAnswerIsNotReplayed,
		// Trailers, a connection a client (upstream_test.go):
		"ForwardingReusesUpstreamConnections": testForwardingReusesUpstreamConnections,
		// Interim answers dropped on the loop:
		"ForwardingTimesOutAfterAnInterimHead": testForwardingTimesOutAfterAnInterimHead,
		// A stale upstream connection:
		"ForwardingRetriesOnceAtMost": testForwardingRetriesOnceAtMost,
	} {
		t.Run(name, func(t *testing.T) { test(t, "evloop") })
	}
}
