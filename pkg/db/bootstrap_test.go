package db_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/pgcluster"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// requireSQLState asserts err is a PostgreSQL error with code.
func requireSQLState(t *testing.T, err error, code string) {
	t.Helper()
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, code, pgErr.Code, "%s", pgErr.Message)
}

const insufficientPrivilege = "42501"

// Service A's role may neither read nor write service B's schema, nor
// create anything outside its own.
func TestBootstrapKeepsServicesOutOfEachOthersSchema(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := testkit.Postgres(t)
	logins, err := db.Bootstrap(ctx, dsn, []string{"alpha", "beta"}, nil)
	require.NoError(t, err)
	alpha := openAs(t, dsn, "alpha", logins["alpha"])
	beta := openAs(t, dsn, "beta", logins["beta"])
	require.NoError(t, db.Migrate(ctx, alpha, "alpha", itemsV1))
	require.NoError(t, db.Migrate(ctx, beta, "beta", itemsV1))
	_, err = alpha.Exec(ctx, "INSERT INTO items (id) VALUES (1)")
	require.NoError(t, err)

	var user string
	var super bool
	require.NoError(t, alpha.QueryRow(ctx, "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&user, &super))
	require.Equal(t, logins["alpha"].Role, user)
	require.False(t, super)

	for name, sql := range map[string]string{
		"select":        "SELECT count(*) FROM alpha.items",
		"insert":        "INSERT INTO alpha.items (id) VALUES (2)",
		"delete":        "DELETE FROM alpha.items",
		"create table":  "CREATE TABLE alpha.mine (id int)",
		"create public": "CREATE TABLE public.mine (id int)",
		"create schema": "CREATE SCHEMA gamma",
		"drop table":    "DROP TABLE alpha.items",
	} {
		_, err := beta.Exec(ctx, sql)
		require.Error(t, err, name)
		requireSQLState(t, err, insufficientPrivilege)
	}
	var n int
	require.NoError(t, alpha.QueryRow(ctx, "SELECT count(*) FROM items WHERE id = 1").Scan(&n))
	require.Equal(t, 1, n, "alpha's row is still there, alone")
	require.NoError(t, alpha.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n))
	require.Equal(t, 1, n)
	var exists bool
	require.NoError(t, alpha.QueryRow(ctx, "SELECT to_regclass('public.mine') IS NOT NULL OR to_regnamespace('gamma') IS NOT NULL").Scan(&exists))
	require.False(t, exists)
}

// A schema migrated before there were roles (by the superuser) is handed
// over with what is in it: its role reads the rows, migrates further, and
// uses the table's sequence.
func TestBootstrapHandsOverAnExistingSchema(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := testkit.Postgres(t)
	old := open(t, dsn, "gamma")
	require.NoError(t, db.Migrate(ctx, old, "gamma", fstest.MapFS{
		"00001_create_items.sql": migration(`CREATE TABLE items (id bigserial PRIMARY KEY, v text);
			CREATE SEQUENCE tickets;
			CREATE TYPE mood AS ENUM ('ok', 'bad');
			CREATE VIEW item_ids AS SELECT id FROM items;
			INSERT INTO items (v) VALUES ('kept');`),
	}))

	logins, err := db.Bootstrap(ctx, dsn, []string{"gamma"}, nil)
	require.NoError(t, err)
	again, err := db.Bootstrap(ctx, dsn, []string{"gamma"}, nil)
	require.NoError(t, err, "idempotent")
	require.Equal(t, logins, again)

	pool := openAs(t, dsn, "gamma", logins["gamma"])
	require.NoError(t, db.Migrate(ctx, pool, "gamma", fstest.MapFS{
		"00001_create_items.sql": migration("SELECT 1;"),
		"00002_alter.sql":        migration("ALTER TABLE items ADD COLUMN m mood; ALTER VIEW item_ids RENAME TO ids; SELECT nextval('tickets');"),
	}))
	_, err = pool.Exec(ctx, "INSERT INTO items (v, m) VALUES ('new', 'ok')")
	require.NoError(t, err)
	var vs []string
	rows, err := pool.Query(ctx, "SELECT v FROM items ORDER BY id")
	require.NoError(t, err)
	vs, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"kept", "new"}, vs)
	var owner string
	require.NoError(t, pool.QueryRow(ctx, "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'gamma'").Scan(&owner))
	require.Equal(t, logins["gamma"].Role, owner)
}

// A pool of a role that does not own its schema says what to do.
func TestMigrateNamesTheOwnerItCannotWriteAs(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := testkit.Postgres(t)
	logins, err := db.Bootstrap(ctx, dsn, []string{"alpha", "beta"}, nil)
	require.NoError(t, err)
	beta := openAs(t, dsn, "alpha", logins["beta"])
	err = db.Migrate(ctx, beta, "alpha", itemsV1)
	require.ErrorContains(t, err, "may not create tables in schema alpha")
	require.ErrorContains(t, err, "vigil db bootstrap")

	// Nor may it create a schema of its own.
	stray := openAs(t, dsn, "gamma", logins["beta"])
	err = db.Migrate(ctx, stray, "gamma", itemsV1)
	requireSQLState(t, err, insufficientPrivilege)
	require.ErrorContains(t, err, "vigil db bootstrap")
}

func TestBootstrapNeedsARoleThatMayCreateRoles(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := testkit.Postgres(t)
	admin, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	var database string
	require.NoError(t, admin.QueryRow(ctx, "SELECT current_database()").Scan(&database))
	plain, creator := database+"_plain", database+"_creator"
	for _, sql := range []string{
		"CREATE ROLE " + plain + " LOGIN",
		"CREATE ROLE " + creator + " LOGIN CREATEROLE",
		"GRANT CREATE ON DATABASE " + database + " TO " + creator,
	} {
		_, err := admin.Exec(ctx, sql)
		require.NoError(t, err)
	}

	_, err = db.Bootstrap(ctx, dsn+" user="+plain, []string{"alpha"}, nil)
	require.ErrorIs(t, err, db.ErrCannotCreateRoles)
	var n int
	require.NoError(t, admin.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname = $1", db.RoleName(database, "alpha")).Scan(&n))
	require.Zero(t, n, "no role made")

	// CREATEROLE and CREATE on the database are enough.
	logins, err := db.Bootstrap(ctx, dsn+" user="+creator, []string{"alpha"}, nil)
	require.NoError(t, err)
	pool := openAs(t, dsn, "alpha", logins["alpha"])
	require.NoError(t, db.Migrate(ctx, pool, "alpha", itemsV1))
}

// The roles log in with their passwords where the server asks for one
// (SCRAM, as over TCP in docker-compose), and not with another.
func TestBootstrapPasswordsLogIn(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir, err := os.MkdirTemp("", "db-test-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	hba := filepath.Join(dir, "pg_hba.conf")
	require.NoError(t, os.WriteFile(hba, []byte("local all postgres trust\nlocal all all scram-sha-256\n"), 0o644))
	c, err := pgcluster.Start(ctx, pgcluster.Options{
		DataDir: filepath.Join(dir, "data"), Settings: map[string]string{"fsync": "off", "hba_file": hba},
		Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.Stop(sctx)
	})
	dsn := c.DSN("postgres")
	logins, err := db.Bootstrap(ctx, dsn, []string{"alpha"}, map[string]string{"alpha": "s3cret-Pass_word"})
	require.NoError(t, err)
	require.Equal(t, db.Login{Role: "postgres_alpha", Password: "s3cret-Pass_word"}, logins["alpha"])

	pool, err := db.Open(ctx, dsn, "alpha", db.As(logins["alpha"]))
	require.NoError(t, err)
	pool.Close()
	_, err = db.Open(ctx, dsn, "alpha", db.As(db.Login{Role: "postgres_alpha", Password: "wrong"}))
	requireSQLState(t, err, "28P01") // invalid_password

	// A new password replaces the old one.
	_, err = db.Bootstrap(ctx, dsn, []string{"alpha"}, map[string]string{"alpha": "rotated"})
	require.NoError(t, err)
	_, err = db.Open(ctx, dsn, "alpha", db.As(logins["alpha"]))
	requireSQLState(t, err, "28P01")
	pool, err = db.Open(ctx, dsn, "alpha", db.As(db.Login{Role: "postgres_alpha", Password: "rotated"}))
	require.NoError(t, err)
	pool.Close()

	_, err = db.Bootstrap(ctx, dsn, []string{"alpha"}, map[string]string{"alpha": "with space"})
	require.ErrorContains(t, err, "printable ASCII")
}

func TestRoleName(t *testing.T) {
	t.Parallel()
	require.Equal(t, "vigil_monitor", db.RoleName("vigil", "monitor"))
	long1, long2 := strings.Repeat("a", 60)+"1", strings.Repeat("a", 60)+"2"
	r1, r2 := db.RoleName(long1, "analysis"), db.RoleName(long2, "analysis")
	require.LessOrEqual(t, len(r1), 63)
	require.True(t, strings.HasSuffix(r1, "_analysis"), r1)
	require.NotEqual(t, r1, r2, "databases with a common prefix get their own roles")
}

func TestStatementTimeout(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := testkit.Postgres(t)

	var setting string
	require.NoError(t, open(t, dsn, "alpha").QueryRow(ctx, "SHOW statement_timeout").Scan(&setting))
	require.Equal(t, "30s", setting, "the default")

	pool, err := db.Open(ctx, dsn, "alpha", db.StatementTimeout(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	// Every connection of the pool, not only the first.
	conns := make([]*pgxpool.Conn, 3)
	for i := range conns {
		conns[i], err = pool.Acquire(ctx)
		require.NoError(t, err)
	}
	for _, c := range conns {
		_, err := c.Exec(ctx, "SELECT pg_sleep(2)")
		requireSQLState(t, err, "57014") // query_canceled
		require.ErrorContains(t, err, "statement timeout")
		c.Release()
	}

	// Migrations are not bound by it.
	require.NoError(t, db.Migrate(ctx, pool, "alpha", fstest.MapFS{
		"00001_slow.sql": migration("SELECT pg_sleep(0.3); CREATE TABLE items (id int);"),
	}))
	var n int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n))

	_, err = db.Open(ctx, dsn, "alpha", db.StatementTimeout(-time.Second))
	require.ErrorContains(t, err, "must not be negative")
}

func openAs(t *testing.T, dsn, schema string, l db.Login) *pgxpool.Pool {
	t.Helper()
	pool, err := db.Open(t.Context(), dsn, schema, db.As(l))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}
