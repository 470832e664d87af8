package cluster

import (
	"context"
	"fmt"
)

// buckets is the "buckets" step: the data file's bucket states merged
// into the cluster's shared buckets in Redis (limiter.Redis.MergeStored:
// a bucket ends as spent as the more spent of the two, so a rerun, or
// traffic on running instances, is never given tokens back). Without
// Redis each instance keeps its own buckets, so there is nowhere to put
// them.
func (im *importer) buckets(ctx context.Context) (StepResult, error) {
	var res StepResult
	if im.opts.Redis == nil {
		note := "not imported: [redis] is not set, so each instance keeps its own buckets, and a new instance's start full"
		res.Notes = append(res.Notes, note)
		im.progress("buckets: %s", note)
		return res, nil
	}
	n, err := im.opts.Redis.MergeStored(ctx, im.src, im.opts.Now(), im.opts.DryRun, func(done, total int) {
		if done%im.opts.ProgressEvery == 0 && done < total {
			im.progress("buckets: %d/%d", done, total)
		}
	})
	res.Imported, res.Skipped = n.Merged, n.Unchanged+n.Idle
	if err != nil {
		return res, err
	}
	im.progress("buckets: %d in the data file; merged into Redis %d, skipped %d (Redis as spent already: %d; full again by now: %d)",
		n.Total, n.Merged, n.Unchanged+n.Idle, n.Unchanged, n.Idle)
	if n.Idle > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d bucket states skipped as full again by now", n.Idle))
	}
	return res, nil
}
