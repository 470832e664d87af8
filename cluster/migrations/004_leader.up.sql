-- Leadership of cluster-wide duties that must run on one instance at a
-- time (alert evaluation). A holder keeps its row by renewing expires_at
-- before it passes; once it has passed, any instance may take the row.
-- Times are PostgreSQL's clock, so instances with skewed clocks agree.
CREATE TABLE apiwarden_leaders (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    elected_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
