// Package metrics records every request apiwarden sees and keeps what the
// analytics, the billing report and alerting read: raw records for
// drill-down and exact hourly and daily rollups. It knows nothing of HTTP;
// api/ wires it to routes.
//
// # Writing
//
// The API layer calls Recorder.Record with a Record per request. Record
// copies it into a bounded buffer and returns: it never blocks and does not
// allocate. One writer goroutine (Recorder.Run) swaps the buffer out every
// Options.FlushInterval and commits, in ONE bbolt transaction, the raw
// records (thinned by Options.SampleRate) and the rollup deltas of every
// record, so the two always agree after a crash. Recorder.Stop drains the
// buffer before it returns. POST /v1/events bodies go through ParseEvents
// and then Recorder.RecordBatch.
//
// # Reading
//
// Reader.ScanCells, Series, Totals and Sum read rollup cells of one
// Dimension (total, route, key, owner, tier, status class) at one Interval
// (Hourly, Daily); Reader.Records pages through raw records with filters
// and a resumable cursor. A Records call filtered by key, route, method
// or status inflates the next block on a second goroutine while it
// decodes the current one, both inside its one read transaction.
// Percentiles come from merged Histograms.
//
// # On-disk layout
//
// Raw records, store.BucketRaw:
//
//	raw/                               top-level bucket; its sequence numbers blocks
//	  "2026-11-27"/                    one nested bucket per UTC day of record time
//	    8-byte big-endian block seq -> block (see below)
//
// A flush writes, per UTC day its records fall on, one block of up to 8192
// records sorted by time. The block key is the next value of the raw
// bucket's sequence, so keys only grow: a reader's position (day, block
// key, index) never has new blocks appear before it. Retention deletes a
// whole day with one DeleteBucket. A block starts with an uncompressed
// header (version, flags, record count, min time, max time and, from
// version 3, the sorted dictionary ids of the keys it holds) so time-range
// and key-filtered reads skip blocks without inflating them; the body is
// columnar, with dictionary-, delta- and varint-encoded columns,
// DEFLATE-compressed (the column encodings are documented in block.go).
// From version 4 the body is split into sections compressed apart: time
// and key for every record, then segments by ranges of keys, so a page
// of one key inflates about a sixteenth of each block holding it
// (blockv4.go).
// Route, key id, owner, tier
// and decision are interned in store.BucketDict ("s"+string -> id, "i"+id
// -> string), whose entries are never deleted; they come from the
// configuration, the key store and package decision (or from an authenticated
// service posting events), so the dictionary stays small. Method, path,
// country, user agent and client address are chosen by clients and use a
// block-local table instead, which retention deletes with its block: a
// client that sends a new user agent or method with every request cannot
// grow the file beyond what retention bounds. Blocks of version 1 (written
// before this split) interned method, country and user agent too; they are
// still read, and their dictionary entries stay behind after retention
// drops them (see docs/upgrade-and-backup.md). Blocks older than version
// 3 keep their key table in the compressed body, so a key filter inflates
// every one of them in its range until retention drops them.
//
// Rollup cells, store.BucketRollupHour and store.BucketRollupDay, one key
// per (dimension, value, interval):
//
//	dimension byte | uvarint len(value) | value | 4-byte big-endian interval number
//
// where the interval number counts UTC hours (hourly) or UTC days (daily)
// since the Unix epoch. Dimension bytes: 1 total (value ""), 2 route, 3
// key, 4 owner, 5 tier, 6 status class ("2xx"). A value's cells are
// contiguous and in time order, so one value over a range is a single
// seek and a short cursor walk (a month of daily totals is 30 adjacent
// keys), and all values of a dimension are one seek per value (a 30-day
// top-20 of 50 routes reads 1,500 adjacent cells). Values sort by length,
// then bytes. A cell value is a version byte, uvarints (count, 2xx, 3xx,
// 4xx, 5xx, rate-limited, auth failures, bytes in, bytes out, latency sum,
// min and max in µs) and the sparse Histogram encoding (latencies in ms).
// A flush reads, merges and rewrites only the cells its records touch.
//
// Changed cells, store.BucketRollupDirty (cluster mode only, with
// Options.MarkChangedCells): interval byte | cell key -> 8-byte
// big-endian generation, the flush that last changed the cell. A shipper
// copies those cells' absolute values and clears a key only if its
// generation is still the one it read (dirty.go).
//
// # Retention
//
// Options.RawRetentionDays, HourlyRetentionDays and DailyRetentionDays
// (0 keeps forever) count UTC days: data of day D goes once the injected
// clock's UTC day is later than D+N. Recorder.ApplyRetention (run by Run
// every RetentionInterval) works in small transactions; flushes also skip
// data that would already be expired.
package metrics
