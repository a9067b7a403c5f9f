package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/bus"
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

// A request saved again when an older card is sent late (its message is
// drawn anew at send time) does not replace a newer one (the snooze): the
// decision is drawn on the newest request.
func TestCardsKeepTheNewestRequest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := db.Open(ctx, testkit.Postgres(t), "notify")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, db.Migrate(ctx, pool, "notify", db.Sub(postgres.Migrations, "migrations")))
	cards := postgres.NewCards(pool)

	at := time.Now()
	request := func(at time.Time, snoozedBy string) *eventsv1.RepairApprovalRequested {
		meta := bus.NewMeta("repair", nil)
		meta.OccurredAt = timestamppb.New(at)
		return &eventsv1.RepairApprovalRequested{Meta: meta, RepairId: "r1", SnoozedBy: snoozedBy}
	}
	first, snoozed := request(at, ""), request(at.Add(time.Minute), "user:alice")
	for _, r := range []*eventsv1.RepairApprovalRequested{first, snoozed, first} {
		_, err := cards.SaveRequest(ctx, r)
		require.NoError(t, err)
	}
	got, err := cards.SaveDecision(ctx, &eventsv1.RepairDecided{RepairId: "r1", Outcome: "approved"})
	require.NoError(t, err)
	assert.True(t, proto.Equal(snoozed, got), "the snoozed request stays")
}
