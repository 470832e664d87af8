package demo

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// testKeys are demo keys with made-up secrets, one per keyed persona.
func testKeys() []Key {
	var ks []Key
	for _, p := range personas {
		if p.Use == UseOwnKey {
			ks = append(ks, Key{Role: p.Role, Secret: "wsk_secret_of_" + p.Role})
		}
	}
	return ks
}

// planHour returns the calls the live generator would make in the hour
// after start.
func planHour(g *Generator, start time.Time) []call {
	var all []call
	for t := start; t.Before(start.Add(time.Hour)); t = t.Add(time.Second) {
		all = g.step(t, t.Add(time.Second), all)
	}
	return all
}

// The ordinary traffic follows the time of day in the generator's
// location, and the abuser does not.
func TestGeneratorDailyRhythm(t *testing.T) {
	loc := time.FixedZone("UTC-5", -5*3600)
	g := NewGenerator(GeneratorOptions{Target: "http://unused", Keys: testKeys(), Seed: 5, Location: loc})
	count := func(calls []call) (ordinary, abuser int) {
		for _, c := range calls {
			if personas[c.persona].Role == RoleAbuser {
				abuser++
			} else if !personas[c.persona].Steady {
				ordinary++
			}
		}
		return
	}
	night, nightAbuse := count(planHour(g, time.Date(2026, 11, 25, 3, 0, 0, 0, loc)))
	evening, eveningAbuse := count(planHour(g, time.Date(2026, 11, 25, 19, 0, 0, 0, loc)))
	// Rhythm 0.30 at 3:00-4:00, 1.0 at 19:00-20:00, on a Wednesday.
	if ratio := float64(evening) / float64(night); ratio < 2.8 || ratio > 4 {
		t.Errorf("evening %d vs night %d calls: ratio %.1f, want about 3.3", evening, night, ratio)
	}
	// Peak ordinary traffic is about 2.4 requests a second.
	if evening < 7500 || evening > 10000 {
		t.Errorf("%d ordinary calls in the busiest hour, want about 8,550", evening)
	}
	// The abuser sends 24 a second, day and night (until its quota is hit).
	for _, n := range []int{nightAbuse, eveningAbuse} {
		if n < 82000 || n > 91000 {
			t.Errorf("abuser made %d calls in an hour, want about 86,400", n)
		}
	}
	// The same instant in another zone is another time of day.
	utc := NewGenerator(GeneratorOptions{Target: "http://unused", Keys: testKeys(), Seed: 5, Location: time.UTC})
	if o, _ := count(planHour(utc, time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC))); o < 2*night {
		t.Errorf("08:00 UTC (03:00 in UTC-5) with a UTC rhythm: %d calls, want the morning's, not the night's %d", o, night)
	}
}

func TestRhythm(t *testing.T) {
	wed := func(h, m int) time.Time { return time.Date(2026, 11, 25, h, m, 0, 0, time.UTC) }
	for _, tc := range []struct {
		at   time.Time
		want float64
	}{
		{wed(3, 0), 0.30},
		{wed(19, 0), 1.0},
		{wed(19, 30), 1.0},
		{wed(8, 30), 0.715}, // halfway from 0.66 to 0.77
		{wed(23, 30), 0.48},
		{time.Date(2026, 11, 28, 19, 0, 0, 0, time.UTC), 1.15}, // Saturday
	} {
		if got := Rhythm(tc.at, time.UTC); got < tc.want-0.005 || got > tc.want+0.005 {
			t.Errorf("Rhythm(%v) = %.3f, want %.2f", tc.at, got, tc.want)
		}
	}
}

// The mix: every persona calls, with its own key or none, across every
// endpoint; strangers send bad keys or none; clients come from several
// addresses and countries.
func TestGeneratorMix(t *testing.T) {
	g := NewGenerator(GeneratorOptions{Target: "http://unused", Keys: testKeys(), Seed: 9, Location: time.UTC})
	calls := planHour(g, time.Date(2026, 11, 25, 19, 0, 0, 0, time.UTC))
	byPersona := map[string]int{}
	byEndpoint := map[int]int{}
	addrs := map[string]bool{}
	countries := map[string]bool{}
	for i, c := range calls {
		if i > 0 && c.at.Before(calls[i-1].at.Add(-time.Second)) {
			t.Fatalf("calls out of order at %d", i)
		}
		pe := personas[c.persona]
		byPersona[pe.Role]++
		byEndpoint[c.endpoint]++
		addrs[c.clientIP.String()] = true
		countries[c.country] = true
		switch pe.Use {
		case UseOwnKey:
			if c.key != "wsk_secret_of_"+pe.Role {
				t.Fatalf("%s sent key %q", pe.Role, c.key)
			}
		case NoKey:
			if c.key != "" {
				t.Fatalf("%s sent a key", pe.Role)
			}
		case BadKey:
			if c.key != "" && !strings.HasPrefix(c.key, "wsk_") {
				t.Fatalf("%s sent %q", pe.Role, c.key)
			}
		}
		if strings.Contains(c.path, "{") {
			t.Fatalf("unfilled path %s", c.path)
		}
		if ep := endpoints[c.endpoint]; ep.BodyMax > 0 && (c.bodyBytes < ep.BodyMin || c.bodyBytes > ep.BodyMax) {
			t.Fatalf("%s body of %d bytes", ep.Pattern, c.bodyBytes)
		}
	}
	for _, p := range personas {
		if byPersona[p.Role] == 0 {
			t.Errorf("persona %s made no call", p.Role)
		}
	}
	for i := range endpoints {
		if byEndpoint[i] == 0 {
			t.Errorf("endpoint %s %s was not called", endpoints[i].Method, endpoints[i].Pattern)
		}
	}
	if len(addrs) < 100 || len(countries) < 8 {
		t.Errorf("%d client addresses, %d countries", len(addrs), len(countries))
	}
}

// A persona without a secret (a revoked key from an earlier run) sends
// nothing.
func TestGeneratorSkipsKeysWithoutSecret(t *testing.T) {
	ks := testKeys()
	for i := range ks {
		if ks[i].Role == "retired-integration" {
			ks[i].Secret = ""
		}
	}
	g := NewGenerator(GeneratorOptions{Target: "http://unused", Keys: ks, Seed: 1, Location: time.UTC})
	for _, c := range planHour(g, time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)) {
		if personas[c.persona].Role == "retired-integration" {
			t.Fatal("a persona without a secret made a call")
		}
	}
}

// The first incident starts FirstIncident after the start and lasts 30
// to 45 s; the next follows 3 to 6 minutes later.
func TestIncidentPlan(t *testing.T) {
	g := NewGenerator(GeneratorOptions{Target: "http://unused", Seed: 4})
	ip := g.incident
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ip.reset(t0, newPlanner(4, time.UTC, 1, nil).rng)
	var changes []time.Duration
	on := false
	for s := 0; s < 30*60; s++ {
		if now := ip.at(t0.Add(time.Duration(s) * time.Second)); now != on {
			on = now
			changes = append(changes, time.Duration(s)*time.Second)
		}
	}
	if len(changes) < 8 || changes[0] != 20*time.Second {
		t.Fatalf("incident changes at %v", changes)
	}
	for i := 0; i+1 < len(changes); i += 2 {
		if length := changes[i+1] - changes[i]; length < 30*time.Second || length > 45*time.Second {
			t.Errorf("incident %d lasted %v", i/2, length)
		}
		if i+2 < len(changes) {
			if gap := changes[i+2] - changes[i+1]; gap < 3*time.Minute || gap > 6*time.Minute {
				t.Errorf("gap after incident %d: %v", i/2, gap)
			}
		}
	}
}

type fakeSwitch struct {
	mu  sync.Mutex
	log []bool
}

func (f *fakeSwitch) SetIncident(on bool) { f.mu.Lock(); f.log = append(f.log, on); f.mu.Unlock() }

// Run sends real requests with the persona's headers, backs the abuser's
// uploads off after QUOTA_EXCEEDED, drives the incident switch, and
// stops cleanly with the switch off.
func TestGeneratorRun(t *testing.T) {
	type seen struct{ auth, xff, country, ua, path string }
	var mu sync.Mutex
	var got []seen
	uploads := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, seen{r.Header.Get("Authorization"), r.Header.Get("X-Forwarded-For"), r.Header.Get("CF-IPCountry"), r.Header.Get("User-Agent"), r.URL.Path})
		abuserUpload := r.URL.Path == "/api/photos/upload" && r.Header.Get("Authorization") == "Bearer wsk_secret_of_"+RoleAbuser
		if abuserUpload {
			uploads++
		}
		mu.Unlock()
		if abuserUpload {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(429)
			w.Write([]byte(`{"error":{"code":"QUOTA_EXCEEDED","message":"monthly quota exhausted","request_id":"x"}}`))
			return
		}
		w.WriteHeader(200)
	}))
	defer srv.Close()
	sw := &fakeSwitch{}
	g := NewGenerator(GeneratorOptions{Target: srv.URL, Keys: testKeys(), Seed: 3, Incidents: sw, Scale: 4,
		FirstIncident: 300 * time.Millisecond, Tick: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	time.Sleep(1500 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	g.Stop() // after Run: returns at once

	st := g.Stats()
	if st.Sent < 15 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	keyed := 0
	for _, s := range got {
		if s.xff == "" || s.ua == "" {
			t.Fatalf("request without X-Forwarded-For or User-Agent: %+v", s)
		}
		if strings.HasPrefix(s.auth, "Bearer wsk_secret_of_") {
			keyed++
		}
	}
	if keyed == 0 {
		t.Error("no request carried a demo key")
	}
	// At 64 uploads a second (-rate 4) the abuser would have sent about 96 in 1.5 s;
	// after the first QUOTA_EXCEEDED it sends one every 30 s.
	if uploads == 0 || uploads > 10 {
		t.Errorf("abuser uploaded %d times: want it to back off after QUOTA_EXCEEDED", uploads)
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if len(sw.log) < 2 || !sw.log[0] || sw.log[len(sw.log)-1] {
		t.Errorf("incident switch went %v: want on, then off at the end", sw.log)
	}
}

// Stop before Run, and twice, returns.
func TestGeneratorStopIsSafe(t *testing.T) {
	g := NewGenerator(GeneratorOptions{Target: "http://unused"})
	g.Stop()
	g.Stop()
	if err := g.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}
