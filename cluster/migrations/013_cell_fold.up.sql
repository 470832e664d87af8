-- One merged row a cell for closed hours and days (cluster/fold.go), so a
-- reader reads one row a cell instead of one per instance.
--
-- The state, per cell (interval, dim, value, start):
--   * instance rows (instance_id is an instance's id) as the shippers and
--     `cluster import` write them (008_cells.up.sql), each with folded;
--   * at most one merged row, instance_id '*', folded false, whose cell is
--     exactly the metrics.Cell.Merge of the cell's instance rows that have
--     folded true, and whose count is that merge's Count.
-- A reader merges the '*' row with the rows that are not folded
-- (instance_id = '*' OR NOT folded): the same cell as merging every
-- instance row. Only the fold marks rows folded, in the transaction that
-- writes the '*' row they went into, holding their row locks.
--
-- A late update (a spool drained after an outage, an import) of a folded
-- row would make the '*' row stale: the trigger below then deletes the
-- '*' row and marks the cell's other rows not folded, in the writer's
-- transaction, so readers merge the instance rows again until the next
-- fold. Deleting a folded row (an erasure deletes the '*' rows with it;
-- retention deletes whole intervals) does the same.
ALTER TABLE apiwarden_cells ADD COLUMN folded boolean NOT NULL DEFAULT false;

CREATE FUNCTION apiwarden_cells_unfold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM apiwarden_cells WHERE interval = OLD.interval AND dim = OLD.dim AND value = OLD.value
        AND start = OLD.start AND instance_id = '*';
    UPDATE apiwarden_cells SET folded = false WHERE interval = OLD.interval AND dim = OLD.dim AND value = OLD.value
        AND start = OLD.start AND folded;
    RETURN NULL;
END $$;

-- Only count and cell: the fold's own UPDATE of folded does not fire it,
-- and a '*' row is never folded.
CREATE TRIGGER apiwarden_cells_unfold AFTER UPDATE OF count, cell OR DELETE ON apiwarden_cells
    FOR EACH ROW WHEN (OLD.folded) EXECUTE FUNCTION apiwarden_cells_unfold();

-- What readers read, index-only for the counts: the distinct values of a
-- range (the summary's unique keys) and the values ranked by summed count
-- (top by requests) need neither the heap nor the cells. It replaces
-- apiwarden_cells_range (009_record_positions.up.sql).
CREATE INDEX apiwarden_cells_visible ON apiwarden_cells (interval, dim, start, value) INCLUDE (count)
    WHERE instance_id = '*' OR NOT folded;
DROP INDEX apiwarden_cells_range;

-- The fold's work list: the instance rows not yet folded (the open hours
-- and days, and what arrived late), a small part of the table once folded.
-- In cell order within an interval, so a batch of the first N cells is a
-- walk of N cells' entries, not a pass over all of them.
CREATE INDEX apiwarden_cells_unfolded ON apiwarden_cells (interval, start, dim, value)
    WHERE NOT folded AND instance_id <> '*';
