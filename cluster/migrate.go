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

// migrations reads the embedded files, in version order. Versions are
// unique and increasing but may have gaps: numbers are handed out to
// branches developed side by side, and one merged ahead of another leaves
// a gap for a while. The version table records each file that has run,
// so a file that arrives later with a lower number still runs.
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
		if m.Version < 1 || (i > 0 && m.Version == list[i-1].Version) {
			return nil, fmt.Errorf("%w: version %03d is zero or used twice", ErrBadMigration, m.Version)
		}
	}
	return list, nil
}

// SchemaVersions lists the versions of the embedded migrations, in order.
func SchemaVersions() []int {
	list, _ := migrations()
	out := make([]int, len(list))
	for i, m := range list {
		out[i] = m.Version
	}
	return out
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
		done, err := appliedVersions(ctx, tx)
		if err != nil {
			return err
		}
		known := make(map[int]bool, len(list))
		for _, m := range list {
			known[m.Version] = true
		}
		for _, v := range done {
			if !known[v] {
				return fmt.Errorf("%w: the database has version %d, which this binary does not know (it knows up to %d); upgrade apiwarden", ErrSchemaNewer, v, SchemaVersion())
			}
		}
		for _, m := range list {
			if slices.Contains(done, m.Version) {
				continue
			}
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

// appliedVersions reads the version table.
func appliedVersions(ctx context.Context, tx pgx.Tx) ([]int, error) {
	rows, err := tx.Query(ctx, "SELECT version FROM apiwarden_migration ORDER BY version")
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int])
}
