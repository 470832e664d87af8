-- Each instance's heartbeat: who is in the cluster, which version it runs,
-- and how far its key mirror has followed (GET /admin/v1/cluster).
CREATE TABLE apiwarden_instances (
    id         text PRIMARY KEY,
    version    text NOT NULL,
    started_at timestamptz NOT NULL,
    last_beat  timestamptz NOT NULL,
    mirror_seq bigint NOT NULL
);
