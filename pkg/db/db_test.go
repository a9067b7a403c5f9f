package db_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// migration returns a goose SQL migration file.
func migration(up string) *fstest.MapFile {
	return &fstest.MapFile{Data: []byte("-- +goose Up\n" + up + "\n")}
}

var itemsV1 = fstest.MapFS{
	"00001_create_items.sql": migration("CREATE TABLE items (id bigint PRIMARY KEY);"),
}

var itemsV2 = fstest.MapFS{
	"00001_create_items.sql": itemsV1["00001_create_items.sql"],
	"00002_add_name.sql":     migration("ALTER TABLE items ADD COLUMN name text NOT NULL DEFAULT '';"),
}

func TestMigrateKeepsSchemasApart(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := testkit.Postgres(t)
	alpha := open(t, dsn, "alpha")
	beta := open(t, dsn, "beta")

	require.NoError(t, db.Migrate(ctx, alpha, "alpha", itemsV2))
	require.NoError(t, db.Migrate(ctx, beta, "beta", fstest.MapFS{
		"00001_create_items.sql": migration("CREATE TABLE items (sku text PRIMARY KEY);"),
	}))

	require.Equal(t, []string{"id", "name"}, columns(t, alpha, "alpha", "items"))
	require.Equal(t, []string{"sku"}, columns(t, beta, "beta", "items"))
	require.Equal(t, int64(2), version(t, alpha, "alpha"))
	require.Equal(t, int64(1), version(t, beta, "beta"))
	require.Empty(t, columns(t, alpha, "public", "goose_db_version"), "each schema keeps its own versions")

	_, err := alpha.Exec(ctx, "INSERT INTO items (id, name) VALUES (1, 'a')")
	require.NoError(t, err, "unqualified names resolve in the pool's schema")
	var n int
	require.NoError(t, beta.QueryRow(ctx, "SELECT count(*) FROM alpha.items").Scan(&n))
	require.Equal(t, 1, n)
}

func TestMigrateIsIdempotentAndAppliesNewMigrations(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := open(t, testkit.Postgres(t), "repair")

	require.NoError(t, db.Migrate(ctx, pool, "repair", itemsV1))
	require.NoError(t, db.Migrate(ctx, pool, "repair", itemsV1))
	require.Equal(t, int64(1), version(t, pool, "repair"))

	require.NoError(t, db.Migrate(ctx, pool, "repair", itemsV2))
	require.NoError(t, db.Migrate(ctx, pool, "repair", itemsV2))
	require.Equal(t, int64(2), version(t, pool, "repair"))
	require.Equal(t, []string{"id", "name"}, columns(t, pool, "repair", "items"))
}

func TestMigrateReplicasStartingTogether(t *testing.T) {
	t.Parallel()
	dsn := testkit.Postgres(t)
	// Slow enough for the replicas to overlap; CREATE TABLE without IF NOT
	// EXISTS fails if it runs twice.
	slow := fstest.MapFS{
		"00001_create_items.sql": migration("SELECT pg_sleep(0.3);\nCREATE TABLE items (id bigint PRIMARY KEY);"),
	}
	var g errgroup.Group
	for range 3 {
		pool := open(t, dsn, "monitor") // one pool per replica
		g.Go(func() error { return db.Migrate(t.Context(), pool, "monitor", slow) })
	}
	require.NoError(t, g.Wait())
	require.Equal(t, int64(1), version(t, open(t, dsn, "monitor"), "monitor"))
}

func TestMigrateRejects(t *testing.T) {
	t.Parallel()
	dsn := testkit.Postgres(t)
	tests := []struct {
		name       string
		poolSchema string
		schema     string
		wantErr    string
	}{
		{name: "pool of another schema", poolSchema: "alpha", schema: "beta", wantErr: `db.Open(ctx, dsn, "beta")`},
		{name: "reserved keyword", poolSchema: "user", schema: "user", wantErr: "reserved SQL keyword"},
		{name: "invalid name", poolSchema: "alpha", schema: "Alpha", wantErr: "must be a lowercase identifier"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool := open(t, dsn, tt.poolSchema)
			require.ErrorContains(t, db.Migrate(t.Context(), pool, tt.schema, itemsV1), tt.wantErr)
		})
	}
}

func TestOpenValidatesSchema(t *testing.T) {
	t.Parallel()
	tests := []struct {
		schema  string
		wantErr string
	}{
		{schema: "", wantErr: "schema: missing"},
		{schema: "Repair", wantErr: "must be a lowercase identifier"},
		{schema: "re-pair", wantErr: "must be a lowercase identifier"},
		{schema: `x"; DROP`, wantErr: "must be a lowercase identifier"},
		{schema: "pg_repair", wantErr: "reserved for system schemas"},
		{schema: strings.Repeat("a", 64), wantErr: "longer than 63 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.schema, func(t *testing.T) {
			t.Parallel()
			_, err := db.Open(t.Context(), "host=/nonexistent", tt.schema)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestInTx(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := open(t, testkit.Postgres(t), "notify")
	require.NoError(t, db.Migrate(ctx, pool, "notify", itemsV1))
	insert := func(id int) func(pgx.Tx) error {
		return func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO items (id) VALUES ($1)", id)
			return err
		}
	}
	errBoom := errors.New("boom")

	t.Run("commits on nil", func(t *testing.T) {
		require.NoError(t, db.InTx(ctx, pool, insert(1)))
		require.True(t, exists(t, pool, 1))
	})
	t.Run("rolls back on error", func(t *testing.T) {
		err := db.InTx(ctx, pool, func(tx pgx.Tx) error {
			require.NoError(t, insert(2)(tx))
			return errBoom
		})
		require.ErrorIs(t, err, errBoom)
		require.False(t, exists(t, pool, 2))
	})
	t.Run("rolls back on panic", func(t *testing.T) {
		require.Panics(t, func() {
			_ = db.InTx(ctx, pool, func(tx pgx.Tx) error {
				require.NoError(t, insert(3)(tx))
				panic("boom")
			})
		})
		require.False(t, exists(t, pool, 3))
		require.Zero(t, pool.Stat().AcquiredConns(), "the connection went back to the pool")
	})
	t.Run("wraps a failed commit", func(t *testing.T) {
		err := db.InTx(ctx, pool, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "SET CONSTRAINTS ALL DEFERRED")
			require.NoError(t, err)
			_, err = tx.Exec(ctx, "CREATE TABLE deferred_check (id int UNIQUE DEFERRABLE INITIALLY DEFERRED); "+
				"INSERT INTO deferred_check VALUES (1), (1)")
			return err
		})
		require.ErrorContains(t, err, "db: commit transaction")
		var exists bool
		require.NoError(t, pool.QueryRow(ctx, "SELECT to_regclass('deferred_check') IS NOT NULL").Scan(&exists))
		require.False(t, exists)
	})
}

func open(t *testing.T, dsn, schema string) *pgxpool.Pool {
	t.Helper()
	pool, err := db.Open(t.Context(), dsn, schema)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

func columns(t *testing.T, pool *pgxpool.Pool, schema, table string) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT column_name FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, schema, table)
	require.NoError(t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return names
}

func version(t *testing.T, pool *pgxpool.Pool, schema string) int64 {
	t.Helper()
	var v int64
	require.NoError(t, pool.QueryRow(t.Context(),
		"SELECT max(version_id) FROM "+pgx.Identifier{schema, "goose_db_version"}.Sanitize()).Scan(&v))
	return v
}

func exists(t *testing.T, pool *pgxpool.Pool, id int) bool {
	t.Helper()
	var ok bool
	require.NoError(t, pool.QueryRow(context.WithoutCancel(t.Context()),
		"SELECT EXISTS (SELECT 1 FROM items WHERE id = $1)", id).Scan(&ok))
	return ok
}
