-- Every request record of every instance, shipped from each instance's
-- bbolt file (cluster/ship.go). One partition per UTC day, created by the
-- shipper on demand, so retention can drop a day as bbolt drops a day
-- bucket. Columns follow metrics.Record (metrics/record.go); the enums
-- are stored as their names, as the API spells them.
CREATE TABLE apiwarden_records (
    instance_id         text NOT NULL,
    at                  timestamptz NOT NULL,
    request_id          text NOT NULL,
    method              text NOT NULL,
    route               text NOT NULL,
    path                text NOT NULL,
    status              integer NOT NULL,
    latency_us          bigint NOT NULL,
    upstream_latency_us bigint NOT NULL,
    request_bytes       bigint NOT NULL,
    response_bytes      bigint NOT NULL,
    key_id              text NOT NULL,
    owner_id            text NOT NULL,
    tier                text NOT NULL,
    client_ip           inet,
    country             text NOT NULL,
    user_agent          text NOT NULL,
    error_category      text NOT NULL,
    cache_status        text NOT NULL,
    decision            text NOT NULL
) PARTITION BY RANGE (at);

-- The batches shipped: (instance_id, seq) names one raw block of one
-- instance's data file. A shipper inserts its batch rows and its records
-- in one transaction and skips the records of a batch whose row was there
-- already, so a retry after a crash or timeout inserts nothing twice.
CREATE TABLE apiwarden_shipped_batches (
    instance_id text NOT NULL,
    seq         bigint NOT NULL,
    records     integer NOT NULL,
    shipped_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, seq)
);

-- What each instance had left to ship at its last shipping round, for
-- GET /admin/v1/cluster.
ALTER TABLE apiwarden_instances
    ADD COLUMN ship_waiting bigint NOT NULL DEFAULT 0,
    ADD COLUMN ship_oldest  timestamptz;
