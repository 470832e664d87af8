// Package limiter decides whether a request may pass: token buckets per
// subject (an API key id, or a client address on public routes), sized by
// the subject's tier, scaled by calendar rules, with an optional monthly
// quota and per-route buckets.
//
// The core is Limiter: in memory, sharded, persisted to the store by
// snapshots. Redis shares the same buckets between several instances
// through one atomic script per request and falls back to a local Limiter
// when Redis cannot be reached.
//
// Time is a parameter everywhere: AllowAt(now, req) decides at now, and
// Allow is the same at the injected clock. A test steps through fixed times
// and never sleeps.
//
// Choices the API layer relies on:
//
//   - A request passes only if every bucket that applies (hour, minute,
//     route) holds its cost and the monthly quota has room; a denied
//     request takes nothing from any of them.
//   - Calendar rules scale the hour and minute buckets of the tiers they
//     name. Route buckets and monthly quotas are not scaled: one protects
//     an endpoint, the other is a billing figure.
//   - A capacity change keeps a bucket's tokens, clamped to the new
//     capacity: a reduction applies at once, an increase refills gradually.
//   - A request naming an unknown tier gets the strictest tier's limits.
//   - Result carries everything the RateLimit-Policy, RateLimit, X-RateLimit-*
//     and Retry-After headers need, and appends the first two without
//     allocating.
package limiter
