package lease_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/gateway/internal/lease"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// holder is one replica's lease and what its work saw.
type holder struct {
	running atomic.Bool
	stop    context.CancelFunc
	done    chan struct{}
}

func start(t *testing.T, dsn string, key int64, busy *atomic.Int32) *holder {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	h := &holder{done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	l := &lease.Lease{Pool: pool, Key: key, Retry: 20 * time.Millisecond, Check: 20 * time.Millisecond, Log: testkit.Logger(t)}
	go func() {
		defer close(h.done)
		_ = l.Run(ctx, func(ctx context.Context) error {
			// Right after a cut both may work until the one cut off
			// notices (Check): the count is checked when things settle.
			busy.Add(1)
			h.running.Store(true)
			<-ctx.Done()
			h.running.Store(false)
			busy.Add(-1)
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-h.done })
	return h
}

// TestOneHolderAtATime: of two replicas exactly one works; when it stops,
// or its connection is cut (the session, and so the lock, ends), the
// other takes over, and the one cut off stops working.
func TestOneHolderAtATime(t *testing.T) {
	t.Parallel()
	dsn := testkit.Postgres(t)
	key := lease.Key("test/" + t.Name())
	var busy atomic.Int32
	a, b := start(t, dsn, key, &busy), start(t, dsn, key, &busy)
	working := func() *holder {
		var w *holder
		require.Eventually(t, func() bool {
			switch {
			case a.running.Load():
				w = a
			case b.running.Load():
				w = b
			default:
				return false
			}
			return true
		}, 10*time.Second, 5*time.Millisecond)
		return w
	}
	first := working()
	time.Sleep(100 * time.Millisecond) // the other tries a few times meanwhile
	require.Equal(t, int32(1), busy.Load())

	// Cut the holder's connection from outside: it loses the lock.
	admin, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	var cut int
	require.NoError(t, admin.QueryRow(context.Background(), `
		SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&cut))
	require.Equal(t, 1, cut)
	require.Eventually(t, func() bool { return !first.running.Load() }, 5*time.Second, 5*time.Millisecond, "the one cut off works on")
	second := working()
	require.Equal(t, int32(1), busy.Load())

	// A clean stop gives the lock back at once.
	second.stop()
	<-second.done
	third := working()
	require.NotSame(t, second, third)
	require.Equal(t, int32(1), busy.Load())
}
