package keys

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/apiwarden/apiwarden/store"
)

// StoredKey is a key as a data file holds it, in the form a system of
// record takes, for copying a single instance's keys into a cluster
// (`apiwarden cluster import`).
type StoredKey struct {
	ID        string
	CreatedAt time.Time
	// Record is the key's record as CreateKey and ModifyKey receive it:
	// JSON with the HMAC hashes (never a secret), without what stays with
	// the instance that saw the requests (last_used_at, the expiry flag).
	Record []byte
	// Events are the key's audit events in the file, oldest first.
	Events []Event
}

// ReadStoredKeys calls fn for every key in st, in id order, from one read
// transaction: fn sees a consistent snapshot and must not write to st.
// An error from fn stops the walk and is returned as it is.
func ReadStoredKeys(st *store.Store, fn func(StoredKey) error) error {
	return st.View(func(tx *store.Tx) error {
		keysBucket, events := tx.Bucket(store.BucketKeys), tx.Bucket(store.BucketKeyEvents)
		if keysBucket == nil {
			return nil
		}
		c := keysBucket.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var rec record
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("keys: record %s: %w", k, err)
			}
			body, err := json.Marshal(shared(&rec))
			if err != nil {
				return err
			}
			sk := StoredKey{ID: rec.ID, CreatedAt: rec.CreatedAt, Record: body}
			if events != nil {
				if sk.Events, err = storedEvents(events, rec.ID); err != nil {
					return err
				}
			}
			if err := fn(sk); err != nil {
				return err
			}
		}
		return nil
	})
}

// CountStoredKeys returns how many keys st holds.
func CountStoredKeys(st *store.Store) (int, error) {
	n := 0
	err := st.View(func(tx *store.Tx) error {
		if b := tx.Bucket(store.BucketKeys); b != nil {
			c := b.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				n++
			}
		}
		return nil
	})
	return n, err
}

// storedEvents reads one key's events, oldest first (their bucket keys
// order them by time).
func storedEvents(b *store.Bucket, id string) ([]Event, error) {
	prefix := append([]byte(id), 0)
	var out []Event
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var ev Event
		if err := json.Unmarshal(v, &ev); err != nil {
			return nil, fmt.Errorf("keys: event %x: %w", k, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// StoredSecretCheck returns the SecretCheck of the secret st's keys were
// hashed with, as the file recorded it, or "" when it recorded none (a
// file no key service has opened).
func StoredSecretCheck(st *store.Store) (string, error) {
	var check string
	err := st.View(func(tx *store.Tx) error {
		if meta := tx.Bucket(store.BucketMeta); meta != nil {
			if v := meta.Get(secretCheckKey); v != nil {
				check = hex.EncodeToString(v)
			}
		}
		return nil
	})
	return check, err
}
