-- Dashboard sessions, so a login works on every instance behind a load
-- balancer and a logout ends it on all of them. Only a SHA-256 of the
-- session id is kept, never the cookie value.
CREATE TABLE apiwarden_sessions (
    id_hash bytea PRIMARY KEY,
    csrf    text NOT NULL,
    expires timestamptz NOT NULL
);
CREATE INDEX apiwarden_sessions_expires ON apiwarden_sessions (expires);
