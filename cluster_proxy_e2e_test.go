package main

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/internal/edgetest"
	"github.com/apiwarden/apiwarden/internal/redistest"
)

// proxyEdgesOfACluster are the edges the cluster's proxy tests run on:
// fasthttp ("auto" for a proxy with an admin listener of its own) and the
// event loops, whose decisions go off the loops with Redis
// (api/loopedge/async.go).
var proxyEdgesOfACluster = []string{"fasthttp", "evloop"}

// Two proxies sharing a burst of 20 through Redis: 60 requests of one
// key, sent at once on connections of their own and split between A and
// B, admit exactly 20 in all, and the upstream sees those 20. Each
// process admits 20 itself without [redis]: that is how this test fails.
func TestClusterProxiesShareBurst(t *testing.T) {
	for _, edge := range proxyEdgesOfACluster {
		t.Run(edge, func(t *testing.T) {
			var served atomic.Int64
			up := edgetest.NewCountingUpstream(t, func(w http.ResponseWriter, r *http.Request) { served.Add(1) })
			a, b := startProxyPair(t, edge, up.URL, true)
			k := a.createKey(t, "burst20")
			// Until B's mirror has the key it answers 401 and takes nothing;
			// the first 200 takes the first of the 20 tokens.
			edgetest.Poll(t, 10*time.Second, "the key on B", func() bool { return b.proxied(t, k.Secret) == http.StatusOK })

			const requests = 60
			statuses := make(chan int, requests)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range requests {
				node := []*clusterNode{a, b}[i%2]
				wg.Go(func() {
					<-start
					statuses <- node.proxied(t, k.Secret)
				})
			}
			close(start)
			wg.Wait()
			close(statuses)
			counts := map[int]int{}
			for s := range statuses {
				counts[s]++
			}
			if admitted := 1 + counts[http.StatusOK]; admitted != 20 || counts[http.StatusTooManyRequests] != requests-counts[http.StatusOK] {
				t.Fatalf("admitted %d in all (statuses %v), want exactly 20 and the rest 429", admitted, counts)
			}
			if n := served.Load(); n != 20 {
				t.Errorf("the upstream served %d requests, want the 20 admitted", n)
			}
		})
	}
}

// In a cluster without Redis the proxy decides on the instance's own
// buckets and its mirror of the keys, on every edge: a key made on A
// passes B's proxy once B's mirror has it.
func TestClusterProxiesServeMirroredKeys(t *testing.T) {
	for _, edge := range proxyEdgesOfACluster {
		t.Run(edge, func(t *testing.T) {
			up := edgetest.NewCountingUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
			a, b := startProxyPair(t, edge, up.URL, false)
			k := a.createKey(t, "polled")
			edgetest.Poll(t, 10*time.Second, "the key on B", func() bool { return b.proxied(t, k.Secret) == http.StatusOK })
			if status := a.proxied(t, k.Secret); status != http.StatusOK {
				t.Errorf("A's proxy: %d", status)
			}
		})
	}
}

// startProxyPair starts nodes a and b of a new cluster database as
// proxies on edge in front of upstream, sharing a new redis-server when
// withRedis is set.
func startProxyPair(t *testing.T, edge, upstream string, withRedis bool) (a, b *clusterNode) {
	t.Helper()
	url, redisAddr := pg.Database(t), ""
	if withRedis {
		redisAddr = redistest.Start(t).Addr()
	}
	proxy := fmt.Sprintf("\n[proxy]\nupstream = %q\n", upstream)
	return startNodeOn(t, "a", url, redisAddr, edge, proxy), startNodeOn(t, "b", url, redisAddr, edge, proxy)
}

// proxied sends GET /x with secret through n's proxy, on a connection
// of its own, and returns the status (0 on a transport error, which it
// reports).
func (n *clusterNode) proxied(t *testing.T, secret string) int {
	req, err := http.NewRequest("GET", "http://"+n.listen+"/x", nil)
	if err != nil {
		t.Error(err)
		return 0
	}
	req.Header.Set("X-API-Key", secret)
	req.Close = true
	resp, err := n.client.Do(req)
	if err != nil {
		t.Errorf("node %s: GET /x: %v", n.name, err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
