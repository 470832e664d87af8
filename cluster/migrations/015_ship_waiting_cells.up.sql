-- How many rollup cells each instance had changed and not yet shipped at
-- its last shipping round (apiwarden_cluster_ship_waiting_cells on its
-- /metrics), for GET /admin/v1/cluster beside ship_waiting's records.
ALTER TABLE apiwarden_instances
    ADD COLUMN ship_waiting_cells bigint NOT NULL DEFAULT 0;
