-- Every usage erasure run against the cluster (cluster/erase.go), for the
-- instances' shippers: a record or cell of an erased key or owner that
-- waited unshipped in another instance's data file when the erasure ran
-- is dropped when it ships (cluster/ship_erasures.go) instead of coming
-- back. Also the cluster-wide trail of who erased what, without the data.
CREATE TABLE apiwarden_erasures (
    id           bigserial PRIMARY KEY,
    key_ids      text[] NOT NULL,       -- the key, or the owner's keys
    owner_id     text NOT NULL,         -- "" for a key's erasure
    rollups      boolean NOT NULL,      -- rollup cells erased too
    requested_by text NOT NULL,         -- the admin token's actor
    instance_id  text NOT NULL,         -- where it ran (erased its own file)
    erased_at    timestamptz NOT NULL DEFAULT now()
);
-- A shipping round reads the erasures at or after its oldest record or cell.
CREATE INDEX apiwarden_erasures_erased_at ON apiwarden_erasures (erased_at);
