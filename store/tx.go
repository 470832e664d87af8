package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Tx is a transaction handed to the closures of Update, View and Batch. It
// is valid only inside the closure and must not be shared between goroutines.
type Tx struct {
	tx *bolt.Tx
}

// Writable reports whether the transaction may write.
func (tx *Tx) Writable() bool { return tx.tx.Writable() }

// Bucket returns the bucket at the given path of nested names, or nil if any
// part of the path does not exist.
func (tx *Tx) Bucket(path ...[]byte) *Bucket {
	if len(path) == 0 {
		return nil
	}
	b := tx.tx.Bucket(path[0])
	for _, name := range path[1:] {
		if b == nil {
			return nil
		}
		b = b.Bucket(name)
	}
	if b == nil {
		return nil
	}
	return &Bucket{b: b}
}

// MustBucket is Bucket for buckets the schema guarantees; it returns
// ErrBucketMissing naming the path instead of nil.
func (tx *Tx) MustBucket(path ...[]byte) (*Bucket, error) {
	if b := tx.Bucket(path...); b != nil {
		return b, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrBucketMissing, path)
}

// CreateBucketIfNotExists returns the bucket at path, creating every missing
// level. It needs a writable transaction.
func (tx *Tx) CreateBucketIfNotExists(path ...[]byte) (*Bucket, error) {
	if len(path) == 0 {
		return nil, fmt.Errorf("store: empty bucket path")
	}
	b, err := tx.tx.CreateBucketIfNotExists(path[0])
	if err != nil {
		return nil, fmt.Errorf("store: create bucket %q: %w", path[0], translate(err))
	}
	for _, name := range path[1:] {
		if b, err = b.CreateBucketIfNotExists(name); err != nil {
			return nil, fmt.Errorf("store: create bucket %q: %w", name, translate(err))
		}
	}
	return &Bucket{b: b}, nil
}

// OnCommit registers fn to run after the transaction commits successfully.
// It is how callers update in-memory caches only once a write is durable.
func (tx *Tx) OnCommit(fn func()) { tx.tx.OnCommit(fn) }

// Size is the size of the file as this transaction sees it.
func (tx *Tx) Size() int64 { return tx.tx.Size() }

// Bucket is a collection of sorted key/value pairs inside a transaction.
type Bucket struct {
	b *bolt.Bucket
}

// Get returns the value for key, or nil. The slice is valid until the
// transaction ends.
func (b *Bucket) Get(key []byte) []byte { return b.b.Get(key) }

// Put stores value under key. Both slices must stay unchanged until the
// transaction ends.
func (b *Bucket) Put(key, value []byte) error { return translate(b.b.Put(key, value)) }

// Delete removes key; a missing key is not an error.
func (b *Bucket) Delete(key []byte) error { return translate(b.b.Delete(key)) }

// Bucket returns the nested bucket name, or nil.
func (b *Bucket) Bucket(name []byte) *Bucket {
	nb := b.b.Bucket(name)
	if nb == nil {
		return nil
	}
	return &Bucket{b: nb}
}

// CreateBucketIfNotExists returns the nested bucket name, creating it if needed.
func (b *Bucket) CreateBucketIfNotExists(name []byte) (*Bucket, error) {
	nb, err := b.b.CreateBucketIfNotExists(name)
	if err != nil {
		return nil, translate(err)
	}
	return &Bucket{b: nb}, nil
}

// DeleteBucket removes the nested bucket name and everything in it, freeing
// its pages in one step rather than key by key.
func (b *Bucket) DeleteBucket(name []byte) error { return translate(b.b.DeleteBucket(name)) }

// NextSequence returns an increasing integer unique within the bucket.
func (b *Bucket) NextSequence() (uint64, error) {
	n, err := b.b.NextSequence()
	return n, translate(err)
}

// Sequence returns the bucket's current sequence number without changing it.
func (b *Bucket) Sequence() uint64 { return b.b.Sequence() }

// ForEach calls fn for every key in order; a nested bucket has a nil value.
// fn must not modify the bucket.
func (b *Bucket) ForEach(fn func(k, v []byte) error) error { return b.b.ForEach(fn) }

// ForEachBucket calls fn for the name of every nested bucket, in order.
func (b *Bucket) ForEachBucket(fn func(name []byte) error) error { return b.b.ForEachBucket(fn) }

// SetFillPercent tells the bucket how full to pack pages on split. Callers
// that only ever append increasing keys set it near 1 to save space.
func (b *Bucket) SetFillPercent(p float64) { b.b.FillPercent = p }

// KeyN counts the keys in the bucket (nested buckets included). It walks
// every page: not for hot paths.
func (b *Bucket) KeyN() int { return b.b.Stats().KeyN }

// Cursor returns a cursor over the bucket's keys.
func (b *Bucket) Cursor() *Cursor { return &Cursor{c: b.b.Cursor()} }

// Cursor walks a bucket in key order. A nested bucket shows up with a nil
// value. Returned slices are valid until the transaction ends.
type Cursor struct {
	c *bolt.Cursor
}

// First moves to the first key.
func (c *Cursor) First() (key, value []byte) { return c.c.First() }

// Last moves to the last key.
func (c *Cursor) Last() (key, value []byte) { return c.c.Last() }

// Next moves to the next key; key is nil past the end.
func (c *Cursor) Next() (key, value []byte) { return c.c.Next() }

// Prev moves to the previous key; key is nil before the start.
func (c *Cursor) Prev() (key, value []byte) { return c.c.Prev() }

// Seek moves to key, or to the next key after it if it does not exist.
func (c *Cursor) Seek(key []byte) (k, v []byte) { return c.c.Seek(key) }

// Delete removes the key under the cursor.
func (c *Cursor) Delete() error { return translate(c.c.Delete()) }
