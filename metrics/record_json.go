package metrics

import (
	"encoding/json"
	"time"
)

// RecordJSON is a raw record as the admin API and the exports show it
// (docs/API.md, Record): every field present, with the field names
// ParseEvents reads, so an export can be ingested again unchanged.
type RecordJSON struct {
	Time              string  `json:"time"`
	RequestID         string  `json:"request_id"`
	Method            string  `json:"method"`
	Route             string  `json:"route"`
	Path              string  `json:"path"`
	Status            int     `json:"status"`
	LatencyMS         float64 `json:"latency_ms"`
	UpstreamLatencyMS float64 `json:"upstream_latency_ms"`
	RequestBytes      int64   `json:"request_bytes"`
	ResponseBytes     int64   `json:"response_bytes"`
	KeyID             string  `json:"key_id"`
	OwnerID           string  `json:"owner_id"`
	Tier              string  `json:"tier"`
	ClientIP          string  `json:"client_ip"`
	Country           string  `json:"country"`
	UserAgent         string  `json:"user_agent"`
	ErrorCategory     string  `json:"error_category"`
	CacheStatus       string  `json:"cache_status"`
	Decision          string  `json:"decision"`
}

// JSON returns r in its JSON shape: times in RFC 3339 UTC, durations in
// milliseconds at the microsecond precision records keep.
func (r *Record) JSON() RecordJSON {
	out := RecordJSON{
		Time: r.Time.UTC().Format(time.RFC3339Nano), RequestID: r.RequestID, Method: r.Method, Route: r.Route,
		Path: r.Path, Status: r.Status, LatencyMS: millis(r.Latency), UpstreamLatencyMS: millis(r.UpstreamLatency),
		RequestBytes: r.RequestBytes, ResponseBytes: r.ResponseBytes, KeyID: r.KeyID, OwnerID: r.OwnerID,
		Tier: r.Tier, Country: r.Country, UserAgent: r.UserAgent, ErrorCategory: r.ErrorCategory.String(),
		CacheStatus: r.CacheStatus.String(), Decision: r.Decision.String(),
	}
	if r.ClientIP.IsValid() {
		out.ClientIP = r.ClientIP.String()
	}
	return out
}

// MarshalJSON writes r as RecordJSON.
func (r Record) MarshalJSON() ([]byte, error) { return json.Marshal(r.JSON()) }

// millis is d in milliseconds at the microsecond precision records keep.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
