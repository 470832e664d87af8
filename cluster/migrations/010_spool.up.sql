-- How many request records each instance dropped unshipped over the life
-- of its data file, because its spool went over [cluster]
-- spool_max_records while PostgreSQL could not take them
-- (metrics/spool.go), for GET /admin/v1/cluster.
ALTER TABLE apiwarden_instances
    ADD COLUMN ship_dropped bigint NOT NULL DEFAULT 0;

-- Retention on the leader (cluster/retention.go) deletes the cells of one
-- interval older than a time; the primary key leads with dim and value,
-- so without this index each hourly pass would read the whole table.
CREATE INDEX apiwarden_cells_retention ON apiwarden_cells (interval, start);

-- The same pass deletes the batch rows shipped before the raw cut-off.
CREATE INDEX apiwarden_shipped_batches_retention ON apiwarden_shipped_batches (shipped_at);
