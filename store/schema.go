package store

import (
	"encoding/binary"
	"fmt"
)

// Top-level buckets. The store owns the schema so that one ordered list of
// migrations can create and reshape them; each package uses only its own.
var (
	BucketMeta = []byte("meta") // schema version and instance settings

	BucketKeys      = []byte("keys")       // key id -> key record (JSON)
	BucketKeyHashes = []byte("key_hashes") // HMAC of a secret -> key id
	BucketKeyEvents = []byte("key_events") // key id + time + seq -> audit event (JSON)

	BucketLimiter = []byte("limiter") // subject -> bucket snapshot

	BucketRaw        = []byte("raw")         // nested per UTC day: block seq -> record block
	BucketDict       = []byte("dict")        // interned strings: "s"+string -> id, "i"+id -> string
	BucketRollupHour = []byte("rollup_hour") // dimension + value + hour -> cell
	BucketRollupDay  = []byte("rollup_day")  // dimension + value + day -> cell
	// BucketRollupDirty is the cells changed since a shipper last copied
	// them (cluster mode only): interval byte + cell key -> 8-byte
	// generation. Its first flush in cluster mode creates it, so it is
	// not in the migrations and a file without it is current.
	BucketRollupDirty = []byte("rollup_dirty")

	BucketAlerts       = []byte("alerts")        // alert id -> alert (JSON)
	BucketAlertHistory = []byte("alert_history") // time + seq -> transition (JSON)
)

var keySchemaVersion = []byte("schema_version")

// Migration moves a data file from Version-1 to Version. Up runs inside one
// write transaction together with the version bump, so a file is never left
// half-migrated.
type Migration struct {
	Version int
	Name    string
	Up      func(tx *Tx) error
}

// migrations is the ordered history of the schema; append, never edit.
var migrations = []Migration{
	{Version: 1, Name: "create the initial buckets", Up: createBuckets(
		BucketKeys, BucketKeyHashes, BucketKeyEvents,
		BucketLimiter,
		BucketRaw, BucketDict, BucketRollupHour, BucketRollupDay,
		BucketAlerts, BucketAlertHistory,
	)},
}

// SchemaVersion is the version this binary writes.
func SchemaVersion() int { return migrations[len(migrations)-1].Version }

func createBuckets(names ...[]byte) func(*Tx) error {
	return func(tx *Tx) error {
		for _, name := range names {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	}
}

// Version reads the schema version recorded in the file; 0 for a file
// written before versions were recorded (or an empty one).
func (s *Store) Version() (int, error) {
	var v int
	err := s.View(func(tx *Tx) error {
		v = readVersion(tx)
		return nil
	})
	return v, err
}

func readVersion(tx *Tx) int {
	meta := tx.Bucket(BucketMeta)
	if meta == nil {
		return 0
	}
	raw := meta.Get(keySchemaVersion)
	if len(raw) != 8 {
		return 0
	}
	return int(binary.BigEndian.Uint64(raw))
}

// migrate brings the file up to the last version in list, one transaction
// per step.
func (s *Store) migrate(list []Migration) error {
	var current int
	if err := s.View(func(tx *Tx) error { current = readVersion(tx); return nil }); err != nil {
		return fmt.Errorf("%w: read schema version: %v", ErrMigration, err)
	}
	latest := list[len(list)-1].Version
	if current > latest {
		return fmt.Errorf("%w: file is at version %d, this binary knows up to %d; upgrade apiwarden",
			ErrSchemaTooNew, current, latest)
	}
	for _, m := range list {
		if m.Version <= current {
			continue
		}
		err := s.Update(func(tx *Tx) error {
			if err := m.Up(tx); err != nil {
				return err
			}
			meta, err := tx.CreateBucketIfNotExists(BucketMeta)
			if err != nil {
				return err
			}
			return meta.Put(keySchemaVersion, binary.BigEndian.AppendUint64(nil, uint64(m.Version)))
		})
		if err != nil {
			return fmt.Errorf("%w: step %d (%s): %v", ErrMigration, m.Version, m.Name, err)
		}
		s.log.Info("migrated data file", "version", m.Version, "step", m.Name)
	}
	return nil
}
