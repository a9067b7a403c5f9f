package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/db"
	analysisv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/analysis/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
	"github.com/vigil-ops/vigil/services/analysis/internal/postgres"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func newStore(t *testing.T) (*postgres.Store, *pgxpool.Pool) {
	t.Helper()
	ctx := t.Context()
	pool, err := db.Open(ctx, testkit.Postgres(t), "analysis")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, db.Migrate(ctx, pool, "analysis", db.Sub(postgres.Migrations, "migrations")))
	return postgres.New(pool), pool
}

// analysed stores an analysis of incident with signature, made at at.
func analysed(t *testing.T, s *postgres.Store, pool *pgxpool.Pool, incident, signature string, at time.Time) {
	t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	require.NoError(t, db.InTx(t.Context(), pool, func(tx pgx.Tx) error {
		if err := s.AddAnalysis(t.Context(), tx, &analysisv1.Analysis{Id: id, IncidentId: incident, Engine: "rules", CreateTime: timestamppb.New(at)}); err != nil {
			return err
		}
		return s.SetSignature(t.Context(), tx, id, signature)
	}))
}

func outcome(t *testing.T, s *postgres.Store, pool *pgxpool.Pool, incident string, action typesv1.RepairAction, succeeded bool, at time.Time) {
	t.Helper()
	require.NoError(t, db.InTx(t.Context(), pool, func(tx pgx.Tx) error {
		_, found, err := s.AddOutcome(t.Context(), tx, incident, action, succeeded, at)
		require.True(t, found)
		return err
	}))
}

// Similar is the latest other incidents of the same kind, newest first,
// each with its repair's latest outcome (by when it happened) when known:
// an incident analysed again after its repair keeps its outcome; one
// without is said to have none; other kinds and the incident itself are
// not in it.
func TestSimilar(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	const sig = "KubePodCrashLooping/Deployment"
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	inc := func() string { return uuid.Must(uuid.NewV7()).String() }
	a, b, d, other, current := inc(), inc(), inc(), inc(), inc()

	analysed(t, s, pool, a, sig, t0)
	outcome(t, s, pool, a, typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, false, t0.Add(10*time.Minute))
	analysed(t, s, pool, a, sig, t0.Add(3*time.Hour)) // analysed again, later
	analysed(t, s, pool, b, sig, t0.Add(time.Hour))
	// Outcomes out of order: the latest by when it happened stands.
	outcome(t, s, pool, b, typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, true, t0.Add(time.Hour+20*time.Minute))
	outcome(t, s, pool, b, typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, false, t0.Add(time.Hour+10*time.Minute))
	analysed(t, s, pool, d, sig, t0.Add(2*time.Hour))
	analysed(t, s, pool, other, "KubePodCrashLooping/StatefulSet", t0.Add(4*time.Hour))
	analysed(t, s, pool, current, sig, t0.Add(5*time.Hour))

	got, err := s.Similar(ctx, sig, current, 5)
	require.NoError(t, err)
	require.Equal(t, []evidence.Past{
		{IncidentID: a, Signature: sig, Action: typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, Succeeded: false, At: t0.Add(10 * time.Minute)},
		{IncidentID: d, Signature: sig, At: t0.Add(2 * time.Hour)},
		{IncidentID: b, Signature: sig, Action: typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, Succeeded: true, At: t0.Add(time.Hour + 20*time.Minute)},
	}, utc(got))

	got, err = s.Similar(ctx, sig, current, 2)
	require.NoError(t, err)
	require.Len(t, got, 2, "bounded")
	require.Equal(t, []string{a, d}, []string{got[0].IncidentID, got[1].IncidentID})

	got, err = s.Similar(ctx, "Nothing/-", current, 5)
	require.NoError(t, err)
	require.Empty(t, got)
}

func utc(ps []evidence.Past) []evidence.Past {
	for i := range ps {
		ps[i].At = ps[i].At.UTC()
	}
	return ps
}
