-- Alerts are the cluster's: one instance evaluates (the leader) and any
-- instance acknowledges or resolves, all on these tables, under the
-- transaction-level advisory lock cluster/alerts.go takes.

-- One row per alert, open or resolved: the alert as package alerting
-- writes it, and the columns the evaluator and the admin API select on.
CREATE TABLE apiwarden_alerts (
    id          text PRIMARY KEY,
    fingerprint text NOT NULL,
    rule        text NOT NULL,
    state       text NOT NULL,
    active_at   timestamptz NOT NULL,
    resolved_at timestamptz,
    alert       jsonb NOT NULL
);
-- While an alert is open no second alert with its fingerprint exists:
-- the database refuses a duplicate even from a pass that went wrong.
CREATE UNIQUE INDEX apiwarden_alerts_open_fingerprint ON apiwarden_alerts (fingerprint)
    WHERE state <> 'resolved';
CREATE INDEX apiwarden_alerts_newest ON apiwarden_alerts (active_at DESC, id);
CREATE INDEX apiwarden_alerts_resolved ON apiwarden_alerts (resolved_at)
    WHERE state = 'resolved';

-- Every transition of every alert, in the order it was written.
CREATE TABLE apiwarden_alert_history (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id   text NOT NULL,
    at         timestamptz NOT NULL,
    transition jsonb NOT NULL
);
CREATE INDEX apiwarden_alert_history_alert ON apiwarden_alert_history (alert_id, at, seq);
CREATE INDEX apiwarden_alert_history_at ON apiwarden_alert_history (at);

-- The highest alert sequence number handed out (the n of an alert id
-- fingerprint-n), so no id is used twice even after its alert was
-- deleted. The evaluator takes numbers under the alerts' lock and
-- raises the sequence to the last one with setval.
CREATE SEQUENCE apiwarden_alert_seq MINVALUE 0 START WITH 0;
