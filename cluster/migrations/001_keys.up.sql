-- Keys are the cluster's: PostgreSQL is their system of record, and each
-- instance keeps a mirror of them in its bbolt file (package keys).

-- Settings every instance must agree on (the key secret's check value).
CREATE TABLE apiwarden_meta (
    name  text PRIMARY KEY,
    value text NOT NULL
);

-- One row per key: the record as package keys stores it (with its HMAC
-- hashes, never a secret) and the change that wrote it last.
CREATE TABLE apiwarden_keys (
    id         text PRIMARY KEY,
    record     jsonb NOT NULL,
    seq        bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX apiwarden_keys_seq ON apiwarden_keys (seq);

-- The audit event of each change: one per change, so the events in seq
-- order are the change log mirrors replay.
CREATE TABLE apiwarden_key_events (
    seq    bigint PRIMARY KEY,
    key_id text NOT NULL REFERENCES apiwarden_keys (id),
    type   text NOT NULL,
    actor  text NOT NULL,
    at     timestamptz NOT NULL,
    detail text NOT NULL DEFAULT ''
);
CREATE INDEX apiwarden_key_events_key_at ON apiwarden_key_events (key_id, at);

-- The last change sequence handed out. A writer takes the next one with
-- UPDATE ... RETURNING, which locks this row until it commits: sequences
-- have no gaps and commit in order, so a mirror that has applied n needs
-- exactly the changes after n.
CREATE TABLE apiwarden_key_changes (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_seq  bigint NOT NULL
);
INSERT INTO apiwarden_key_changes (last_seq) VALUES (0);
