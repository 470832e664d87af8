package cluster

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.up.sql
var migrationFiles embed.FS

// migration is one numbered schema change.
type migration struct {
	Version int
	Name    string
	SQL     string
}

var migrationName = regexp.MustCompile(`^(\d{3})_([a-z0-9_]+)\.up\.sql$`)

// migrations reads the embedded files, in version order. Versions must be
// 1, 2, 3, ... without gaps, so that "the database's version" says which
// files have run.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMigration, err)
	}
	var list []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("%w: %s is not NNN_name.up.sql", ErrBadMigration, e.Name())
		}
		sql, err := fs.ReadFile(migrationFiles, "migrations/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadMigration, err)
		}
		v, _ := strconv.Atoi(m[1])
		list = append(list, migration{Version: v, Name: m[2], SQL: string(sql)})
	}
	slices.SortFunc(list, func(a, b migration) int { return a.Version - b.Version })
	for i, m := range list {
		if m.Version != i+1 {
			return nil, fmt.Errorf("%w: expected version %d, found %d", ErrBadMigration, i+1, m.Version)
		}
	}
	return list, nil
}

// SchemaVersion is the schema version this binary migrates to.
func SchemaVersion() int {
	list, err := migrations()
	if err != nil || len(list) == 0 {
		return 0
	}
	return list[len(list)-1].Version
}

// migrateLockID is the transaction-level advisory lock every instance
// takes before it looks at the schema version ("apiwarden" in ASCII).
const migrateLockID int64 = 0x61706977617264

// Migrate brings the database's schema to this binary's version and
// returns the versions it applied (none when it was current).
//
// Everything happens in one transaction under a transaction-level
// advisory lock: instances that start together queue on the lock, the
// first migrates, and the others find the schema current. PostgreSQL's
// DDL is transactional, so a failed migration leaves nothing behind. A
// database at a version this binary does not know returns ErrSchemaNewer
// and changes nothing. ctx bounds the whole call, waiting for the lock
// included.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]int, error) {
	list, err := migrations()
	if err != nil {
		return nil, err
	}
	return migrate(ctx, pool, list)
}

func migrate(ctx context.Context, pool *pgxpool.Pool, list []migration) ([]int, error) {
	var applied []int
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLockID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS apiwarden_migration (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM apiwarden_migration").Scan(&current); err != nil {
			return err
		}
		if known := len(list); current > known {
			return fmt.Errorf("%w: the database is at version %d, this binary knows up to %d; upgrade apiwarden", ErrSchemaNewer, current, known)
		}
		for _, m := range list[current:] {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("cluster: migration %03d_%s: %w", m.Version, m.Name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO apiwarden_migration (version, name) VALUES ($1, $2)", m.Version, m.Name); err != nil {
				return err
			}
			applied = append(applied, m.Version)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return applied, nil
}
