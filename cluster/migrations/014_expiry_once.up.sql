-- A key's expiry is recorded once cluster-wide. Each instance records an
-- "expired" event the first time an expired key is presented to it and
-- no other instance's event has reached its mirror yet; two instances
-- that see the expiry within one usage flush of each other each recorded
-- one. expiry names the expiry an "expired" event records: the key's
-- expires_at when the event is merged (cluster/usage.go), NULL for every
-- other event and for an expired event older than the key's current
-- expires_at (an update moved the expiry later before the merge: that
-- event is of an earlier expiry, kept as it is). The unique index makes
-- the second instance's event of one expiry a conflict, which the merge's
-- ON CONFLICT DO NOTHING skips; a key whose expiry is moved later and
-- passes again gets a second event.
ALTER TABLE apiwarden_key_denials ADD COLUMN expiry timestamptz;

UPDATE apiwarden_key_denials d SET expiry = (k.record->>'expires_at')::timestamptz
FROM apiwarden_keys k
WHERE d.type = 'expired' AND k.id = d.key_id AND d.at >= (k.record->>'expires_at')::timestamptz;

-- Events recorded twice before this migration: the first merged stays.
DELETE FROM apiwarden_key_denials d USING apiwarden_key_denials e
WHERE d.expiry IS NOT NULL AND e.key_id = d.key_id AND e.expiry = d.expiry
    AND (e.seq, e.at, e.origin, e.flush_seq) < (d.seq, d.at, d.origin, d.flush_seq);

CREATE UNIQUE INDEX apiwarden_key_denials_one_expiry ON apiwarden_key_denials (key_id, expiry)
    WHERE expiry IS NOT NULL;
