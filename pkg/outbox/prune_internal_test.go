package outbox

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// A backlog larger than a batch is pruned whole, batch by batch; recent
// rows stay.
func TestPruneClearsABacklogInBatches(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool, err := db.Open(ctx, testkit.Postgres(t), "monitor")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, Migrate(ctx, pool, "monitor"))
	_, err = pool.Exec(ctx, `INSERT INTO processed_events (consumer, event_id, subject, processed_at)
		SELECT 'c', 'old-' || i, 'alert.fired', now() - interval '2 hours' FROM generate_series(1, $1::int) i`, 2*pruneBatch+3)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO processed_events (consumer, event_id, subject)
		SELECT 'c', 'new-' || i, 'alert.fired' FROM generate_series(1, 5) i`)
	require.NoError(t, err)

	n, err := NewRelay(pool, nil, RelayOptions{Schema: "monitor", Retention: time.Hour}, testkit.Logger(t)).prune(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2*pruneBatch+3, n)
	var left []string
	rows, err := pool.Query(ctx, "SELECT event_id FROM processed_events ORDER BY event_id")
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		left = append(left, id)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"new-1", "new-2", "new-3", "new-4", "new-5"}, left)
}
