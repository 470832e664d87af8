package api_test

import (
	"fmt"
	"log/slog"
	"math"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/api"
	"github.com/apiwarden/apiwarden/api/admin"
	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/decision"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/limiter"
	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/store"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// anNow is the analytics fixture's clock: Friday 27 November 2026, 15:30
// UTC, 10:30 in New York, the server's configured time zone.
var anNow = time.Date(2026, 11, 27, 15, 30, 0, 0, time.UTC)

// anFixture is a server over a real store filled with known traffic
// through a real metrics.Recorder, real keys and a real limiter.
type anFixture struct {
	*fixture
	st    *store.Store
	rec   *metrics.Recorder
	rt    *analytics.Realtime
	lim   *limiter.Limiter
	ids   map[string]string // "a", "b", "c" -> key id
	known []metrics.Record
}

// known traffic, by key letter ("" = public): 14 requests. The comments
// give the UTC and the New York day.
type knownRequest struct {
	at                string
	key, route        string
	status            int
	latencyMS         int
	bytesIn, bytesOut int64
	decision          decision.Code
}

var knownRequests = []knownRequest{
	{"2026-11-27T15:10:00Z", "a", "/api/forms", 200, 10, 0, 100, decision.None}, // 27 | 27
	{"2026-11-27T15:12:00Z", "a", "/api/forms", 200, 20, 0, 100, decision.None}, // 27 | 27
	{"2026-11-27T15:14:00Z", "b", "/api/guests", 500, 30, 0, 50, decision.None}, // 27 | 27
	{"2026-11-27T14:05:00Z", "b", "/api/guests", 429, 1, 0, 0, decision.RateLimited},
	{"2026-11-27T03:00:00Z", "a", "/api/forms", 404, 40, 0, 20, decision.None},   // 27 | 26
	{"2026-11-27T01:30:00Z", "", "/api/forms", 200, 5, 0, 0, decision.None},      // 27 | 26
	{"2026-11-26T20:00:00Z", "a", "/api/forms", 201, 50, 300, 10, decision.None}, // 26 | 26
	{"2026-11-26T10:00:00Z", "c", "/api/guests", 200, 60, 0, 70, decision.None},  // 26 | 26
	{"2026-11-26T04:30:00Z", "c", "/api/guests", 503, 70, 0, 0, decision.None},   // 26 | 25
	{"2026-11-25T12:00:00Z", "a", "/api/forms", 200, 80, 0, 100, decision.None},  // 25 | 25
	{"2026-10-31T23:30:00Z", "a", "/api/forms", 200, 15, 0, 100, decision.None},  // Oct | Oct
	{"2026-11-01T02:00:00Z", "b", "/api/guests", 200, 25, 0, 100, decision.None}, // Nov | Oct
	{"2026-10-15T12:00:00Z", "c", "/api/guests", 401, 2, 0, 0, decision.Expired},
	{"2026-11-27T15:29:30Z", "a", "/api/forms", 200, 35, 0, 100, decision.None}, // 27 | 27
}

func newAnFixture(t testing.TB) *anFixture {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st := storetest.MustOpen(t)
	ks, err := keys.New(keys.Options{Store: st, Secret: []byte("fixture-secret-fixture-secret"),
		Policy: keys.Policy{Tiers: []string{"basic", "free", "premium"}, DefaultTier: "free", Scopes: []string{"admin"}},
		Now:    func() time.Time { return anNow }, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ks.Close)
	f := &anFixture{st: st, ids: map[string]string{}}
	for _, k := range []struct{ letter, owner, tier string }{{"a", "org_1", "basic"}, {"b", "org_2", "free"}, {"c", "org_2", "premium"}} {
		key, _, err := ks.Create(keys.CreateParams{Name: k.letter, OwnerID: k.owner, Tier: k.tier}, "test")
		if err != nil {
			t.Fatal(err)
		}
		f.ids[k.letter] = key.ID
	}
	f.rec, err = metrics.New(metrics.Options{Store: st, Now: func() time.Time { return anNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.rec.Stop)
	for i, kr := range knownRequests {
		f.known = append(f.known, f.record(t, i, kr))
	}
	if n := f.rec.RecordBatch(f.known); n != len(f.known) {
		t.Fatalf("recorded %d of %d", n, len(f.known))
	}
	if err := f.rec.Flush(); err != nil {
		t.Fatal(err)
	}
	f.rt, _ = analytics.NewRealtime(analytics.RealtimeOptions{Now: func() time.Time { return anNow }})
	f.lim, err = limiter.New(limiter.Options{Tiers: map[string]limiter.Tier{
		"free": {RequestsPerHour: 100, BurstPerMinute: 10}, "basic": {RequestsPerHour: 500, BurstPerMinute: 25, MonthlyQuota: 10000},
		"premium": {RequestsPerHour: 5000, BurstPerMinute: 100}}, Now: func() time.Time { return anNow }})
	if err != nil {
		t.Fatal(err)
	}
	ny, _ := time.LoadLocation("America/New_York")
	svc, err := analytics.New(analytics.Options{Source: metrics.NewReader(st), Location: ny,
		Retention: analytics.Retention{RawDays: 90, HourlyDays: 400}, Limits: f.lim, Now: func() time.Time { return anNow }})
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(api.Options{Gateway: gateway.Options{Keys: ks}, Admin: admin.Options{AdminToken: adminToken, Keys: ks, Version: "test",
		Analytics: admin.AnalyticsOptions{Service: svc, Realtime: f.rt}}, Logger: log, Now: func() time.Time { return anNow }})
	srv.Admin().SetReady(true)
	hs := httptest.NewServer(srv.AdminHandler())
	t.Cleanup(hs.Close)
	f.fixture = &fixture{srv: srv, http: hs, keys: ks, logs: logs}
	return f
}

func (f *anFixture) record(t testing.TB, i int, kr knownRequest) metrics.Record {
	t.Helper()
	at, err := time.Parse(time.RFC3339, kr.at)
	if err != nil {
		t.Fatal(err)
	}
	r := metrics.Record{Time: at, RequestID: fmt.Sprintf("req-%02d", i), Method: "GET", Route: kr.route,
		Path: kr.route + "?n=" + fmt.Sprint(i), Status: kr.status, Latency: time.Duration(kr.latencyMS) * time.Millisecond,
		RequestBytes: kr.bytesIn, ResponseBytes: kr.bytesOut, ClientIP: netip.MustParseAddr("192.0.2.7"),
		UserAgent: "test, \"quoted\"", Decision: kr.decision}
	if r.Decision == decision.None {
		r.Decision = decision.Valid
	}
	if kr.status == 201 {
		r.Method = "POST"
	}
	r.ErrorCategory = metrics.CategorizeError(r.Status, r.Decision)
	if kr.key != "" {
		r.KeyID = f.ids[kr.key]
		r.OwnerID = map[string]string{"a": "org_1", "b": "org_2", "c": "org_2"}[kr.key]
		r.Tier = map[string]string{"a": "basic", "b": "free", "c": "premium"}[kr.key]
	}
	return r
}

// near checks a percentile read from a histogram against the exact one.
func near(got, want float64) bool {
	return math.Abs(got-want) <= want*metrics.HistogramRelativeError+1e-9
}

type statsJSON struct {
	Requests     uint64  `json:"requests"`
	Errors4xx    uint64  `json:"errors_4xx"`
	Errors5xx    uint64  `json:"errors_5xx"`
	ErrorRate    float64 `json:"error_rate"`
	RateLimited  uint64  `json:"rate_limited"`
	AuthFailures uint64  `json:"auth_failures"`
	UniqueKeys   *uint64 `json:"unique_keys"`
	BytesIn      uint64  `json:"bytes_in"`
	BytesOut     uint64  `json:"bytes_out"`
	P50          float64 `json:"p50_ms"`
	P95          float64 `json:"p95_ms"`
	P99          float64 `json:"p99_ms"`
	Max          float64 `json:"max_ms"`
	Avg          float64 `json:"avg_ms"`
	Value        string  `json:"value"`
	T            string  `json:"t"`
}

func TestSummaryEndpoint(t *testing.T) {
	f := newAnFixture(t)
	type summary struct {
		P        string    `json:"period"`
		Z        string    `json:"tz"`
		F        time.Time `json:"from"`
		T        time.Time `json:"to"`
		PF       time.Time `json:"previous_from"`
		PT       time.Time `json:"previous_to"`
		Current  statsJSON `json:"current"`
		Previous statsJSON `json:"previous"`
		Change   map[string]*float64
	}
	// Today in UTC: records 1-6 and 14; yesterday until 16:00: 8 and 9.
	r := f.admin(t, "GET", "/admin/v1/analytics/summary?period=day&tz=UTC", nil)
	s := decode[summary](t, r)
	c := s.Current
	if r.status != 200 || s.P != "day" || s.Z != "UTC" || !s.F.Equal(time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)) || !s.T.Equal(anNow) ||
		!s.PF.Equal(time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)) || !s.PT.Equal(time.Date(2026, 11, 26, 16, 0, 0, 0, time.UTC)) {
		t.Fatalf("summary ranges: %d %s", r.status, r.body)
	}
	if c.Requests != 7 || c.Errors4xx != 2 || c.Errors5xx != 1 || c.RateLimited != 1 || c.UniqueKeys == nil || *c.UniqueKeys != 2 ||
		c.BytesOut != 370 || c.BytesIn != 0 || c.Max != 40 || c.Avg != 20.143 || !near(c.P50, 20) || !near(c.P99, 40) || c.ErrorRate != 1.0/7 {
		t.Errorf("current %+v", c)
	}
	if p := s.Previous; p.Requests != 2 || p.Errors5xx != 1 || p.BytesOut != 70 || p.UniqueKeys != nil {
		t.Errorf("previous %+v", p)
	}
	if ch := s.Change["requests"]; ch == nil || *ch != 2.5 {
		t.Errorf("change %v", s.Change)
	}
	if ch, ok := s.Change["rate_limited"]; !ok || ch != nil {
		t.Errorf("change.rate_limited %v (previous had none: null)", ch)
	}

	// The configured zone is New York: today there started at 05:00 UTC.
	s = decode[summary](t, f.admin(t, "GET", "/admin/v1/analytics/summary?period=day", nil))
	if s.Z != "America/New_York" || !s.F.Equal(time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)) || s.Current.Requests != 5 {
		t.Errorf("New York day: tz %s from %s requests %d", s.Z, s.F, s.Current.Requests)
	}
	// This month in New York: from 1 Nov 04:00 UTC, so record 12 (1 Nov
	// 02:00 UTC) belongs to October; the previous stretch is October up to
	// the 27th, 16:00 UTC, which holds record 13 only.
	s = decode[summary](t, f.admin(t, "GET", "/admin/v1/analytics/summary?period=month", nil))
	if s.Current.Requests != 11 || s.Previous.Requests != 1 || !s.PT.Equal(time.Date(2026, 10, 27, 16, 0, 0, 0, time.UTC)) {
		t.Errorf("month: current %d previous %d until %s, want 11 and 1 until 27 Oct 16:00", s.Current.Requests, s.Previous.Requests, s.PT)
	}
}

func TestTimeseriesEndpoint(t *testing.T) {
	f := newAnFixture(t)
	type series struct {
		From, To     time.Time
		Interval, TZ string
		GroupBy      string `json:"group_by"`
		Series       []struct {
			Group  string
			Points []statsJSON
		}
	}
	counts := func(s series, group string) []uint64 {
		for _, g := range s.Series {
			if g.Group == group {
				var out []uint64
				for _, p := range g.Points {
					out = append(out, p.Requests)
				}
				return out
			}
		}
		return nil
	}
	get := func(q string) series {
		t.Helper()
		r := f.admin(t, "GET", "/admin/v1/analytics/timeseries?"+q, nil)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", q, r.status, r.body)
		}
		return decode[series](t, r)
	}
	from := "from=2026-11-25T00:00:00Z"

	// Days in UTC and in New York: other boundaries, the same total.
	utc := get(from + "&interval=day&tz=UTC")
	if got := fmt.Sprint(counts(utc, "all")); got != "[1 3 7]" || utc.TZ != "UTC" || !utc.From.Equal(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("UTC days %s from %s", got, utc.From)
	}
	ny := get(from + "&interval=day&tz=America/New_York")
	if got := fmt.Sprint(counts(ny, "all")); got != "[0 2 4 5]" || !ny.From.Equal(time.Date(2026, 11, 24, 5, 0, 0, 0, time.UTC)) {
		t.Errorf("New York days %s from %s", got, ny.From)
	}
	if ny.Series[0].Points[1].T != "2026-11-25T05:00:00Z" {
		t.Errorf("New York day starts at %s", ny.Series[0].Points[1].T)
	}

	// Groups and filters.
	byTier := get(from + "&interval=day&tz=UTC&group_by=tier")
	if fmt.Sprint(counts(byTier, "basic")) != "[1 1 4]" || fmt.Sprint(counts(byTier, "free")) != "[0 0 2]" ||
		fmt.Sprint(counts(byTier, "premium")) != "[0 2 0]" || len(byTier.Series) != 3 || byTier.GroupBy != "tier" {
		t.Errorf("by tier %+v", byTier.Series)
	}
	byStatus := get(from + "&interval=day&tz=UTC&group_by=status")
	if fmt.Sprint(counts(byStatus, "2xx")) != "[1 2 4]" || fmt.Sprint(counts(byStatus, "5xx")) != "[0 1 1]" || fmt.Sprint(counts(byStatus, "4xx")) != "[0 0 2]" {
		t.Errorf("by status %+v", byStatus.Series)
	}
	guests := get(from + "&interval=day&tz=UTC&route=/api/guests")
	if g := guests.Series[0]; g.Group != "all" || fmt.Sprint(counts(guests, "all")) != "[0 2 2]" || g.Points[1].Errors5xx != 1 || g.Points[1].P95 < 60 {
		t.Errorf("route filter %+v", guests.Series)
	}
	owner := get(from + "&interval=day&tz=UTC&owner_id=org_2&group_by=owner")
	if fmt.Sprint(counts(owner, "org_2")) != "[0 2 2]" {
		t.Errorf("owner filter %+v", owner.Series)
	}

	// Hours: every hour present, zeros included.
	hours := get("from=2026-11-27T13:00:00Z&to=2026-11-27T15:30:00Z&interval=hour&group_by=key")
	if fmt.Sprint(counts(hours, f.ids["a"])) != "[0 0 3]" || fmt.Sprint(counts(hours, f.ids["b"])) != "[0 1 1]" || len(hours.Series) != 2 {
		t.Errorf("hours by key %+v", hours.Series)
	}
	// Minutes from raw records, where filters combine.
	minutes := get("from=2026-11-27T15:09:00Z&to=2026-11-27T15:15:00Z&interval=minute&key_id=" + f.ids["a"] + "&route=/api/forms")
	if got := fmt.Sprint(counts(minutes, "all")); got != "[0 1 0 1 0 0]" {
		t.Errorf("minutes %s", got)
	}
}

func TestTopEndpoint(t *testing.T) {
	f := newAnFixture(t)
	type top struct {
		By, Metric string
		From, To   time.Time
		Items      []statsJSON
	}
	get := func(q string) top {
		t.Helper()
		r := f.admin(t, "GET", "/admin/v1/analytics/top?"+q, nil)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", q, r.status, r.body)
		}
		return decode[top](t, r)
	}
	rng := "from=2026-11-25T00:00:00Z&to=1795795200" // to = 2026-11-27T16:00:00Z as Unix seconds
	routes := get("by=route&" + rng)
	if len(routes.Items) != 2 || routes.Items[0].Value != "/api/forms" || routes.Items[0].Requests != 7 || routes.Items[1].Requests != 4 ||
		!routes.To.Equal(anNow) {
		t.Errorf("top routes %+v to %s", routes.Items, routes.To)
	}
	errs := get("by=route&metric=errors&" + rng)
	if errs.Items[0].Value != "/api/guests" || errs.Items[0].Errors5xx != 2 || errs.Metric != "errors" {
		t.Errorf("top by errors %+v", errs.Items)
	}
	owners := get("by=owner&metric=p95&limit=1&" + rng)
	if len(owners.Items) != 1 || owners.Items[0].Value != "org_1" || !near(owners.Items[0].P95, 80) {
		t.Errorf("top owner by p95 %+v", owners.Items)
	}
	bytesTop := get("by=key&metric=bytes&" + rng)
	if bytesTop.Items[0].Value != f.ids["a"] || bytesTop.Items[0].BytesIn != 300 || bytesTop.Items[0].BytesOut != 430 {
		t.Errorf("top keys by bytes %+v", bytesTop.Items)
	}
	rate := get("by=tier&metric=error_rate&period=month&tz=UTC")
	if rate.Items[0].Value != "premium" || rate.Items[0].ErrorRate != 0.5 {
		t.Errorf("top tiers by error rate %+v", rate.Items)
	}
}

func TestRealtimeEndpoint(t *testing.T) {
	f := newAnFixture(t)
	for i := range 30 {
		rec := metrics.Record{Time: anNow.Add(-time.Duration(i+1) * time.Second), Method: "GET", Route: "/api/forms", Status: 200,
			Latency: 12 * time.Millisecond, KeyID: f.ids["a"], OwnerID: "org_1", Tier: "basic"}
		f.rt.Record(&rec)
	}
	type snapshot struct {
		LastMinute struct {
			statsJSON
			RPS        float64 `json:"rps"`
			ActiveKeys int     `json:"active_keys"`
			TopRoutes  []struct {
				Route    string
				Requests int
			} `json:"top_routes"`
		} `json:"last_minute"`
		Series []struct{ Requests int }
	}
	snap := decode[snapshot](t, f.admin(t, "GET", "/admin/v1/analytics/realtime", nil))
	lm := snap.LastMinute
	if lm.Requests != 30 || lm.RPS != 0.5 || lm.ActiveKeys != 1 || len(lm.TopRoutes) != 1 || lm.TopRoutes[0].Requests != 30 || len(snap.Series) != 900 {
		t.Errorf("realtime: %+v, %d points", lm, len(snap.Series))
	}
}
