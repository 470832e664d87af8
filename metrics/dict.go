package metrics

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"

	"github.com/apiwarden/apiwarden/store"
)

// The dictionary (store.BucketDict) interns the low-cardinality strings of
// raw records that apiwarden itself chooses (route, key id, owner, tier,
// decision) so a block stores small integers. Nothing a client chooses
// belongs here: entries outlive the blocks that use them, so every new
// string costs disk for good (version-1 blocks also interned method,
// country and user agent; see block.go):
//
//	"s" + string      -> uvarint id
//	"i" + 8-byte id   -> string
//
// Ids come from the bucket's sequence and start at 1; id 0 is the empty
// string and has no entry. Entries are immutable and never deleted, so
// readers may cache them for as long as they like.

const (
	dictStringPrefix = 's'
	dictIDPrefix     = 'i'
	// maxDictCache bounds the in-memory caches; a full cache is dropped
	// and refilled from the bucket.
	maxDictCache = 1 << 17
)

// dictWriter interns strings during a flush. It is owned by the writer.
type dictWriter struct {
	cache   map[string]uint64 // committed entries
	pending map[string]uint64 // entries created or read in the current transaction
	key     []byte
}

func newDictWriter() *dictWriter {
	return &dictWriter{cache: make(map[string]uint64), pending: make(map[string]uint64)}
}

// intern returns the id of s, creating an entry in b if needed.
func (d *dictWriter) intern(b *store.Bucket, s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	if id, ok := d.cache[s]; ok {
		return id, nil
	}
	if id, ok := d.pending[s]; ok {
		return id, nil
	}
	d.key = append(append(d.key[:0], dictStringPrefix), s...)
	if v := b.Get(d.key); v != nil {
		id, n := binary.Uvarint(v)
		if n <= 0 || id == 0 {
			return 0, fmt.Errorf("%w: dictionary entry for %q is damaged", ErrCorruptBlock, s)
		}
		d.pending[strings.Clone(s)] = id
		return id, nil
	}
	id, err := b.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("metrics: dictionary sequence: %w", err)
	}
	// Keys and values must stay unchanged until the transaction ends, so
	// each Put gets its own slices.
	skey := append([]byte{dictStringPrefix}, s...)
	if err := b.Put(skey, binary.AppendUvarint(nil, id)); err != nil {
		return 0, fmt.Errorf("metrics: dictionary put: %w", err)
	}
	if err := b.Put(dictIDKey(id), []byte(s)); err != nil {
		return 0, fmt.Errorf("metrics: dictionary put: %w", err)
	}
	d.pending[strings.Clone(s)] = id
	return id, nil
}

// commit keeps the entries of a committed transaction; rollback forgets
// those of a failed one (their ids were rolled back with it).
func (d *dictWriter) commit() {
	if len(d.cache)+len(d.pending) > maxDictCache {
		clear(d.cache)
	}
	for s, id := range d.pending {
		d.cache[s] = id
	}
	clear(d.pending)
}

func (d *dictWriter) rollback() { clear(d.pending) }

func dictIDKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{dictIDPrefix}, id)
}

// dictReader resolves ids to strings for readers. It is safe for
// concurrent use; because entries never change, its cache never goes stale.
type dictReader struct {
	mu    sync.Mutex
	cache map[uint64]string
}

func newDictReader() *dictReader { return &dictReader{cache: make(map[uint64]string)} }

// resolver returns a function that resolves ids inside tx.
func (d *dictReader) resolver(tx *store.Tx) func(uint64) (string, error) {
	b := tx.Bucket(store.BucketDict)
	return func(id uint64) (string, error) {
		if id == 0 {
			return "", nil
		}
		d.mu.Lock()
		s, ok := d.cache[id]
		d.mu.Unlock()
		if ok {
			return s, nil
		}
		if b == nil {
			return "", fmt.Errorf("%w: dictionary bucket missing", ErrCorruptBlock)
		}
		v := b.Get(dictIDKey(id))
		if v == nil {
			return "", fmt.Errorf("%w: dictionary id %d missing", ErrCorruptBlock, id)
		}
		s = string(v)
		d.mu.Lock()
		if len(d.cache) >= maxDictCache {
			clear(d.cache)
		}
		d.cache[id] = s
		d.mu.Unlock()
		return s, nil
	}
}

// lookup returns the id of s without creating it; ok is false when s was
// never interned, so no stored record can carry it.
func lookupDictID(tx *store.Tx, s string) (id uint64, ok bool) {
	if s == "" {
		return 0, true
	}
	b := tx.Bucket(store.BucketDict)
	if b == nil {
		return 0, false
	}
	v := b.Get(append([]byte{dictStringPrefix}, s...))
	if v == nil {
		return 0, false
	}
	id, n := binary.Uvarint(v)
	return id, n > 0
}
