package api_test

import "testing"

// TestProxyOnEventLoops runs the proxy tests the experimental event-loop
// edge (api/loopedge, server.edge = "evloop") passes on it: the lean path
// on its loops, the rest handed with its connection to the fasthttp edge.
// What it does otherwise is listed in README.md, "The event-loop edge
// (experimental)".
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
		// Trailers, upstream connections reused (upstream_test.go):
		"ForwardingReusesUpstreamConnections": testForwardingReusesUpstreamConnections,
		// Interim answers dropped on the loop:
		"ForwardingTimesOutAfterAnInterimHead": testForwardingTimesOutAfterAnInterimHead,
		// A stale upstream connection:
		"ForwardingRetriesOnceAtMost": testForwardingRetriesOnceAtMost,
		// Upstream connections shared on each loop, max_conns_per_host:
		"ForwardingBoundsUpstreamConnections":       testForwardingBoundsUpstreamConnections,
		"ForwardingStreamFreesItsConnectionSlot":    testForwardingStreamFreesItsConnectionSlot,
		"ForwardingRetriesAStaleConnection":         testForwardingRetriesAStaleConnection,
		"ForwardingAfterTheUpstreamClosedEveryConn": testForwardingAfterTheUpstreamClosedEveryConnection,
		"ForwardingClosesAbandonedBodies":           testForwardingClosesAbandonedBodies,
		"ShutdownClosesIdleUpstreamConnections":     testShutdownClosesIdleUpstreamConnections,
	} {
		t.Run(name, func(t *testing.T) { test(t, "evloop") })
	}
}
