package testkit_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func TestPostgresGivesEachCallItsOwnDatabase(t *testing.T) {
	t.Parallel()
	first := connect(t, testkit.Postgres(t))
	second := connect(t, testkit.Postgres(t))

	_, err := first.Exec(t.Context(), "CREATE TABLE only_here (id int)")
	require.NoError(t, err)
	var tables int
	require.NoError(t, second.QueryRow(t.Context(),
		"SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'").Scan(&tables))
	require.Zero(t, tables)
	require.NotEqual(t, currentDatabase(t, first), currentDatabase(t, second))
	require.True(t, strings.HasPrefix(currentDatabase(t, first), "test_testpostgresgiveseachcall"),
		"the name says which test it belongs to: %s", currentDatabase(t, first))
}

func TestPostgresDropsDatabaseWhenTestEnds(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("user", func(t *testing.T) {
		conn := connect(t, testkit.Postgres(t))
		name = currentDatabase(t, conn)
		// Left open on purpose: the drop must not wait for it.
		_, err := pgx.Connect(t.Context(), testkit.Postgres(t))
		require.NoError(t, err)
	})

	observer := connect(t, testkit.Postgres(t))
	var exists bool
	require.NoError(t, observer.QueryRow(t.Context(),
		"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists))
	require.False(t, exists, "database %s outlived its test", name)
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func currentDatabase(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var name string
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&name))
	return name
}
