package metrics

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/apiwarden/apiwarden/store"
)

// Retention works in small transactions so a flush never waits long for
// the write lock: one transaction per raw day (a single DeleteBucket, no
// scan of the records) and, for rollups, at most retentionBatch deletions
// or retentionVisit keys looked at per transaction.
const (
	retentionBatch = 1000
	retentionVisit = 20000
)

// RetentionResult says what one retention pass deleted.
type RetentionResult struct {
	RawDays     int // day buckets of raw records
	HourlyCells int
	DailyCells  int
}

// ApplyRetention deletes, as of the injected clock, the raw days, hourly
// cells and daily cells older than their retention (a limit of 0 keeps
// everything). Run calls it every RetentionInterval; it is safe to call
// at any time, also while Run is flushing. It stops early, returning
// ctx.Err(), when ctx ends, and returns the store's error (wrapped) if a
// transaction fails; what was deleted before stays deleted.
func (r *Recorder) ApplyRetention(ctx context.Context) (RetentionResult, error) {
	var res RetentionResult
	cut := r.cutoffs(r.now())
	if cut.rawDay > 0 {
		n, err := r.dropRawDays(ctx, cut.rawDay)
		res.RawDays = n
		if err != nil {
			return res, err
		}
	}
	if cut.hour > 0 {
		n, err := r.deleteCellsBefore(ctx, Hourly, cut.hour)
		res.HourlyCells = n
		if err != nil {
			return res, err
		}
	}
	if cut.day > 0 {
		n, err := r.deleteCellsBefore(ctx, Daily, cut.day)
		res.DailyCells = n
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// dropRawDays deletes the raw day buckets before firstKept, one
// transaction per day.
func (r *Recorder) dropRawDays(ctx context.Context, firstKept uint32) (int, error) {
	var expired [][]byte
	err := r.st.View(func(tx *store.Tx) error {
		raw, err := tx.MustBucket(store.BucketRaw)
		if err != nil {
			return err
		}
		c := raw.Cursor()
		// Day names sort by date: stop at the first day that is kept.
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v != nil {
				continue
			}
			day, ok := parseDayName(k)
			if !ok {
				continue
			}
			if day >= firstKept {
				break
			}
			expired = append(expired, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("metrics: retention: list raw days: %w", err)
	}
	dropped := 0
	for _, name := range expired {
		if err := ctx.Err(); err != nil {
			return dropped, err
		}
		err := r.st.Update(func(tx *store.Tx) error {
			raw, err := tx.MustBucket(store.BucketRaw)
			if err != nil {
				return err
			}
			if raw.Bucket(name) == nil {
				return nil
			}
			return raw.DeleteBucket(name)
		})
		if err != nil {
			return dropped, fmt.Errorf("metrics: retention: drop raw day %s: %w", name, err)
		}
		dropped++
		r.log.Info("metrics: dropped expired raw records", "day", string(name))
	}
	return dropped, nil
}

// deleteCellsBefore deletes the cells of iv numbered below first. Cells
// are keyed by dimension and value first, so it walks value by value and,
// once a value's remaining cells are all kept, seeks past them.
func (r *Recorder) deleteCellsBefore(ctx context.Context, iv Interval, first uint32) (int, error) {
	deleted := 0
	var resume []byte
	for {
		if err := ctx.Err(); err != nil {
			return deleted, err
		}
		// Find a batch in a read transaction, so a pass that finds
		// nothing to delete never takes the write lock or syncs.
		var victims [][]byte
		var next []byte
		err := r.st.View(func(tx *store.Tx) error {
			b, err := tx.MustBucket(iv.bucket())
			if err != nil {
				return err
			}
			c := b.Cursor()
			var k []byte
			if resume == nil {
				k, _ = c.First()
			} else {
				k, _ = c.Seek(resume)
			}
			for visited := 0; k != nil; visited++ {
				if len(victims) >= retentionBatch || visited >= retentionVisit {
					next = bytes.Clone(k)
					break
				}
				dim, value, n, ok := parseCellKey(k)
				switch {
				case !ok:
					k, _ = c.Next()
				case n < first:
					victims = append(victims, bytes.Clone(k))
					k, _ = c.Next()
				default:
					past := appendValuePrefix(nil, dim, string(value))
					k, _ = c.Seek(append(past, 0xff, 0xff, 0xff, 0xff, 0xff))
				}
			}
			return nil
		})
		if err == nil && len(victims) > 0 {
			// Flushes never write cells older than the cut-off, so what
			// the read found is still there to delete.
			err = r.st.Update(func(tx *store.Tx) error {
				b, err := tx.MustBucket(iv.bucket())
				if err != nil {
					return err
				}
				for _, v := range victims {
					if err := b.Delete(v); err != nil {
						return err
					}
				}
				return forgetDirty(tx, iv, victims)
			})
		}
		if err != nil {
			return deleted, fmt.Errorf("metrics: retention: delete %s cells: %w", iv, err)
		}
		deleted += len(victims)
		if next == nil {
			return deleted, nil
		}
		resume = next
	}
}

// retentionLoop applies retention now and then every RetentionInterval
// until ctx ends.
func (r *Recorder) retentionLoop(ctx context.Context) {
	if r.rawDays == 0 && r.hourDays == 0 && r.dayDays == 0 {
		return
	}
	ticker := time.NewTicker(r.retentionInterval)
	defer ticker.Stop()
	for {
		res, err := r.ApplyRetention(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("metrics: retention failed; retrying next interval", "err", err)
		} else if res.HourlyCells+res.DailyCells > 0 {
			r.log.Info("metrics: deleted expired rollup cells", "hourly", res.HourlyCells, "daily", res.DailyCells)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
