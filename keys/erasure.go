package keys

import "time"

// RecordErasure appends an "erased" audit event to key id, saying who
// asked (actor) and what went (detail: counts, never the data), and with
// blank clears the key's name and meta in the same change. A revoked key
// is accepted too: erasure often follows the end of a contract. In
// cluster mode the change goes to the system of record like any other.
// Errors: ErrNotFound, ErrUnavailable (cluster mode).
func (s *Service) RecordErasure(id, actor, detail string, blank bool) (Key, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	rec, err := s.modifyKey(id, true, func(rec *record) (Event, error) {
		if blank {
			rec.Name, rec.Meta = "", nil
			rec.UpdatedAt = now
			detail += "; name and meta blanked"
		}
		return Event{KeyID: id, Type: EventErased, Actor: actor, At: now, Detail: detail}, nil
	})
	if err != nil {
		return Key{}, err
	}
	return s.present(rec.Key, now), nil
}
