package notify_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/pgcluster"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/notify"
)

// ownPostgres starts a Postgres cluster of the test's own, to kill and
// start again; its options start it again on the same data (and socket).
func ownPostgres(t *testing.T) (*pgcluster.Cluster, pgcluster.Options) {
	t.Helper()
	// Not t.TempDir: when the tests run as root the server runs as
	// another user, who must be able to enter it.
	dir, err := os.MkdirTemp("", "notify-pg-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	opts := pgcluster.Options{
		DataDir: filepath.Join(dir, "data"),
		// fsync off survives a killed server (the kernel keeps what it
		// wrote); asynchronous commits would not: a commit acknowledged
		// before its WAL left the server is lost with it.
		Settings: map[string]string{"fsync": "off"},
	}
	c := startPostgres(t, opts)
	return c, opts
}

func startPostgres(t *testing.T, opts pgcluster.Options) *pgcluster.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgcluster.Start(ctx, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.Stop(ctx) // a cluster killed by the test has stopped already
	})
	return c
}

// Postgres killed (-9) between the providers' answers and notify's
// records, and started again seconds later, long after the claims'
// leases ran out: the notify that sent them kept the answers and records
// them once Postgres is back -- one message per channel, each recorded
// sent with its id, nothing in doubt.
func TestPostgresKilledAfterSend(t *testing.T) {
	t.Parallel()
	pg, pgOpts := ownPostgres(t)
	pool, err := db.Open(context.Background(), pg.DSN("postgres"), notify.Schema)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	e := newEnv(t, chatID, channel)
	e.pool = pool
	e.opts.Lease = 500 * time.Millisecond
	kill := &cutAfter{
		waiting: map[string]bool{hostOf(e.tg.URL()): true, hostOf(e.sl.URL()): true}, all: make(chan struct{}),
		kill: func() {
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // no shutdown: SIGKILL at once
			_ = pg.Stop(ctx)
		},
	}
	e.runWith(t, notify.Deps{Pool: pool, JetStream: e.js, Logger: testkit.Logger(t), HTTPClient: &http.Client{Transport: kill}})
	inc := opened()
	e.publish(t, inc)
	<-kill.all
	// Down for seconds, a dozen leases: no sender keeps an answer
	// that long unless it waits for the database for as long as it runs.
	time.Sleep(6 * time.Second)
	startPostgres(t, pgOpts)

	id := inc.GetMeta().GetId()
	e.recordedOnce(t, id)
}
