package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
)

// A card's request and decision may come in either order; each save
// returns the other half if it is there. Pruning deletes cards past
// retention.
func TestCards(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := db.Open(ctx, testkit.Postgres(t), "notify")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, db.Migrate(ctx, pool, "notify", db.Sub(postgres.Migrations, "migrations")))
	cards := postgres.NewCards(pool)

	req := &eventsv1.RepairApprovalRequested{RepairId: "r1", IncidentId: "i1", Summary: "crash <loop>", Reasons: []string{"risk"}}
	dec := &eventsv1.RepairDecided{RepairId: "r1", Outcome: "approved", DecidedBy: "user:alice"}
	gotDec, err := cards.SaveRequest(ctx, req)
	require.NoError(t, err)
	assert.Nil(t, gotDec)
	gotReq, err := cards.SaveDecision(ctx, dec)
	require.NoError(t, err)
	assert.True(t, proto.Equal(req, gotReq))

	// The other way round, and again (a redelivery).
	dec2 := &eventsv1.RepairDecided{RepairId: "r2", Outcome: "expired"}
	gotReq, err = cards.SaveDecision(ctx, dec2)
	require.NoError(t, err)
	assert.Nil(t, gotReq)
	for range 2 {
		gotDec, err = cards.SaveRequest(ctx, &eventsv1.RepairApprovalRequested{RepairId: "r2"})
		require.NoError(t, err)
		assert.True(t, proto.Equal(dec2, gotDec))
	}

	_, err = pool.Exec(ctx, `UPDATE approval_cards SET updated_at = now() - interval '40 days' WHERE repair_id = 'r1'`)
	require.NoError(t, err)
	n, err := cards.Prune(ctx, time.Now().Add(-30*24*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	gotDec, err = cards.SaveRequest(ctx, req)
	require.NoError(t, err)
	assert.Nil(t, gotDec, "r1's decision went with it")
}
