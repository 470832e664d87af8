package api_test

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/metrics"
)

type recordOut struct {
	Time              time.Time `json:"time"`
	RequestID         string    `json:"request_id"`
	Method            string    `json:"method"`
	Route             string    `json:"route"`
	Path              string    `json:"path"`
	Status            int       `json:"status"`
	LatencyMS         float64   `json:"latency_ms"`
	UpstreamLatencyMS float64   `json:"upstream_latency_ms"`
	RequestBytes      int64     `json:"request_bytes"`
	ResponseBytes     int64     `json:"response_bytes"`
	KeyID             string    `json:"key_id"`
	OwnerID           string    `json:"owner_id"`
	Tier              string    `json:"tier"`
	ClientIP          string    `json:"client_ip"`
	Country           string    `json:"country"`
	UserAgent         string    `json:"user_agent"`
	ErrorCategory     string    `json:"error_category"`
	CacheStatus       string    `json:"cache_status"`
	Decision          string    `json:"decision"`
}

type requestsPage struct {
	From       *time.Time  `json:"from"`
	To         time.Time   `json:"to"`
	Records    []recordOut `json:"records"`
	NextCursor string      `json:"next_cursor"`
}

func ids(recs []recordOut) string {
	var out []string
	for _, r := range recs {
		out = append(out, r.RequestID)
	}
	return strings.Join(out, ",")
}

func TestRequestsEndpoint(t *testing.T) {
	f := newAnFixture(t)
	get := func(q string) requestsPage {
		t.Helper()
		r := f.admin(t, "GET", "/admin/v1/requests?"+q, nil)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", q, r.status, r.body)
		}
		// Every field of docs/API.md's Record is present.
		if !bytes.Contains(r.body, []byte(`"upstream_latency_ms":0,`)) && bytes.Contains(r.body, []byte(`"request_id"`)) {
			t.Errorf("a field is left out: %s", r.body)
		}
		return decode[requestsPage](t, r)
	}
	all := get("")
	if len(all.Records) != 14 {
		t.Fatalf("all records: %s", ids(all.Records))
	}
	// Newest first.
	for i := 1; i < len(all.Records); i++ {
		if all.Records[i].Time.After(all.Records[i-1].Time) {
			t.Fatalf("not newest first at %d: %s", i, ids(all.Records))
		}
	}
	first := all.Records[0]
	want := recordOut{Time: time.Date(2026, 11, 27, 15, 29, 30, 0, time.UTC), RequestID: "req-13", Method: "GET", Route: "/api/forms",
		Path: "/api/forms?n=13", Status: 200, LatencyMS: 35, RequestBytes: 0, ResponseBytes: 100, KeyID: f.ids["a"], OwnerID: "org_1",
		Tier: "basic", ClientIP: "192.0.2.7", UserAgent: `test, "quoted"`, ErrorCategory: "none", Decision: "VALID"}
	if first != want {
		t.Errorf("record\n got %+v\nwant %+v", first, want)
	}
	if all.From == nil || !all.From.Equal(time.Date(2026, 8, 29, 0, 0, 0, 0, time.UTC)) || !all.To.Equal(anNow) {
		t.Errorf("range %v..%s: from must be the oldest raw day kept", all.From, all.To)
	}

	cases := map[string]string{
		"key_id=" + f.ids["b"]:         "req-02,req-03,req-11",
		"route=/api/guests&status=5xx": "req-02,req-08",
		"status=429":                   "req-03",
		"method=POST":                  "req-06",
		"from=2026-11-26T00:00:00Z&to=2026-11-27T00:00:00Z":  "req-06,req-07,req-08",
		"from=1795651200&to=1795737600&key_id=" + f.ids["a"]: "req-06", // Unix seconds for 26 and 27 Nov
		"key_id=key_never_seen":                              "",
	}
	for q, want := range cases {
		if got := ids(get(q).Records); got != want {
			t.Errorf("%s: %s, want %s", q, got, want)
		}
	}

	// Pages of 5 with the cursor: every record once.
	var seen []string
	q := "limit=5"
	for range 10 {
		p := get(q)
		seen = append(seen, ids(p.Records))
		if p.NextCursor == "" {
			break
		}
		q = "limit=5&cursor=" + url.QueryEscape(p.NextCursor)
	}
	if got := strings.Trim(strings.Join(seen, ","), ","); got != ids(all.Records) {
		t.Errorf("pages %s\nwant %s", got, ids(all.Records))
	}
}

// Paging through raw records while the recorder keeps writing: no record
// that existed when paging began is skipped, and none appears twice.
func TestRequestsCursorIsStableUnderConcurrentWrites(t *testing.T) {
	f := newAnFixture(t)
	// Start with 600 more records so there are several blocks.
	more := make([]metrics.Record, 600)
	for i := range more {
		more[i] = metrics.Record{Time: anNow.Add(-time.Duration(i) * time.Second), RequestID: fmt.Sprintf("base-%03d", i),
			Method: "GET", Route: "/api/forms", Status: 200, Latency: time.Millisecond}
		if i%100 == 99 {
			f.rec.RecordBatch(more[i-99 : i+1])
			if err := f.rec.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	existing := map[string]bool{}
	for _, r := range append(append([]metrics.Record{}, f.known...), more...) {
		existing[r.RequestID] = true
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // a writer: 20 records a flush, times spread over the whole range
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			batch := make([]metrics.Record, 20)
			for i := range batch {
				batch[i] = metrics.Record{Time: anNow.Add(-time.Duration((n*20+i)%700) * time.Second), RequestID: fmt.Sprintf("new-%d-%d", n, i),
					Method: "GET", Route: "/api/forms", Status: 200, Latency: time.Millisecond}
			}
			f.rec.RecordBatch(batch)
			_ = f.rec.Flush()
		}
	})

	got := map[string]int{}
	q := "limit=37"
	pages := 0
	for {
		r := f.admin(t, "GET", "/admin/v1/requests?"+q, nil)
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		p := decode[requestsPage](t, r)
		for _, rec := range p.Records {
			got[rec.RequestID]++
		}
		pages++
		if p.NextCursor == "" {
			break
		}
		q = "limit=37&cursor=" + url.QueryEscape(p.NextCursor)
		time.Sleep(time.Millisecond) // let the writer in between pages
	}
	close(stop)
	wg.Wait()
	for id, n := range got {
		if n > 1 {
			t.Errorf("%s returned %d times", id, n)
		}
	}
	for id := range existing {
		if got[id] != 1 {
			t.Errorf("%s was skipped", id)
		}
	}
	if pages < 10 {
		t.Errorf("only %d pages", pages)
	}
}

func TestExportRawRecords(t *testing.T) {
	f := newAnFixture(t)
	page := decode[requestsPage](t, f.admin(t, "GET", "/admin/v1/requests?route=/api/forms", nil))

	// CSV: parses back to the same rows /requests shows (oldest first).
	r := f.admin(t, "GET", "/admin/v1/analytics/export?format=csv&route=/api/forms", nil)
	if r.status != 200 || r.header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		!strings.Contains(r.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("%d %v %s", r.status, r.header, r.body)
	}
	rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(page.Records)+1 || strings.Join(rows[0], ",") != "time,request_id,method,route,path,status,latency_ms,upstream_latency_ms,request_bytes,response_bytes,key_id,owner_id,tier,client_ip,country,user_agent,error_category,cache_status,decision" {
		t.Fatalf("%d rows, header %v", len(rows), rows[0])
	}
	for i, row := range rows[1:] {
		want := page.Records[len(page.Records)-1-i]
		status, _ := strconv.Atoi(row[5])
		lat, _ := strconv.ParseFloat(row[6], 64)
		up, _ := strconv.ParseFloat(row[7], 64)
		in, _ := strconv.ParseInt(row[8], 10, 64)
		out, _ := strconv.ParseInt(row[9], 10, 64)
		at, _ := time.Parse(time.RFC3339Nano, row[0])
		got := recordOut{Time: at, RequestID: row[1], Method: row[2], Route: row[3], Path: row[4], Status: status, LatencyMS: lat,
			UpstreamLatencyMS: up, RequestBytes: in, ResponseBytes: out, KeyID: row[10], OwnerID: row[11], Tier: row[12],
			ClientIP: row[13], Country: row[14], UserAgent: row[15], ErrorCategory: row[16], CacheStatus: row[17], Decision: row[18]}
		if got != want {
			t.Errorf("row %d\n got %+v\nwant %+v", i, got, want)
		}
	}

	// NDJSON: one record per line, the same fields; and it can be ingested
	// again as it is.
	r = f.admin(t, "GET", "/admin/v1/analytics/export?format=ndjson&route=/api/forms", nil)
	if r.header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("content type %q", r.header.Get("Content-Type"))
	}
	var lines []recordOut
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		var rec recordOut
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append([]recordOut{rec}, lines...)
	}
	if !reflect.DeepEqual(lines, page.Records) {
		t.Errorf("NDJSON differs from /requests")
	}
	batch, err := metrics.ParseEvents(bytes.NewReader(r.body), "application/x-ndjson", anNow)
	if err != nil || len(batch.Errors) != 0 || len(batch.Records) != len(page.Records) {
		t.Errorf("re-ingest: %v, %+v", err, batch.Errors)
	}
}

func TestExportTimeseries(t *testing.T) {
	f := newAnFixture(t)
	q := "from=2026-11-25T00:00:00Z&interval=day&tz=America/New_York&group_by=tier"
	js := decode[struct {
		Series []struct {
			Group  string
			Points []statsJSON
		}
	}](t, f.admin(t, "GET", "/admin/v1/analytics/timeseries?"+q, nil))
	r := f.admin(t, "GET", "/admin/v1/analytics/export?format=csv&"+q, nil)
	rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil || r.status != 200 {
		t.Fatalf("%d %v %s", r.status, err, r.body)
	}
	if strings.Join(rows[0], ",") != "group,t,requests,errors_4xx,errors_5xx,error_rate,rate_limited,auth_failures,bytes_in,bytes_out,p50_ms,p90_ms,p95_ms,p99_ms,max_ms,avg_ms" {
		t.Fatalf("header %v", rows[0])
	}
	i := 1
	for _, s := range js.Series {
		for _, p := range s.Points {
			row := rows[i]
			i++
			if row[0] != s.Group || row[1] != p.T || row[2] != strconv.FormatUint(p.Requests, 10) || row[4] != strconv.FormatUint(p.Errors5xx, 10) ||
				row[12] != strconv.FormatFloat(p.P95, 'f', -1, 64) || row[9] != strconv.FormatUint(p.BytesOut, 10) {
				t.Errorf("row %v, want %s %+v", row, s.Group, p)
			}
		}
	}
	if i != len(rows) || i != 1+3*4 {
		t.Errorf("%d rows for %d series", len(rows), len(js.Series))
	}
	r = f.admin(t, "GET", "/admin/v1/analytics/export?format=ndjson&"+q, nil)
	if n := bytes.Count(r.body, []byte("\n")); n != 12 || !bytes.Contains(r.body, []byte(`{"group":"basic","t":"2026-11-24T05:00:00Z","requests":0,`)) {
		t.Errorf("%d lines: %s", n, r.body)
	}
}

// A client that goes away mid-export stops the export: the handler
// returns instead of reading on.
func TestExportStopsWhenTheClientGoes(t *testing.T) {
	f := newAnFixture(t)
	batch := make([]metrics.Record, 20000)
	for i := range batch {
		batch[i] = metrics.Record{Time: anNow.Add(-time.Duration(i) * time.Second), RequestID: fmt.Sprintf("bulk-%d", i),
			Method: "GET", Route: "/api/forms", Path: "/api/forms/" + strings.Repeat("x", 200), Status: 200, Latency: time.Millisecond}
	}
	f.rec.RecordBatch(batch)
	if err := f.rec.Flush(); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", f.http.URL+"/admin/v1/analytics/export?format=csv", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	// The first rows arrive before the export is done: it is streamed.
	buf := make([]byte, 4096)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || !bytes.HasPrefix(buf, []byte("time,request_id")) {
		t.Fatalf("first bytes %q: %v", buf[:40], err)
	}
	resp.Body.Close()
	// The handler ends: the test server's Close waits for it.
	done := make(chan struct{})
	go func() { f.http.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the export kept running after the client left")
	}
}
