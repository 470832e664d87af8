package limiter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apiwarden/apiwarden/store"
)

// Records in store.BucketLimiter, one per entry:
//
//	key   = uvarint(len(subject)) subject route
//	value = version flags [uvarint(len(tier)) tier] varint(changed)
//	        {uvarint(capacity) varint(full)} for hour, minute, route when present
//	        [uvarint(month) uvarint(used)]
//
// A bucket is stored as the instant it will be full and the capacity that
// was measured against, so time spent on disk refills it naturally and a
// changed tier clamps it like any capacity change.
const recordVersion = 1

const (
	flagHour = 1 << iota
	flagMinute
	flagRoute
	flagMonth
	flagTier
)

// snapshotTxOps bounds the writes in one transaction, so a snapshot of
// millions of entries is many small commits rather than one huge one.
const snapshotTxOps = 4096

func appendKey(dst []byte, k entryKey) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(k.subject)))
	dst = append(dst, k.subject...)
	return append(dst, k.route...)
}

func appendRecord(dst []byte, e *entry) []byte {
	var flags byte
	if e.hour.capacity != 0 {
		flags |= flagHour
	}
	if e.minute.capacity != 0 {
		flags |= flagMinute
	}
	if e.route.capacity != 0 {
		flags |= flagRoute
	}
	if e.used != 0 {
		flags |= flagMonth
	}
	if e.tier != "" {
		flags |= flagTier
	}
	dst = append(dst, recordVersion, flags)
	if flags&flagTier != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(e.tier)))
		dst = append(dst, e.tier...)
	}
	dst = binary.AppendVarint(dst, e.changed)
	for _, b := range [...]struct {
		flag byte
		b    bucket
	}{{flagHour, e.hour}, {flagMinute, e.minute}, {flagRoute, e.route}} {
		if flags&b.flag != 0 {
			dst = binary.AppendUvarint(dst, uint64(b.b.capacity))
			dst = binary.AppendVarint(dst, b.b.full)
		}
	}
	if flags&flagMonth != 0 {
		dst = binary.AppendUvarint(dst, uint64(e.month))
		dst = binary.AppendUvarint(dst, uint64(e.used))
	}
	return dst
}

// decodeRecord reads a stored key and value into a fresh entry, copying
// every string out of the store's memory.
func decodeRecord(key, val []byte) (*entry, error) {
	n, w := binary.Uvarint(key)
	if w <= 0 || uint64(len(key)-w) < n {
		return nil, fmt.Errorf("%w: bad key %q", ErrCorruptRecord, key)
	}
	e := &entry{key: entryKey{subject: Subject(key[w : w+int(n)]), route: RouteBucket(key[w+int(n):])}}
	r := reader{buf: val}
	if v := r.byte(); v != recordVersion {
		return nil, fmt.Errorf("%w: %q: unknown version %d", ErrCorruptRecord, key, v)
	}
	flags := r.byte()
	if flags&flagTier != 0 {
		e.tier = string(r.bytes(r.uvarint()))
	}
	e.changed = r.varint()
	for _, b := range [...]struct {
		flag byte
		b    *bucket
	}{{flagHour, &e.hour}, {flagMinute, &e.minute}, {flagRoute, &e.route}} {
		if flags&b.flag != 0 {
			b.b.capacity = int64(r.uvarint())
			b.b.full = r.varint()
		}
	}
	if flags&flagMonth != 0 {
		e.month = int32(r.uvarint())
		e.used = int64(r.uvarint())
	}
	if r.err || len(r.buf) != 0 {
		return nil, fmt.Errorf("%w: %q: truncated or trailing bytes", ErrCorruptRecord, key)
	}
	return e, nil
}

// reader consumes a record, remembering the first failure.
type reader struct {
	buf []byte
	err bool
}

func (r *reader) byte() byte {
	if len(r.buf) == 0 {
		r.err = true
		return 0
	}
	b := r.buf[0]
	r.buf = r.buf[1:]
	return b
}

func (r *reader) bytes(n uint64) []byte {
	if uint64(len(r.buf)) < n {
		r.err = true
		return nil
	}
	b := r.buf[:n]
	r.buf = r.buf[n:]
	return b
}

func (r *reader) uvarint() uint64 {
	v, w := binary.Uvarint(r.buf)
	if w <= 0 {
		r.err = true
		return 0
	}
	r.buf = r.buf[w:]
	return v
}

func (r *reader) varint() int64 {
	v, w := binary.Varint(r.buf)
	if w <= 0 {
		r.err = true
		return 0
	}
	r.buf = r.buf[w:]
	return v
}

// snapshotBatch holds changes encoded while shard locks were held, to be
// written after they are released.
type snapshotBatch struct {
	// skipAddresses leaves address subjects out (and deletes their
	// records): Options.AddressesInMemory.
	skipAddresses bool
	buf           []byte
	ops           []snapshotOp
	removed       []entryKey // keys deleted, to put back as tombstones if writing fails
}

// snapshotOp is one put or delete: the key is buf[start:keyEnd] and the
// value buf[keyEnd:end] (empty for a delete).
type snapshotOp struct {
	start, keyEnd, end int
	del                bool
}

func (b *snapshotBatch) reset() {
	b.buf, b.ops, b.removed = b.buf[:0], b.ops[:0], b.removed[:0]
}

func (b *snapshotBatch) addDelete(k entryKey) {
	start := len(b.buf)
	b.buf = appendKey(b.buf, k)
	b.ops = append(b.ops, snapshotOp{start: start, keyEnd: len(b.buf), end: len(b.buf), del: true})
	b.removed = append(b.removed, k)
}

func (b *snapshotBatch) addPut(e *entry) {
	start := len(b.buf)
	b.buf = appendKey(b.buf, e.key)
	keyEnd := len(b.buf)
	b.buf = appendRecord(b.buf, e)
	b.ops = append(b.ops, snapshotOp{start: start, keyEnd: keyEnd, end: len(b.buf)})
}

// Snapshot writes the state of every entry that changed since the last
// snapshot to the store and deletes the records of entries since dropped,
// so that the store holds every bucket that is not full and every monthly
// counter in use. Shard by shard, a shard's lock is held while its changes
// are encoded in memory, never during store I/O; the changes of several
// shards are written together in transactions of at most a few thousand
// records. Without a Store it does nothing.
//
// It returns an error wrapping ErrSnapshot when a write fails; the next
// snapshot then rewrites everything, so no change is lost for good.
func (l *Limiter) Snapshot() error {
	if l.store == nil {
		return nil
	}
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	started := time.Now()
	now := l.now()
	at, month := now.UnixNano(), l.viewAt(now).day.monthID
	all := l.snapshotAll.Swap(false)

	batch := snapshotBatch{skipAddresses: l.addressesInMemory}
	var written, deleted int
	flush := func() error {
		puts, dels, err := l.write(&batch)
		if err != nil {
			// Nothing of the failed batch is known to be stored: put its
			// deletions back and rewrite every entry next time.
			l.snapshotAll.Store(true)
			for _, k := range batch.removed {
				sh, _ := l.locate(k)
				sh.mu.Lock()
				sh.tombstones = append(sh.tombstones, k)
				sh.mu.Unlock()
			}
		}
		written, deleted = written+puts, deleted+dels
		batch.reset()
		return err
	}
	var err error
	for i := range l.shards {
		collect(&l.shards[i], &batch, at, month, all)
		if len(batch.ops) >= snapshotTxOps || i == len(l.shards)-1 {
			if err = flush(); err != nil {
				break
			}
		}
	}
	l.snapshots.Add(1)
	l.lastSnapshot.Store(int64(time.Since(started)))
	l.lastWritten.Store(int64(written))
	l.lastDeleted.Store(int64(deleted))
	if err != nil {
		l.snapshotErrs.Add(1)
		return fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	return nil
}

// collect encodes sh's tombstones and changed entries into b (all: every
// entry). Takes sh.mu.
func collect(sh *shard, b *snapshotBatch, at int64, month int32, all bool) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for _, k := range sh.tombstones {
		b.addDelete(k)
	}
	clear(sh.tombstones) // drop the strings
	sh.tombstones = sh.tombstones[:0]
	for i, h := range sh.hashes {
		e := &sh.entries[i]
		if h == 0 || (!e.dirty && !all) {
			continue
		}
		e.dirty = false
		if e.idle(at, month) || (b.skipAddresses && strings.HasPrefix(string(e.key.subject), ipPrefix)) {
			if e.persisted {
				e.persisted = false
				b.addDelete(e.key)
			}
			continue
		}
		e.persisted = true
		b.addPut(e)
	}
}

// write applies a batch in transactions of at most snapshotTxOps, all
// deletions first so that a key dropped and created again ends up stored.
// It returns how many puts and deletions committed.
func (l *Limiter) write(b *snapshotBatch) (puts, dels int, err error) {
	order := make([]int, 0, len(b.ops))
	for i, op := range b.ops {
		if op.del {
			order = append(order, i)
		}
	}
	for i, op := range b.ops {
		if !op.del {
			order = append(order, i)
		}
	}
	for len(order) > 0 {
		chunk := order[:min(len(order), snapshotTxOps)]
		order = order[len(chunk):]
		var p, d int
		err := l.store.Update(func(tx *store.Tx) error {
			p, d = 0, 0
			bk, err := tx.MustBucket(store.BucketLimiter)
			if err != nil {
				return err
			}
			for _, i := range chunk {
				op := b.ops[i]
				key := b.buf[op.start:op.keyEnd]
				if op.del {
					err, d = bk.Delete(key), d+1
				} else {
					err, p = bk.Put(key, b.buf[op.keyEnd:op.end]), p+1
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return puts, dels, err
		}
		puts, dels = puts+p, dels+d
	}
	return puts, dels, nil
}

// restore loads the records a previous Snapshot wrote. Records that are
// full by now, or that cannot be decoded, are deleted instead.
func (l *Limiter) restore(now time.Time) error {
	at, month := now.UnixNano(), l.viewAt(now).day.monthID
	var stale [][]byte
	err := l.store.View(func(tx *store.Tx) error {
		bk, err := tx.MustBucket(store.BucketLimiter)
		if err != nil {
			return err
		}
		return bk.ForEach(func(k, v []byte) error {
			e, err := decodeRecord(k, v)
			if err != nil {
				l.log.Warn("limiter: skipping stored bucket record", "err", err)
				l.restoreSkips++
				stale = append(stale, append([]byte(nil), k...))
				return nil
			}
			if e.idle(at, month) {
				stale = append(stale, append([]byte(nil), k...))
				return nil
			}
			sh, h := l.locate(e.key)
			sh.mu.Lock()
			i, _ := sh.get(e.key, h, -1, at, month)
			got := &sh.entries[i]
			e.lastUsed = got.lastUsed
			*got = *e
			got.persisted = true
			sh.mu.Unlock()
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("limiter: restore bucket state: %w", err)
	}
	for len(stale) > 0 {
		chunk := stale[:min(len(stale), snapshotTxOps)]
		stale = stale[len(chunk):]
		err := l.store.Update(func(tx *store.Tx) error {
			bk, err := tx.MustBucket(store.BucketLimiter)
			if err != nil {
				return err
			}
			var errs error
			for _, k := range chunk {
				errs = errors.Join(errs, bk.Delete(k))
			}
			return errs
		})
		if err != nil {
			return fmt.Errorf("limiter: delete stale bucket records: %w", err)
		}
	}
	return nil
}
