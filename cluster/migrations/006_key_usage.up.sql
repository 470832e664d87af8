-- What the request path learns about keys, merged from every instance's
-- write-behind (package keys, writebehind.go): when each key was last used
-- and the denial audit events. Neither is a key change: they take no
-- change sequence, so they never make a mirror resync its keys.

-- last_used_at only moves forward (GREATEST): the latest use wins, whoever
-- saw it. usage_seq is the usage merge that last moved it.
ALTER TABLE apiwarden_keys
    ADD COLUMN last_used_at timestamptz,
    ADD COLUMN usage_seq    bigint NOT NULL DEFAULT 0;
CREATE INDEX apiwarden_keys_usage_seq ON apiwarden_keys (usage_seq);

-- The last usage merge sequence handed out. Like apiwarden_key_changes, a
-- merge takes the next one with UPDATE ... RETURNING, which locks this row
-- until it commits, so merges become visible in sequence order and a
-- mirror that has read up to n needs exactly what came after n.
CREATE TABLE apiwarden_key_usage (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_seq  bigint NOT NULL
);
INSERT INTO apiwarden_key_usage (last_seq) VALUES (0);

-- Denial (and expiry) audit events, aggregated per key and type over one
-- write-behind flush of one process. (origin, flush_seq) names the flush:
-- a retried merge whose first try did commit inserts nothing twice.
CREATE TABLE apiwarden_key_denials (
    origin      bigint NOT NULL,
    flush_seq   bigint NOT NULL,
    key_id      text NOT NULL,
    type        text NOT NULL,
    seq         bigint NOT NULL,
    instance_id text NOT NULL,
    actor       text NOT NULL,
    at          timestamptz NOT NULL,
    detail      text NOT NULL DEFAULT '',
    count       integer NOT NULL,
    PRIMARY KEY (origin, flush_seq, key_id, type)
);
CREATE INDEX apiwarden_key_denials_seq ON apiwarden_key_denials (seq);
