// Package demo is what `apiwarden demo` runs besides apiwarden itself: a
// small wedding-platform API to stand behind the proxy, the keys of the
// customers who call it, the traffic they send, and history to fill the
// charts before the first live request.
//
//   - [Upstream] is the wedding API: forms, guests, timeline, clients,
//     photo upload and public RSVP pages, with jittered latencies per
//     endpoint (photo upload is slow), about 1% server errors, and a
//     switch that turns on an incident in which most answers are 5xx.
//   - [Prepare] readies a data directory before the app opens it: it
//     creates one key per [Persona] (or rotates the keys a previous run
//     left there, so their history continues) and, when asked, writes
//     days of history through [Backfill].
//   - [Generator] sends the personas' traffic through the proxy: a daily
//     rhythm in local time, a mix of endpoints and methods, a free-tier
//     key that hammers the API far past its limits, clients without keys
//     or with bad ones, and an incident every few minutes.
//   - [Backfill] writes the same traffic model for past days straight
//     into the metrics rollups, deciding every request with apiwarden's
//     own enforcement engine, so historical views and alert baselines are
//     there at once.
//
// The traffic model (personas, endpoints, the daily rhythm) lives in
// model.go and is shared by all three, so live traffic and history look
// alike: the unusual_activity alert compares one with the other.
package demo
