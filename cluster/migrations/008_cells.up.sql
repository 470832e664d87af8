-- Rollup cells of every instance (metrics/cell.go, metrics/rollup.go).
-- Each instance writes only its own rows, with the absolute value its
-- bbolt file holds for that cell, so writing a row again is idempotent and
-- instances never contend on a row; readers merge the rows of one
-- (interval, dim, value, start) across instances with metrics.Cell.Merge.
-- The key follows bbolt's cell key order: dimension, value, time.
CREATE TABLE apiwarden_cells (
    interval    smallint NOT NULL,  -- metrics.Interval: 1 hour, 2 day (UTC)
    dim         smallint NOT NULL,  -- metrics.Dimension: 1 total … 6 status_class
    value       text NOT NULL,      -- "" for total; "1xx" … "5xx" for status_class
    start       timestamptz NOT NULL,
    instance_id text NOT NULL,
    count       bigint NOT NULL,    -- the cell's Count, for SQL-side ordering
    cell        bytea NOT NULL,     -- metrics.Cell.AppendBinary
    PRIMARY KEY (interval, dim, value, start, instance_id)
);
