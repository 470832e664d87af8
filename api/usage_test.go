package api_test

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/limiter"
)

func TestKeyUsageEndpoint(t *testing.T) {
	f := newAnFixture(t)
	for range 4 {
		f.lim.AllowAt(anNow, limiter.Request{Subject: limiter.KeySubject(f.ids["a"]), Tier: "basic"})
	}
	type bucket struct {
		Limit, Remaining int64
		ResetSeconds     int64 `json:"reset_seconds"`
	}
	type usage struct {
		KeyID            string `json:"key_id"`
		Tier             string
		Hour, Minute     *bucket
		RawUsage         map[string]uint64 `json:"usage"`
		MonthlyQuota     int64             `json:"monthly_quota"`
		MonthlyRemaining *int64            `json:"monthly_remaining"`
		Rules            []string          `json:"active_calendar_rules"`
	}
	r := f.admin(t, "GET", "/admin/v1/keys/"+f.ids["a"]+"/usage", nil)
	u := decode[usage](t, r)
	// This UTC hour: records 1, 2 and 14; today in New York (from 05:00
	// UTC): the same; this month in New York: records 1, 2, 5, 7, 10, 14.
	if r.status != 200 || u.KeyID != f.ids["a"] || u.Tier != "basic" || u.RawUsage["this_hour"] != 3 || u.RawUsage["today"] != 3 || u.RawUsage["this_month"] != 6 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if u.Hour == nil || *u.Hour != (bucket{500, 496, 29}) || u.Minute == nil || *u.Minute != (bucket{25, 21, 10}) {
		t.Errorf("buckets %+v %+v", u.Hour, u.Minute)
	}
	if u.MonthlyQuota != 10000 || u.MonthlyRemaining == nil || *u.MonthlyRemaining != 9996 || u.Rules == nil || len(u.Rules) != 0 {
		t.Errorf("quota %d remaining %v rules %v", u.MonthlyQuota, u.MonthlyRemaining, u.Rules)
	}
	// A key without a quota has monthly_remaining null.
	u = decode[usage](t, f.admin(t, "GET", "/admin/v1/keys/"+f.ids["b"]+"/usage", nil))
	if u.MonthlyQuota != 0 || u.MonthlyRemaining != nil || u.Hour == nil || u.Hour.Remaining != 100 {
		t.Errorf("key b %+v", u)
	}
	checkError(t, f.admin(t, "GET", "/admin/v1/keys/key_nope/usage", nil), 404, "RESOURCE_NOT_FOUND")
}

func TestBillingReport(t *testing.T) {
	f := newAnFixture(t)
	type row struct {
		OwnerID     string `json:"owner_id"`
		KeyID       string `json:"key_id"`
		Requests    uint64
		Errors4xx   uint64 `json:"errors_4xx"`
		Errors5xx   uint64 `json:"errors_5xx"`
		RateLimited uint64 `json:"rate_limited"`
		BytesIn     uint64 `json:"bytes_in"`
		BytesOut    uint64 `json:"bytes_out"`
	}
	type report struct {
		Month, TZ string
		From, To  time.Time
		GroupBy   string `json:"group_by"`
		Rows      []row
		Totals    row
	}
	// October in New York (1 Oct 04:00 UTC to 1 Nov 04:00 UTC): records
	// 11 (org_1), 12 (org_2, 1 Nov 02:00 UTC) and 13 (org_2, a 401).
	rep := decode[report](t, f.admin(t, "GET", "/admin/v1/analytics/usage?month=2026-10&group_by=owner", nil))
	want := []row{{OwnerID: "org_1", Requests: 1, BytesOut: 100}, {OwnerID: "org_2", Requests: 2, Errors4xx: 1, BytesOut: 100}}
	if rep.Month != "2026-10" || rep.TZ != "America/New_York" || rep.GroupBy != "owner" || len(rep.Rows) != 2 || rep.Rows[0] != want[0] || rep.Rows[1] != want[1] ||
		!rep.From.Equal(time.Date(2026, 10, 1, 4, 0, 0, 0, time.UTC)) || !rep.To.Equal(time.Date(2026, 11, 1, 4, 0, 0, 0, time.UTC)) ||
		rep.Totals != (row{Requests: 3, Errors4xx: 1, BytesOut: 200}) {
		t.Errorf("October by owner %+v", rep)
	}
	// November so far by key, with each key's owner.
	rep = decode[report](t, f.admin(t, "GET", "/admin/v1/analytics/usage?month=2026-11&group_by=key", nil))
	byKey := map[string]row{}
	for _, r := range rep.Rows {
		byKey[r.KeyID] = r
	}
	if a := byKey[f.ids["a"]]; a.OwnerID != "org_1" || a.Requests != 6 || a.Errors4xx != 1 || a.BytesIn != 300 || a.BytesOut != 430 {
		t.Errorf("key a %+v", a)
	}
	if b := byKey[f.ids["b"]]; b.OwnerID != "org_2" || b.Requests != 2 || b.Errors5xx != 1 || b.RateLimited != 1 {
		t.Errorf("key b %+v", b)
	}
	if len(rep.Rows) != 3 || rep.Totals.Requests != 10 || !rep.To.Equal(anNow) {
		t.Errorf("November by key: %d rows, totals %+v, to %s", len(rep.Rows), rep.Totals, rep.To)
	}

	// CSV: the same rows.
	r := f.admin(t, "GET", "/admin/v1/analytics/usage?month=2026-10&group_by=owner&format=csv", nil)
	rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil || r.header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("%v %s", err, r.body)
	}
	got := []string{}
	for _, row := range rows {
		got = append(got, strings.Join(row, ","))
	}
	if strings.Join(got, "\n") != "month,owner_id,requests,errors_4xx,errors_5xx,rate_limited,bytes_in,bytes_out\n"+
		"2026-10,org_1,1,0,0,0,0,100\n2026-10,org_2,2,1,0,0,0,100" {
		t.Errorf("CSV:\n%s", strings.Join(got, "\n"))
	}
	r = f.admin(t, "GET", "/admin/v1/analytics/usage?month=2026-11&group_by=key&format=csv", nil)
	if rows, _ := csv.NewReader(bytes.NewReader(r.body)).ReadAll(); len(rows) != 4 || strings.Join(rows[0], ",") != "month,owner_id,key_id,requests,errors_4xx,errors_5xx,rate_limited,bytes_in,bytes_out" {
		t.Errorf("CSV by key: %s", r.body)
	}
}

// Every bad parameter of every analytics route is a 400 whose message
// starts with the parameter's name.
func TestAnalyticsBadParameters(t *testing.T) {
	f := newAnFixture(t)
	cases := []struct{ path, param string }{
		{"/admin/v1/analytics/realtime?series=no", "series"},
		{"/admin/v1/analytics/summary?period=year", "period"},
		{"/admin/v1/analytics/summary?tz=Mars/Olympus", "tz"},
		{"/admin/v1/analytics/summary?tz=Local", "tz"},
		{"/admin/v1/analytics/summary?period=day&period=hour", "period"},
		{"/admin/v1/analytics/summary?peroid=day", "peroid"},
		{"/admin/v1/analytics/timeseries?interval=week", "interval"},
		{"/admin/v1/analytics/timeseries?from=yesterday", "from"},
		{"/admin/v1/analytics/timeseries?to=2026-13-01T00:00:00Z", "to"},
		{"/admin/v1/analytics/timeseries?from=2026-11-27T00:00:00Z&to=2026-11-26T00:00:00Z", "from"},
		{"/admin/v1/analytics/timeseries?group_by=country", "group_by"},
		{"/admin/v1/analytics/timeseries?interval=hour&route=/a&tier=free", "tier"},
		{"/admin/v1/analytics/timeseries?interval=hour&route=/a&group_by=key", "group_by"},
		{"/admin/v1/analytics/timeseries?interval=minute&from=2026-11-20T00:00:00Z", "from"},
		{"/admin/v1/analytics/timeseries?interval=hour&from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z", "to"},
		{"/admin/v1/analytics/timeseries?tz=Nowhere", "tz"},
		{"/admin/v1/analytics/timeseries?status=200", "status"},
		{"/admin/v1/analytics/top?by=status", "by"},
		{"/admin/v1/analytics/top?metric=p42", "metric"},
		{"/admin/v1/analytics/top?limit=0", "limit"},
		{"/admin/v1/analytics/top?limit=5000", "limit"},
		{"/admin/v1/analytics/top?period=decade", "period"},
		{"/admin/v1/analytics/top?period=day&from=2026-11-01T00:00:00Z", "period"},
		{"/admin/v1/analytics/top?from=-5", "from"},
		{"/admin/v1/analytics/export?format=xml", "format"},
		{"/admin/v1/analytics/export?status=2xxx", "status"},
		{"/admin/v1/analytics/export?interval=fortnight", "interval"},
		{"/admin/v1/analytics/export?interval=hour&cursor=abc", "cursor"},
		{"/admin/v1/analytics/export?group_by=key", "group_by"},
		{"/admin/v1/analytics/usage?month=2026-13", "month"},
		{"/admin/v1/analytics/usage?month=2031-01", "month"},
		{"/admin/v1/analytics/usage?group_by=tier", "group_by"},
		{"/admin/v1/analytics/usage?format=xlsx", "format"},
		{"/admin/v1/requests?limit=0", "limit"},
		{"/admin/v1/requests?limit=10001", "limit"},
		{"/admin/v1/requests?status=600", "status"},
		{"/admin/v1/requests?cursor=not-a-cursor", "cursor"},
		{"/admin/v1/requests?from=2026-11-27T10:00:00Z&to=2026-11-27T09:00:00Z", "from"},
		{"/admin/v1/requests?owner_id=org_1", "owner_id"},
		{"/admin/v1/stream?x=1", "x"},
		{"/admin/v1/keys/KEY/usage?month=2026-11", "month"},
	}
	for _, tc := range cases {
		path := strings.Replace(tc.path, "KEY", f.ids["a"], 1)
		r := f.admin(t, "GET", path, nil)
		e := checkError(t, r, 400, "INVALID_PARAMETER")
		if !strings.HasPrefix(e.Error.Message, tc.param+":") {
			t.Errorf("%s: message %q does not start with %q", tc.path, e.Error.Message, tc.param+":")
		}
	}
	// A cursor from one order is refused by the other.
	p := decode[requestsPage](t, f.admin(t, "GET", "/admin/v1/requests?limit=1", nil))
	e := checkError(t, f.admin(t, "GET", "/admin/v1/analytics/export?cursor="+p.NextCursor, nil), 400, "INVALID_PARAMETER")
	if !strings.HasPrefix(e.Error.Message, "cursor:") {
		t.Errorf("message %q", e.Error.Message)
	}
}

// A server wired without a metrics store or realtime ring says so.
func TestAnalyticsRoutesWithoutTheirParts(t *testing.T) {
	f := newFixture(t, adminToken)
	for _, path := range []string{"/admin/v1/analytics/summary", "/admin/v1/analytics/timeseries", "/admin/v1/analytics/top",
		"/admin/v1/analytics/export", "/admin/v1/analytics/usage", "/admin/v1/requests", "/admin/v1/analytics/realtime",
		"/admin/v1/stream", "/admin/v1/keys/key_x/usage"} {
		checkError(t, f.admin(t, "GET", path, nil), 503, "UNAVAILABLE")
	}
}
