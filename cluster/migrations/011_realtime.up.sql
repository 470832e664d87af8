-- Each instance's realtime ring (analytics/realtime_part.go), for the
-- other instances to merge into their realtime view and alert inputs.
-- A row is one half of one 10-second slot: kind 1 the slot's per-second
-- counters (rewritten every second while the slot runs), kind 2 its route
-- and key tables (written once the slot is over). Rows hold absolute
-- values, so writing one again is harmless. UNLOGGED: the data is minutes
-- old at most and rebuilt within a second, so it is not worth WAL; a
-- PostgreSQL crash empties the table, which is then refilled by the next
-- publishes. Each instance deletes its own rows once they are older than
-- the realtime window; the alerts leader deletes those of instances gone.
CREATE UNLOGGED TABLE apiwarden_realtime (
    instance_id  text NOT NULL,
    kind         smallint NOT NULL,      -- analytics.RealtimePartKind
    start        timestamptz NOT NULL,   -- the slot's start
    published_at timestamptz NOT NULL,   -- PostgreSQL's clock at the write
    payload      bytea NOT NULL,
    PRIMARY KEY (instance_id, kind, start)
);
-- Readers ask for what was published since their last read.
CREATE INDEX apiwarden_realtime_published ON apiwarden_realtime (published_at);
