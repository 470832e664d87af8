package api_test

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkProxy sends requests through the sidecar proxy to an upstream,
// all in one process over loopback: a valid key, limits on, recording on.
// The client and the upstream share the CPU, so compare it with
// BenchmarkDirect (the same client straight to the upstream) from the same
// run rather than reading the ns/op alone.
func BenchmarkProxy(b *testing.B) {
	for _, edge := range proxyEdges {
		b.Run(edge, func(b *testing.B) {
			f := newGateFixture(b, gateConfig{proxyEdge: edge})
			benchGet(b, f.proxy.URL+"/api/forms/1", map[string]string{"X-API-Key": f.secrets["bench"]})
		})
	}
}

// BenchmarkAuthorize is forward auth alone.
func BenchmarkAuthorize(b *testing.B) {
	f := newGateFixture(b, gateConfig{})
	benchGet(b, f.admin.URL+"/v1/authorize", map[string]string{"X-API-Key": f.secrets["bench"], "X-Original-URI": "/api/forms/1"})
}

func benchGet(b *testing.B, url string, headers map[string]string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, _ := http.NewRequest("GET", url, nil)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		for pb.Next() {
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
