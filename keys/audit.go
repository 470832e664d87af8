package keys

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/apiwarden/apiwarden/store"
)

// EventType names an audit event (docs/API.md, "Keys": the events route).
type EventType string

// Audit event types: every change to a key and every class of denial.
const (
	EventCreated      EventType = "created"
	EventUpdated      EventType = "updated"
	EventRotated      EventType = "rotated"
	EventRevoked      EventType = "revoked"
	EventExpired      EventType = "expired"
	EventIPDenied     EventType = "ip_denied"
	EventOriginDenied EventType = "origin_denied"
	EventScopeDenied  EventType = "scope_denied"
	// EventErased records that the key's usage data was erased on
	// request: who asked and how much went, never the data itself.
	EventErased EventType = "erased"
)

// Event is one audit record. Denials are aggregated per key and type over
// a write-behind interval: Count says how many requests one event stands for.
type Event struct {
	KeyID  string    `json:"key_id"`
	Type   EventType `json:"type"`
	Actor  string    `json:"actor"`
	At     time.Time `json:"at"`
	Detail string    `json:"detail,omitempty"`
	Count  int       `json:"count,omitempty"`
	// expiry is, in an "expired" event queued by the request path, the
	// expires_at the key was refused under; zero otherwise. It is not
	// stored: the cluster's merge reads it (SharedEvent.Expiry).
	expiry time.Time
}

// eventKey orders a key's events by time: id, 0x00, unix nanos, sequence.
func eventKey(keyID string, at time.Time, seq uint64) []byte {
	k := make([]byte, 0, len(keyID)+17)
	k = append(k, keyID...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, uint64(at.UnixNano()))
	return binary.BigEndian.AppendUint64(k, seq)
}

func appendEvent(tx *store.Tx, ev Event) error {
	b, err := tx.MustBucket(store.BucketKeyEvents)
	if err != nil {
		return err
	}
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	v, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return b.Put(eventKey(ev.KeyID, ev.At, seq), v)
}

// Events returns a key's audit events, newest first, and the cursor of the
// next page ("" at the end). Errors: ErrNotFound, ErrBadCursor.
func (s *Service) Events(keyID, cursor string, limit int) ([]Event, string, error) {
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 1000)
	prefix := append([]byte(keyID), 0)
	var before []byte
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || !bytes.HasPrefix(b, prefix) {
			return nil, "", ErrBadCursor
		}
		before = b
	}
	out := []Event{}
	next := ""
	err := s.store.View(func(tx *store.Tx) error {
		if _, err := getRecord(tx, keyID); err != nil {
			return err
		}
		c := tx.Bucket(store.BucketKeyEvents).Cursor()
		// Position on the newest event, or the one before the cursor.
		end := before
		if end == nil {
			end = append(bytes.Clone(prefix[:len(prefix)-1]), 1)
		}
		var lastKey []byte
		var k, v []byte
		if k, _ = c.Seek(end); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
			if len(out) == limit {
				next = base64.RawURLEncoding.EncodeToString(lastKey)
				return nil
			}
			var ev Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("keys: event %x: %w", k, err)
			}
			out = append(out, ev)
			lastKey = bytes.Clone(k)
		}
		return nil
	})
	return out, next, err
}
