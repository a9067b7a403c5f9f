package db_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// TestUnavailable classifies errors pgx really returns: those about the
// work are not Unavailable, those of a server that is gone, shutting
// down or out of connections are -- wrapped as callers wrap them, too.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pg := testkit.OwnPostgres(t)
	dsn := pg.DSN("postgres")
	conn := func() *pgx.Conn {
		c, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		return c
	}
	admin := conn()
	_, err := admin.Exec(ctx, `CREATE TABLE items (id int PRIMARY KEY);
		INSERT INTO items VALUES (1);
		CREATE ROLE crowded LOGIN CONNECTION LIMIT 0`)
	require.NoError(t, err)

	errs := map[string]error{}
	_, errs["unique violation"] = admin.Exec(ctx, `INSERT INTO items VALUES (1)`)
	_, errs["syntax error"] = admin.Exec(ctx, `SELEC 1`)
	tx, err := admin.Begin(ctx)
	require.NoError(t, err)
	_, errs["statement timeout"] = tx.Exec(ctx, `SET LOCAL statement_timeout = 10; SELECT pg_sleep(1)`)
	require.NoError(t, tx.Rollback(ctx))
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, errs["cancelled context"] = admin.Exec(cancelled, `SELECT 1`)

	_, errs["too many connections for the role"] = pgx.Connect(ctx, dsn+" user=crowded")

	victim := conn()
	_, err = admin.Exec(ctx, `SELECT pg_terminate_backend($1)`, victim.PgConn().PID())
	require.NoError(t, err)
	_, errs["terminated by an administrator"] = victim.Exec(ctx, `SELECT 1`)
	_, errs["on a connection already closed"] = victim.Exec(ctx, `SELECT 1`)

	open, err := db.Open(ctx, dsn, "public")
	require.NoError(t, err)
	defer open.Close()
	inFlight := make(chan error, 1)
	go func() {
		_, err := open.Exec(ctx, `SELECT pg_sleep(30)`)
		inFlight <- err
	}()
	require.Eventually(t, func() bool {
		var n int
		return admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'`).Scan(&n) == nil && n == 1
	}, 10*time.Second, 20*time.Millisecond)
	pg.Stop()
	errs["server shut down under a query"] = <-inFlight
	_, errs["connecting to a server that is down"] = pgx.Connect(ctx, dsn)
	errs["a pool's query while the server is down"] = db.InTx(ctx, open, func(pgx.Tx) error { return nil })

	for _, tc := range []struct {
		name        string
		unavailable bool
	}{
		{"unique violation", false},
		{"syntax error", false},
		{"statement timeout", false},
		{"cancelled context", false},
		{"too many connections for the role", true},
		{"terminated by an administrator", true},
		{"on a connection already closed", true},
		{"server shut down under a query", true},
		{"connecting to a server that is down", true},
		{"a pool's query while the server is down", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := errs[tc.name]
			require.Error(t, err)
			require.Equal(t, tc.unavailable, db.Unavailable(err), "%T: %v", err, err)
			wrapped := fmt.Errorf("apply chunk: %w", err)
			require.Equal(t, tc.unavailable, db.Unavailable(wrapped), "wrapped: %v", wrapped)
		})
	}
	require.False(t, db.Unavailable(nil))
	require.False(t, db.Unavailable(errors.New("dial tcp: connection refused")), "an error not from pgx is not classified by its text")
}

// A server that accepts the connection and never answers (cut off, not
// down) fails the call within the connect timeout, as unavailable,
// instead of holding it for ever.
func TestConnectingToAServerThatNeverAnswersTimesOut(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	addr := l.Addr().(*net.TCPAddr)
	done := make(chan error, 1)
	go func() {
		_, err := db.Open(context.Background(), fmt.Sprintf("host=127.0.0.1 port=%d user=vigil dbname=vigil sslmode=disable", addr.Port), "public")
		done <- err
	}()
	select {
	case err := <-done:
		require.Error(t, err)
		require.True(t, db.Unavailable(err), "%v", err)
	case <-time.After(time.Minute):
		t.Fatal("still connecting after a minute: no connect timeout")
	}
}
