package limiter

import (
	"context"
	"time"
)

// Run sweeps idle entries and, with a Store, snapshots bucket state every
// SnapshotInterval, until ctx ends (it then writes one more snapshot) or
// Stop is called (Stop writes it), and returns nil. Run may be called
// once: a call while Run is active returns an error wrapping
// lifecycle.ErrAlreadyRunning, and a call after Stop, or after Run has
// returned, returns nil at once.
func (l *Limiter) Run(ctx context.Context) error {
	return l.life.Run("limiter", func(stop <-chan struct{}) error {
		ticker := time.NewTicker(l.interval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				// Requests may still be draining: Stop snapshots again after them.
				if err := l.Snapshot(); err != nil {
					l.log.Error("limiter: snapshot at shutdown failed", "err", err)
				}
				return nil
			case <-stop:
				return nil
			case <-ticker.C:
				l.Sweep(l.now())
				if err := l.Snapshot(); err != nil {
					l.log.Error("limiter: periodic snapshot failed; will retry", "err", err)
				}
			}
		}
	})
}

// Stop ends Run, waits for it, and writes a last snapshot. Call it after
// the last request has been decided and before closing the Store. It is
// safe to call more than once, before Run (a later Run then returns at
// once) and from several goroutines; every call returns after that
// snapshot.
func (l *Limiter) Stop() {
	l.life.Stop(nil)
	l.finalSnapshot()
}

func (l *Limiter) finalSnapshot() {
	l.finalOnce.Do(func() {
		if err := l.Snapshot(); err != nil {
			l.log.Error("limiter: final snapshot failed; recent bucket state is lost", "err", err)
		}
	})
}

// Sweep drops every entry that carries no information at now (all buckets
// full, no monthly count this month) and returns how many it dropped. Run
// calls it every SnapshotInterval; it holds one shard lock at a time.
func (l *Limiter) Sweep(now time.Time) int {
	at, month := now.UnixNano(), l.viewAt(now).day.monthID
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += sh.sweep(at, month)
		sh.mu.Unlock()
	}
	return n
}

// Stats is a reading of the limiter's counters for monitoring.
type Stats struct {
	// Subjects is the number of entries in memory: subjects plus
	// (subject, route) pairs with a route limit.
	Subjects int
	// IdleEvictions counts entries dropped because they carried no
	// information (full buckets); ForcedEvictions counts entries dropped
	// with state because MaxSubjects was reached.
	IdleEvictions   uint64
	ForcedEvictions uint64
	// Snapshots and SnapshotErrors count snapshot runs and failed ones.
	Snapshots      uint64
	SnapshotErrors uint64
	// LastSnapshotDuration, LastSnapshotWritten and LastSnapshotDeleted
	// describe the most recent snapshot.
	LastSnapshotDuration time.Duration
	LastSnapshotWritten  int
	LastSnapshotDeleted  int
	// RestoreSkipped counts stored records New could not decode.
	RestoreSkipped int
}

// Stats reads the counters, taking each shard lock briefly.
func (l *Limiter) Stats() Stats {
	s := Stats{
		Snapshots:            l.snapshots.Load(),
		SnapshotErrors:       l.snapshotErrs.Load(),
		LastSnapshotDuration: time.Duration(l.lastSnapshot.Load()),
		LastSnapshotWritten:  int(l.lastWritten.Load()),
		LastSnapshotDeleted:  int(l.lastDeleted.Load()),
		RestoreSkipped:       l.restoreSkips,
	}
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		s.Subjects += sh.count
		s.IdleEvictions += sh.idleEvictions
		s.ForcedEvictions += sh.forcedEvictions
		sh.mu.Unlock()
	}
	return s
}
