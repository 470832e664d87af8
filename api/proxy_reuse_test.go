package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/internal/edgetest"
	"github.com/apiwarden/apiwarden/keys"
)

// TestProxyValuesStayEachRequests: many requests at once, each with a key,
// tier, owner, path, user agent, country, X-Forwarded-For and (for half)
// request id of its own, allowed, rate limited, refused without a key and
// timed out upstream: every answer, every request the upstream saw and
// every record carries that request's values and no other's. The fasthttp
// edge keeps them in pooled memory (the header values in
// gateway.ProxyCall, the records' strings in api/gateway/kept.go): a map
// or record still read after its memory went to the next request would
// show a neighbour's value here, and to -race.
func TestProxyValuesStayEachRequests(t *testing.T) {
	onProxyEdges(t, func(t *testing.T, edge string) {
		f := newGateFixture(t, gateConfig{proxyEdge: edge, headerTimout: 200 * time.Millisecond})
		const workers, each = 8, 30
		tiers := []string{"enterprise", "unlimited", "basic"} // basic's burst of 4 a minute runs out: 429s
		type client struct{ secret, id, owner, tier string }
		clients := make([]client, workers)
		for w := range clients {
			c := client{owner: fmt.Sprintf("org_w%d", w), tier: tiers[w%len(tiers)]}
			k, secret, err := f.keys.Create(keys.CreateParams{Tier: c.tier, OwnerID: c.owner, Scopes: []string{"forms:read"}}, "test")
			if err != nil {
				t.Fatal(err)
			}
			c.secret, c.id = secret, k.ID
			clients[w] = c
		}
		// Each tier's limit headers, from one request before the rest.
		policy, limit := map[string]string{}, map[string]string{}
		for w, c := range clients[:len(tiers)] {
			r := send(t, "GET", f.proxy.URL+"/api/forms/warm", http.Header{"X-Api-Key": {c.secret}})
			if r.status != 200 {
				t.Fatalf("warm-up of worker %d: %d %s", w, r.status, r.body)
			}
			policy[c.tier], limit[c.tier] = r.header.Get("Ratelimit-Policy"), r.header.Get("X-Ratelimit-Limit")
		}
		type sent struct {
			worker                  int
			path, agent, xff, xffUp string
			country                 string
			keyed, slow             bool
			forwardedAPIKey         string // the X-Api-Key value the upstream is sent, "" for none
		}
		var mu sync.Mutex
		byID := map[string]sent{}
		statusOf := map[string]int{}
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := clients[w]
				other := clients[(w+1)%workers].secret
				for i := range each {
					s := sent{worker: w, path: fmt.Sprintf("/api/forms/w%d-r%d", w, i), agent: fmt.Sprintf("agent/%d.%d", w, i),
						xff: fmt.Sprintf("198.51.100.%d, 203.0.113.%d", w, i), country: string([]byte{'A' + byte(w), 'A' + byte(i%26)}),
						keyed: i%6 != 5, slow: i%10 == 9}
					if s.slow {
						s.path = fmt.Sprintf("/slow/w%d-r%d", w, i)
					}
					s.xffUp = s.xff + ", 127.0.0.1"
					h := http.Header{"User-Agent": {s.agent}, "X-Forwarded-For": {s.xff}, "Cf-Ipcountry": {s.country}}
					if s.keyed {
						// The key, another valid key and a plain value: only
						// the last reaches the upstream.
						h["X-Api-Key"] = []string{c.secret, other, fmt.Sprintf("plain-%d-%d", w, i)}
						s.forwardedAPIKey = h["X-Api-Key"][2]
					}
					if i%2 == 0 {
						h.Set("X-Request-Id", fmt.Sprintf("caller-w%d-r%d", w, i))
					}
					r := send(t, "GET", f.proxy.URL+s.path, h)
					id := r.header.Get("X-Request-Id")
					if want := h.Get("X-Request-Id"); want != "" && id != want {
						t.Errorf("%s: X-Request-Id %q, want the caller's %q", s.path, id, want)
					}
					checkAnswer(t, s.path, r, id, c.tier, s.keyed, s.slow, policy, limit)
					mu.Lock()
					if _, dup := byID[id]; dup || id == "" {
						t.Errorf("%s: request id %q again", s.path, id)
					}
					byID[id], statusOf[id] = s, r.status
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for _, r := range f.upstream.since(0) {
			id := r.Header.Get("X-Request-Id")
			s, ok := byID[id]
			if !ok {
				if r.URL.Path != "/api/forms/warm" {
					t.Errorf("upstream got %s with request id %q, which no answer had", r.URL.Path, id)
				}
				continue
			}
			c := clients[s.worker]
			want := map[string]string{"X-Forwarded-For": s.xffUp, "X-Apiwarden-Key-Id": c.id, "X-Apiwarden-Owner": c.owner,
				"X-Apiwarden-Tier": c.tier, "User-Agent": s.agent, "X-Api-Key": s.forwardedAPIKey}
			if r.URL.Path != s.path {
				t.Errorf("request %s: upstream path %q, want %q", id, r.URL.Path, s.path)
			}
			for name, v := range want {
				if got := r.Header.Values(name); len(got) != 1 || got[0] != v {
					if !(v == "" && len(got) == 0) {
						t.Errorf("request %s (%s): upstream %s %q, want %q", id, s.path, name, got, v)
					}
				}
			}
		}
		total := workers * each
		edgetest.Poll(t, 10*time.Second, "every request recorded", func() bool { return len(f.records.All()) >= total+len(tiers) })
		for _, rec := range f.records.All() {
			s, ok := byID[rec.RequestID]
			if !ok {
				continue // the warm-up's
			}
			c := clients[s.worker]
			keyID := ""
			if s.keyed {
				keyID = c.id
			}
			if rec.Path != s.path || rec.UserAgent != s.agent || rec.Country != s.country || rec.KeyID != keyID || rec.Status != statusOf[rec.RequestID] {
				t.Errorf("record %s: path %q agent %q country %q key %q status %d, want %q %q %q %q %d", rec.RequestID, rec.Path, rec.UserAgent,
					rec.Country, rec.KeyID, rec.Status, s.path, s.agent, s.country, keyID, statusOf[rec.RequestID])
			}
		}
	})
}

var (
	rateLimitValue = regexp.MustCompile(`^"[a-z]+";r=[0-9]+;t=[0-9]+$`)
	decimal        = regexp.MustCompile(`^[0-9]+$`)
)

// checkAnswer checks what a request of TestProxyValuesStayEachRequests
// got back: its status, its id in the body of a refusal, its tier's limit
// headers, the upstream's body for its own path.
func checkAnswer(t *testing.T, path string, r response, id, tier string, keyed, slow bool, policy, limit map[string]string) {
	t.Helper()
	h := r.header
	switch {
	case !keyed:
		if r.status != 401 || h.Get("Ratelimit-Policy") != "" {
			t.Errorf("%s without a key: %d, policy %q", path, r.status, h.Get("Ratelimit-Policy"))
		}
	case r.status == 200 && !slow || slow && (r.status == 200 || r.status == 504) || tier == "basic" && r.status == 429:
		if h.Get("Ratelimit-Policy") != policy[tier] || h.Get("X-Ratelimit-Limit") != limit[tier] {
			t.Errorf("%s (%s): policy %q limit %q, want %q %q", path, tier, h.Get("Ratelimit-Policy"), h.Get("X-Ratelimit-Limit"), policy[tier], limit[tier])
		}
		if !rateLimitValue.MatchString(h.Get("Ratelimit")) || !decimal.MatchString(h.Get("X-Ratelimit-Remaining")) || !decimal.MatchString(h.Get("X-Ratelimit-Reset")) {
			t.Errorf("%s: Ratelimit %q, remaining %q, reset %q", path, h.Get("Ratelimit"), h.Get("X-Ratelimit-Remaining"), h.Get("X-Ratelimit-Reset"))
		}
		if r.status == 429 && !decimal.MatchString(h.Get("Retry-After")) {
			t.Errorf("%s: 429 with Retry-After %q", path, h.Get("Retry-After"))
		}
	default:
		t.Errorf("%s (%s): status %d: %s", path, tier, r.status, r.body)
		return
	}
	for name := range h {
		if apiwardenName.MatchString(name) {
			t.Errorf("%s: answer carries %s", path, name)
		}
	}
	if r.status == 200 {
		if want := `{"ok":true,"path":"` + path + `"}`; string(r.body) != want {
			t.Errorf("%s: body %s, want %s", path, r.body, want)
		}
		return
	}
	var body struct {
		Error struct {
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || body.Error.RequestID != id {
		t.Errorf("%s: %d body %s, want the request id %q", path, r.status, r.body, id)
	}
}

var apiwardenName = regexp.MustCompile(`^X-Apiwarden`)

// send makes one request with the header h (several values of a name
// each sent) and reads the answer.
func send(t *testing.T, method, url string, h http.Header) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Error(err)
		return response{}
	}
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return response{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, b}
}
