// Package analytics answers the questions the dashboard, scripts and the
// alert evaluator ask about traffic. It knows nothing of HTTP: api/ parses
// parameters, calls it and writes JSON, CSV or server-sent events.
//
// There are two halves.
//
// # Realtime, from memory
//
// Realtime keeps the last few minutes (15 by default) in memory: a ring of
// per-second cells (counts, bytes and a latency metrics.Histogram) for the
// global series and its percentiles, and a ring of 10-second slots with
// per-route, per-key and per-owner counts for top lists, active keys and
// the alert evaluator's windowed aggregates (Realtime satisfies
// alerting.TrafficSource). The API gate hands every request record to
// Realtime.Record next to metrics.Recorder.Record; it takes two short
// locks and does not allocate once the ring has warmed up. Per-slot
// subject tables are capped, so memory stays bounded however many keys
// call; what does not fit is counted in RealtimeStats.
//
// # History, from rollups and raw records
//
// Service reads what metrics.Recorder wrote, through the Source interface
// that *metrics.Reader satisfies:
//
//   - Summary: totals, error rate, percentiles, rate-limited, unique keys
//     and bytes for the hour, day, week or month in progress, and the change
//     against the same stretch of the previous period.
//   - Series: a time series by minute (raw records), hour (hourly cells) or
//     day (daily cells in UTC, hourly cells summed over local days in any
//     other time zone), optionally grouped by route, key, owner, tier or
//     status class, with every bucket present.
//   - Top: routes, keys, owners or tiers ranked by requests, errors, error
//     rate, p95 latency or bytes.
//   - KeyUsage: a key's live bucket state (through Peeker) and its usage this
//     hour, day and month.
//   - Billing: requests, errors and bytes per owner or key over a calendar
//     month in the configured time zone, exact from rollups.
//   - Records and EachRecord: raw records, newest first, with a cursor that
//     stays valid while new records are written.
//
// Sums over a range read daily cells for the UTC days wholly inside it and
// hourly cells for the hours at its edges, so a month is about 30 cells
// per value instead of 720 and stays exact. Ranges are clipped to what
// retention keeps; every answer says which range it covers.
//
// Service also satisfies alerting.HistorySource from hourly cells.
package analytics
