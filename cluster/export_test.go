package cluster

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"
)

// MigrateFiles runs Migrate over the given SQL by version instead of the
// embedded files.
func MigrateFiles(ctx context.Context, pool *pgxpool.Pool, sql map[int]string) ([]int, error) {
	var list []migration
	for v, s := range sql {
		list = append(list, migration{Version: v, Name: fmt.Sprintf("test_%d", v), SQL: s})
	}
	slices.SortFunc(list, func(a, b migration) int { return a.Version - b.Version })
	return migrate(ctx, pool, list)
}
