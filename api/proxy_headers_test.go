package api_test

import (
	"net"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestProxyHeadersAgreeAcrossEdges: every proxy edge gives the answer
// and the upstream request the same headers, each the gateway sets once:
// an allowed request (rate-limit headers on the answer; X-Forwarded-*,
// identity and request id upstream), a refused one (401 with
// WWW-Authenticate and the JSON headers), a rate-limited one (one
// Retry-After) and a failed forward (504). The net/http edge serves the
// gateway's maps, the fasthttp edge copies them into fasthttp's headers
// with its own loops (api/fastedge/proxy.go): a header lost, doubled or
// renamed on one of them shows here.
func TestProxyHeadersAgreeAcrossEdges(t *testing.T) {
	// An upstream that never answers (connections wait in the backlog):
	// a closed port could be taken by another fixture's server meanwhile.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	type seen struct{ answer, upstream []string }
	run := func(t *testing.T, edge string) map[string]seen {
		f := newGateFixture(t, gateConfig{proxyEdge: edge})
		key := map[string]string{"X-API-Key": f.secrets["basic"], "X-Forwarded-For": "198.51.100.7"}
		out := map[string]seen{}
		// step keeps what the answer r and, when one went out since
		// upstreamBefore, the request f's upstream saw carried.
		step := func(f *gateFixture, name string, r response, wantStatus int, upstreamBefore int) {
			t.Helper()
			if r.status != wantStatus {
				t.Fatalf("%s, %s: status %d, want %d: %s %q", edge, name, r.status, wantStatus, r.body, r.header)
			}
			s := seen{answer: headerShape(r.header)}
			if f.upstream.count() > upstreamBefore {
				s.upstream = headerShape(f.upstream.last().Header)
			}
			out[name] = s
		}
		n := f.upstream.count()
		step(f, "allowed", do(t, "GET", f.proxy.URL+"/api/forms/1", key, ""), 200, n)
		n = f.upstream.count()
		step(f, "missing key", do(t, "GET", f.proxy.URL+"/api/forms/1", nil, ""), 401, n)
		for range 3 { // basic: a burst of 4 a minute
			do(t, "GET", f.proxy.URL+"/api/forms/1", key, "")
		}
		n = f.upstream.count()
		step(f, "rate limited", do(t, "GET", f.proxy.URL+"/api/forms/1", key, ""), 429, n)
		down := newGateFixture(t, gateConfig{proxyEdge: edge, upstreamURL: "http://" + silent.Addr().String(), headerTimout: 100 * time.Millisecond})
		step(down, "upstream silent", do(t, "GET", down.proxy.URL+"/api/forms/1", map[string]string{"X-API-Key": down.secrets["basic"]}, ""), 504, 0)
		return out
	}
	var first map[string]seen
	for i, edge := range proxyEdges {
		got := run(t, edge)
		for name, s := range got {
			for _, h := range append(s.answer, s.upstream...) {
				if strings.HasSuffix(h, "×2") {
					t.Errorf("%s, %s: %s", edge, name, h)
				}
			}
		}
		if i == 0 {
			first = got
			continue
		}
		for name, s := range got {
			if !reflect.DeepEqual(s, first[name]) {
				t.Errorf("%s: headers on %s differ from %s's\n%s: %q\n%s: %q", name, edge, proxyEdges[0], edge, s, proxyEdges[0], first[name])
			}
		}
	}
	if a := first["missing key"].answer; !contains(a, "Www-Authenticate=Bearer") || !contains(a, "Cache-Control=no-store") {
		t.Errorf("401 answer headers %q", a)
	}
	if a := first["rate limited"].answer; !contains(a, "Retry-After=") || !contains(a, "Ratelimit-Policy=") {
		t.Errorf("429 answer headers %q", a)
	}
	if up := first["allowed"].upstream; !contains(up, "X-Apiwarden-Key-Id=") || !contains(up, "X-Forwarded-For=198.51.100.7, 127.0.0.1") {
		t.Errorf("upstream headers %q", up)
	}
}

// headerShape is h as sorted "Name=value" lines, a header with more than
// one value as "Name×N". The values that differ between two runs (times,
// ids, ports, lengths of bodies that carry an id) are left out.
func headerShape(h http.Header) []string {
	var out []string
	for name, vs := range h {
		switch {
		case name == "Date" || name == "Accept-Encoding" || name == "User-Agent":
			continue
		case len(vs) != 1:
			out = append(out, name+"×"+string(rune('0'+len(vs))))
		case name == "X-Request-Id" || name == "X-Ratelimit-Reset" || name == "Ratelimit" || name == "Retry-After" ||
			name == "X-Forwarded-Host" || name == "Content-Length" || name == "X-Apiwarden-Key-Id":
			out = append(out, name+"=")
		default:
			out = append(out, name+"="+vs[0])
		}
	}
	sort.Strings(out)
	return out
}

func contains(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// TestProxyRequestIDsAgree: a request id the proxy makes is the same in
// the answer, in the request the upstream saw and in the record, and no
// two requests share one, with requests in parallel on every edge (an
// edge that reused an id's bytes for the next request too early would
// show here).
func TestProxyRequestIDsAgree(t *testing.T) {
	onProxyEdges(t, func(t *testing.T, edge string) {
		f := newGateFixture(t, gateConfig{proxyEdge: edge})
		const workers, each = 8, 25
		answered := make(chan string, workers*each)
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					r := do(t, "GET", f.proxy.URL+"/api/forms/1", map[string]string{"X-API-Key": f.secrets["bench"]}, "")
					if r.status != 200 {
						t.Errorf("status %d: %s", r.status, r.body)
						return
					}
					answered <- r.header.Get("X-Request-Id")
				}
			}()
		}
		wg.Wait()
		close(answered)
		var fromAnswers, fromUpstream, fromRecords []string
		for id := range answered {
			fromAnswers = append(fromAnswers, id)
		}
		for _, r := range f.upstream.since(0) {
			fromUpstream = append(fromUpstream, r.Header.Get("X-Request-Id"))
		}
		// The fasthttp edge records a request once its answer was sent.
		for deadline := time.Now().Add(10 * time.Second); len(f.records.All()) < workers*each && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		for _, r := range f.records.All() {
			fromRecords = append(fromRecords, r.RequestID)
		}
		for _, ids := range [][]string{fromAnswers, fromUpstream, fromRecords} {
			sort.Strings(ids)
		}
		if len(fromAnswers) != workers*each || len(slices.Compact(slices.Clone(fromAnswers))) != len(fromAnswers) {
			t.Fatalf("%d answers, %d distinct ids", len(fromAnswers), len(slices.Compact(slices.Clone(fromAnswers))))
		}
		if !slices.Equal(fromAnswers, fromUpstream) || !slices.Equal(fromAnswers, fromRecords) {
			t.Errorf("ids differ\nanswers  %q\nupstream %q\nrecords  %q", fromAnswers, fromUpstream, fromRecords)
		}
	})
}
