package analytics

import (
	"context"

	"github.com/apiwarden/apiwarden/metrics"
)

// ValueCounter is a Source that counts the distinct values of a dimension
// itself, without handing every cell to the Service: cluster.Source
// counts them in PostgreSQL from an index. The Summary's unique keys use
// it when the Source has it.
type ValueCounter interface {
	// CountValues returns how many distinct values of dim have a cell in
	// at least one of parts (queries of dim with AllValues, whose From and
	// To are starts of their interval), the count a pass over those cells
	// would make. Safe for concurrent use.
	CountValues(ctx context.Context, dim metrics.Dimension, parts []metrics.CellQuery) (uint64, error)
}

// TopCounter is a Source that ranks the values of a dimension by their
// summed Count itself and hands over only the top values' cells:
// cluster.Source ranks them in PostgreSQL. Top by requests uses it when
// the Source has it.
type TopCounter interface {
	// TopByCount calls fn for each of the limit values of dim whose cells
	// in parts (as ValueCounter's) have the largest summed Count, ties
	// broken by the smaller value in byte order (Top's order when it
	// ranks by requests), with the merge of that value's cells in parts,
	// which fn must not keep. Safe for concurrent use.
	TopByCount(ctx context.Context, dim metrics.Dimension, parts []metrics.CellQuery, limit int,
		fn func(value string, c *metrics.Cell) error) error
}
