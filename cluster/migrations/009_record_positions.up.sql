-- Where each shipped record stood in its instance's data file, so the
-- PostgreSQL reader (cluster/source_records.go) pages records in the
-- order the bbolt reader does: by UTC day, then by the block they were
-- written in (seq, per instance), then by their place in the block (idx,
-- time order). (day, instance_id, seq, idx) names one record and never
-- changes, so a cursor over it neither repeats nor skips a record that
-- existed when the scan began, however late other instances ship.
ALTER TABLE apiwarden_records
    ADD COLUMN seq bigint,
    ADD COLUMN day integer,  -- days since 1970-01-01 UTC (metrics.Daily)
    ADD COLUMN idx integer;

-- Records shipped before this migration did not say where they stood:
-- they keep their day and take their place in time order, under seq 0.
UPDATE apiwarden_records r SET seq = 0, day = p.day, idx = p.idx
FROM (SELECT tableoid, ctid, floor(extract(epoch FROM at) / 86400)::integer AS day,
             (row_number() OVER (PARTITION BY instance_id, floor(extract(epoch FROM at) / 86400) ORDER BY at))::integer AS idx
      FROM apiwarden_records) p
WHERE r.tableoid = p.tableoid AND r.ctid = p.ctid;

ALTER TABLE apiwarden_records
    ALTER COLUMN seq SET NOT NULL,
    ALTER COLUMN day SET NOT NULL,
    ALTER COLUMN idx SET NOT NULL;

-- Pages of every record, and of one key's (the per-key requests view):
-- each partition's index gives its rows in page order, so a page reads
-- about as many index entries as it returns.
CREATE INDEX apiwarden_records_position ON apiwarden_records (day, instance_id, seq, idx);
CREATE INDEX apiwarden_records_key_position ON apiwarden_records (key_id, day, instance_id, seq, idx);

-- Cells of every value of a dimension in a time range (top, group_by,
-- the alert baselines): the primary key leads with the value, so without
-- this a range would read every hour of the dimension.
CREATE INDEX apiwarden_cells_range ON apiwarden_cells (interval, dim, start);
