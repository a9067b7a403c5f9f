package db

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Migrate brings schema up to date with the goose migrations at the root of
// migrations (files NNNNN_name.sql; for an embed.FS of a migrations/ dir
// pass fs.Sub(fsys, "migrations")). It creates the schema if needed and
// keeps the applied versions in <schema>.goose_db_version.
//
// pool must come from Open with the same schema: the migrations' unqualified
// names resolve through its search_path.
//
// Replicas starting together are safe: a PostgreSQL advisory lock, one per
// schema, lets one of them migrate while the others wait (polling every
// second, up to five minutes) and then find nothing left to do.
//
// A schema can hold several independent sets of migrations (a service's own
// and the shared outbox tables, say): give each extra set its own version
// table with VersionTable.
//
// Migrations run on connections of their own, as the pool's role, without
// the pool's statement_timeout (rewriting a big table may take minutes)
// but with migrationLockTimeout: a migration queued behind a long
// transaction would otherwise queue every query of the service behind its
// own lock; it fails instead, and the next start tries again.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, migrations fs.FS, opts ...MigrateOption) error {
	cfg := migrateConfig{table: "goose_db_version"}
	for _, o := range opts {
		o(&cfg)
	}
	if err := validateSchema(schema); err != nil {
		return err
	}
	// The table name goes into goose's SQL unquoted, like the schema.
	if len(cfg.table) > 63 || !schemaName.MatchString(cfg.table) {
		return fmt.Errorf("db: version table %q: must be a lowercase identifier (a-z, 0-9, _)", cfg.table)
	}
	lockID := migrationLockID(schema)
	mcfg := pool.Config()
	mcfg.ConnConfig.RuntimeParams["statement_timeout"] = "0"
	mcfg.ConnConfig.RuntimeParams["lock_timeout"] = milliseconds(migrationLockTimeout)
	// One for goose's session lock, one for the migrations, one spare.
	mcfg.MinConns, mcfg.MaxConns = 0, 3
	mpool, err := pgxpool.NewWithConfig(ctx, mcfg)
	if err != nil {
		return fmt.Errorf("db: migrate %s: %w", schema, err)
	}
	defer mpool.Close()
	pool = mpool
	if err := createSchema(ctx, pool, schema, lockID); err != nil {
		return fmt.Errorf("db: migrate %s: %w", schema, err)
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID), lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("db: migrate %s: %w", schema, err)
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close() // leaves the pool open
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations,
		// schema passed validateSchema, so it needs no quoting here (nor
		// could it have any: goose compares the name as written).
		goose.WithTableName(schema+"."+cfg.table),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return fmt.Errorf("db: migrate %s: %w", schema, err)
	}
	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("db: migrate %s: %w", schema, err)
	}
	return nil
}

// migrationLockTimeout bounds how long a migration waits for a table's
// lock.
const migrationLockTimeout = time.Minute

// createSchema creates schema, refusing names that would need quoting, and
// checks that pool's connections resolve names in it and may create
// objects there. An existing schema is not created again: a service's
// role owns its schema but may not create schemas (Bootstrap).
func createSchema(ctx context.Context, pool *pgxpool.Pool, schema string, lockID int64) error {
	return InTx(ctx, pool, func(tx pgx.Tx) error {
		// goose writes the version table's name unquoted, so a keyword such
		// as "user" would break its SQL.
		var category string
		err := tx.QueryRow(ctx, "SELECT catcode FROM pg_get_keywords() WHERE word = $1", schema).Scan(&category)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("check schema name: %w", err)
		}
		if category == "R" || category == "T" {
			return fmt.Errorf("schema %q is a reserved SQL keyword: choose another name", schema)
		}
		// Concurrent CREATE SCHEMA IF NOT EXISTS can still fail with a
		// unique violation; the migration lock serialises it.
		// Another replica may hold the lock for its whole migration:
		// wait for it, not for migrationLockTimeout.
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = 0"); err != nil {
			return fmt.Errorf("lock schema: %w", err)
		}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockID); err != nil {
			return fmt.Errorf("lock schema: %w", err)
		}
		var owner, role string
		var mayCreate bool
		err = tx.QueryRow(ctx, `SELECT pg_get_userbyid(nspowner), current_user, has_schema_privilege(oid, 'CREATE')
			FROM pg_namespace WHERE nspname = $1`, schema).Scan(&owner, &role, &mayCreate)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if _, err := tx.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
				if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "42501" { // insufficient_privilege
					return fmt.Errorf("create schema: %w (a service's own role may not create schemas: make its schema and role first with `vigil db bootstrap`)", err)
				}
				return fmt.Errorf("create schema: %w", err)
			}
		case err != nil:
			return fmt.Errorf("check schema: %w", err)
		case !mayCreate:
			return fmt.Errorf("role %s may not create tables in schema %s (owned by %s): log in as the schema's owner, or give it to this role (`vigil db bootstrap`)", role, schema, owner)
		}
		var current *string
		if err := tx.QueryRow(ctx, "SELECT current_schema()").Scan(&current); err != nil {
			return fmt.Errorf("check search_path: %w", err)
		}
		if current == nil || *current != schema {
			return fmt.Errorf("the pool's search_path does not start with schema %s: open the pool with db.Open(ctx, dsn, %q)", schema, schema)
		}
		return nil
	})
}

// migrationLockID derives a per-schema advisory lock key, so that services
// sharing a database migrate in parallel, not one after another.
func migrationLockID(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("vigil/db.Migrate/" + schema))
	return int64(h.Sum64()) // any 64 bits make a key: wrapping to negative is fine
}

// MigrateOption tunes Migrate.
type MigrateOption func(*migrateConfig)

type migrateConfig struct{ table string }

// VersionTable names the table, in the schema, that records which of these
// migrations ran (default goose_db_version). name must be a plain lower-case
// identifier.
func VersionTable(name string) MigrateOption {
	return func(c *migrateConfig) { c.table = name }
}

// Sub returns the subtree dir of fsys, for an embed.FS holding a
// migrations/ directory. It panics on an invalid dir: a programming error.
func Sub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(fmt.Sprintf("db: %v", err))
	}
	return sub
}
