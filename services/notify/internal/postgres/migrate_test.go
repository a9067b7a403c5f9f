package postgres_test

import (
	"context"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
)

// Upgraded, a notify's parked replies become queued deliveries waiting
// for their parent, with their event; a parked reply that was being
// retried too is queued again; what was sent stays sent.
func TestParkedRepliesMoveIntoTheQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := db.Open(ctx, testkit.Postgres(t), "notify")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	all := db.Sub(postgres.Migrations, "migrations")
	before := fstest.MapFS{}
	entries, err := fs.ReadDir(all, ".")
	require.NoError(t, err)
	for _, e := range entries {
		if strings.Compare(e.Name(), "00006") < 0 {
			data, err := fs.ReadFile(all, e.Name())
			require.NoError(t, err)
			before[e.Name()] = &fstest.MapFile{Data: data}
		}
	}
	require.NoError(t, db.Migrate(ctx, pool, "notify", before))
	_, err = pool.Exec(ctx, `
		INSERT INTO deliveries (event_id, channel, subject, target, status, message_id, ref)
			VALUES ('opened', 'telegram', 'incident.opened', 'chat', 'sent', '42', 'incident/i1'),
				('retried', 'telegram', 'analysis.completed', 'chat', 'retrying', '', '');
		INSERT INTO parked_replies (event_id, channel, target, parent, subject, payload)
			VALUES ('parked', 'telegram', 'chat', 'incident/i2', 'analysis.completed', 'event-a'),
				('retried', 'telegram', 'chat', 'incident/i1', 'analysis.completed', 'event-b')`)
	require.NoError(t, err)

	require.NoError(t, db.Migrate(ctx, pool, "notify", all))
	rows, err := pool.Query(ctx, `SELECT event_id, status, parent, coalesce(convert_from(payload, 'UTF8'), '') FROM deliveries ORDER BY event_id`)
	require.NoError(t, err)
	var got [][4]string
	for rows.Next() {
		var r [4]string
		require.NoError(t, rows.Scan(&r[0], &r[1], &r[2], &r[3]))
		got = append(got, r)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, [][4]string{
		{"opened", "sent", "", ""},
		{"parked", "queued", "incident/i2", "event-a"},
		{"retried", "queued", "incident/i1", "event-b"},
	}, got)

	d := postgres.NewDeliveries(pool)
	c, err := d.Claim(ctx, "telegram", "a", lease, wait)
	require.NoError(t, err)
	require.NotNil(t, c, "the reply whose parent was sent is due")
	assert.Equal(t, "retried", c.EventID)
	assert.Equal(t, []byte("event-b"), c.Payload)
}
