package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/apiwarden/apiwarden/metrics"
)

// partitionSet creates the daily partitions of apiwarden_records that
// shipped records need and remembers the ones it knows exist, so a round
// issues DDL only on the first batch of a new day. It is safe for
// concurrent use.
type partitionSet struct {
	mu    sync.Mutex
	known map[string]bool
}

func newPartitionSet() partitionSet { return partitionSet{known: make(map[string]bool)} }

// ensure creates the partitions of the UTC days the batches' records fall
// in, and of the day after the latest one, so the next day's first round
// finds its partition ready.
func (p *partitionSet) ensure(ctx context.Context, pool retryPool, batches []metrics.Batch) error {
	days := map[time.Time]bool{}
	var last time.Time
	for _, b := range batches {
		for i := range b.Records {
			d := b.Records[i].Time.UTC().Truncate(24 * time.Hour)
			days[d] = true
			if d.After(last) {
				last = d
			}
		}
	}
	days[last.AddDate(0, 0, 1)] = true
	p.mu.Lock()
	defer p.mu.Unlock()
	for d := range days {
		name := partitionName(d)
		if p.known[name] {
			continue
		}
		if err := createPartition(ctx, pool, name, d); err != nil {
			return err
		}
		p.known[name] = true
	}
	return nil
}

// forget makes ensure look for every partition again.
func (p *partitionSet) forget() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.known)
}

// partitionName is the partition of apiwarden_records for UTC day d.
func partitionName(d time.Time) string { return "apiwarden_records_" + d.Format("20060102") }

// createPartition creates the partition of day d unless it exists. Two
// instances creating the same one at once can make the loser fail with a
// duplicate (of the table or of its row type); the partition then exists,
// which is all that was asked.
func createPartition(ctx context.Context, pool retryPool, name string, d time.Time) error {
	sql := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF apiwarden_records FOR VALUES FROM ('%s') TO ('%s')`,
		name, d.Format(time.RFC3339), d.AddDate(0, 0, 1).Format(time.RFC3339))
	_, err := pool.Exec(ctx, sql)
	if err == nil {
		return nil
	}
	var exists bool
	if qerr := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&exists); qerr == nil && exists {
		return nil
	}
	return fmt.Errorf("cluster: create partition %s: %w", name, err)
}
