package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// Prune deletes every delivery older than its bound, over as many bounded
// statements as it takes, with their attempts, and nothing newer.
func TestPruneDeletesInChunks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, pool := queue(t)

	// More old rows than one statement deletes.
	_, err := pool.Exec(ctx, `INSERT INTO deliveries (event_id, channel, subject, target, status, updated_at)
		SELECT 'old-' || i, 'telegram', 'incident.opened', 'chat', 'sent', now() - interval '40 days'
		FROM generate_series(1, 2500) i`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO delivery_attempts (event_id, channel, attempt, outcome)
		SELECT event_id, channel, 1, 'sent' FROM deliveries`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO deliveries (event_id, channel, subject, target, status) VALUES ('new', 'telegram', 'incident.opened', 'chat', 'sent')`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO delivery_attempts (event_id, channel, attempt, outcome) VALUES ('new', 'telegram', 1, 'sent')`)
	require.NoError(t, err)

	n, err := d.Prune(ctx, time.Now().Add(-30*24*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, int64(2500), n)
	var deliveries, attempts int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM deliveries`).Scan(&deliveries))
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM delivery_attempts`).Scan(&attempts))
	assert.Equal(t, 1, deliveries)
	assert.Equal(t, 1, attempts)
	var kept string
	require.NoError(t, pool.QueryRow(ctx, `SELECT event_id FROM deliveries`).Scan(&kept))
	assert.Equal(t, "new", kept)
}
