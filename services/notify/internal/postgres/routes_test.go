package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ops/vigil/pkg/db"
	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
)

// migrated is a database with notify's schema.
func migrated(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pool, err := db.Open(ctx, testkit.Postgres(t), "notify")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, db.Migrate(ctx, pool, "notify", db.Sub(postgres.Migrations, "migrations")))
	return pool
}

func doc(receiver string) *notifyv1.RoutingConfig {
	return &notifyv1.RoutingConfig{Route: &notifyv1.Route{Receivers: []string{receiver}, Routes: []*notifyv1.Route{
		{Teams: []string{"a"}, Matchers: []string{`alertname=~"Kube.*"`}, RepeatInterval: "4h"},
	}}}
}

// Applies are versioned: each from the version in force, a stale one
// refused with nothing changed, and only the last versions kept.
func TestRoutesApply(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	routes := postgres.NewRoutes(migrated(t))

	v, err := routes.Version(ctx)
	require.NoError(t, err)
	require.Zero(t, v)
	h, err := routes.History(ctx, 5)
	require.NoError(t, err)
	require.Empty(t, h)

	for i, r := range []string{"one", "two", "three", "four"} {
		got, err := routes.Apply(ctx, doc(r), int64(i), "user:alice", 3)
		require.NoError(t, err)
		require.Equal(t, int64(i+1), got.Version)
		require.False(t, got.AppliedAt.IsZero())
	}
	_, err = routes.Apply(ctx, doc("stale"), 2, "user:bob", 3)
	require.ErrorIs(t, err, postgres.ErrStaleVersion)

	h, err = routes.History(ctx, 10)
	require.NoError(t, err)
	require.Len(t, h, 3, "only the last 3 versions are kept")
	require.Equal(t, []int64{4, 3, 2}, []int64{h[0].Version, h[1].Version, h[2].Version})
	require.True(t, proto.Equal(doc("four"), h[0].Config), "the stale apply changed nothing")
	require.Equal(t, "user:alice", h[0].AppliedBy)
	v, err = routes.Version(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(4), v)
}

// Two applies from the same version at once: one wins, the other is
// stale.
func TestRoutesApplyRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	routes := postgres.NewRoutes(migrated(t))
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { _, errs[i] = routes.Apply(ctx, doc("x"), 0, "user:alice", 10) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
			continue
		}
		require.ErrorIs(t, err, postgres.ErrStaleVersion)
	}
	require.Equal(t, 1, won)
	h, err := routes.History(ctx, 10)
	require.NoError(t, err)
	require.Len(t, h, 1)
}

// An incident is tracked as its events show it; an incident resolved,
// acknowledged or too old is not firing.
func TestIncidents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := migrated(t)
	incs := postgres.NewIncidents(pool)

	opened := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	a := postgres.Incident{
		ID: "a", Title: "crash", Team: "payments", App: "shop", Namespace: "prod", Priority: "P1", Severity: "critical",
		Labels: map[string]string{"alertname": "KubePodCrashLooping"}, OpenedAt: opened, Firing: 1, Alerts: 1,
	}
	require.NoError(t, incs.Track(ctx, a))
	require.NoError(t, incs.Track(ctx, postgres.Incident{ID: "old", OpenedAt: time.Now().Add(-48 * time.Hour)}))
	require.NoError(t, incs.Track(ctx, postgres.Incident{ID: "acked", OpenedAt: opened, Acknowledged: true}))
	_, ok, err := incs.Get(ctx, "nope")
	require.NoError(t, err)
	require.False(t, ok)

	a.Firing, a.Alerts = 3, 4
	require.NoError(t, incs.Track(ctx, a))
	got, ok, err := incs.Get(ctx, "a")
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, got.OpenedAt.Equal(opened))
	got.OpenedAt = a.OpenedAt
	require.Equal(t, a, got)

	firing, err := incs.Firing(ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Len(t, firing, 1)
	require.Equal(t, "a", firing[0].ID)

	a.Resolved = true
	require.NoError(t, incs.Track(ctx, a))
	a.Resolved = false // an update delivered late
	require.NoError(t, incs.Track(ctx, a))
	firing, err = incs.Firing(ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Empty(t, firing)

	_, err = pool.Exec(ctx, `UPDATE routed_incidents SET updated_at = now() - interval '40 days' WHERE incident_id = 'a'`)
	require.NoError(t, err)
	n, err := incs.Prune(ctx, time.Now().Add(-30*24*time.Hour))
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
}
