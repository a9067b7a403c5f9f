package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/appteam"
	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/repair/internal/lifecycle"
	"github.com/vigil-ops/vigil/services/repair/internal/postgres"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func open(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx := t.Context()
	pool, err := db.Open(ctx, testkit.Postgres(t), "repair")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, outbox.Migrate(ctx, pool, "repair"))
	require.NoError(t, db.Migrate(ctx, pool, "repair", db.Sub(postgres.Migrations, "migrations")))
	require.NoError(t, appteam.Migrate(ctx, pool, "repair"))
	return pool
}

// proposed is a new repair of a restart of Deployment shop/api.
func proposed(now time.Time) *lifecycle.Repair {
	return lifecycle.Propose(&repairv1.Repair{
		Id: uuid.Must(uuid.NewV7()).String(), IncidentId: uuid.Must(uuid.NewV7()).String(), AnalysisId: uuid.Must(uuid.NewV7()).String(),
		Proposal: &typesv1.RepairProposal{
			Action: typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT,
			Target: &typesv1.ResourceRef{Cluster: "prod", Namespace: "shop", Kind: "Deployment", Name: "api"},
		},
		Confidence: 0.9, Engine: "rules",
	}, now)
}

// outboxed are the subjects of the events waiting in the outbox.
func outboxed(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT subject FROM outbox ORDER BY seq`)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}

func timeline(t *testing.T, s *postgres.Store, id string) []repairv1.StepKind {
	t.Helper()
	row, err := s.Get(t.Context(), nil, id, true)
	require.NoError(t, err)
	var out []repairv1.StepKind
	for _, st := range row.Repair.GetSteps() {
		out = append(out, st.GetKind())
	}
	return out
}

// What a transition records — the row, its steps, its events — is
// written in one transaction; when the update fails, or the transition is
// refused, nothing is.
func TestUpdateWritesTheRowStepsAndEventsTogether(t *testing.T) {
	t.Parallel()
	pool := open(t)
	ctx := t.Context()
	store := postgres.New(pool)
	repairs := store.Repairs(pool)
	now := time.Now().Truncate(time.Microsecond)

	r := proposed(now)
	created, err := repairs.Add(ctx, r)
	require.NoError(t, err)
	require.True(t, created)
	again := lifecycle.Propose(r.Proto(), now)
	created, err = repairs.Add(ctx, again)
	require.NoError(t, err)
	require.False(t, created, "one repair per analysis")
	require.Equal(t, []repairv1.StepKind{repairv1.StepKind_STEP_KIND_PROPOSED}, timeline(t, store, r.ID()))

	require.NoError(t, repairs.Update(ctx, r.ID(), func(r *lifecycle.Repair) error {
		return r.Decide(lifecycle.Decision{
			Decision: repairv1.Decision_DECISION_NEEDS_APPROVAL, Reasons: []string{"risk MEDIUM"}, ApprovalTTL: time.Hour,
		}, now)
	}))
	got, err := repairs.Get(ctx, r.ID())
	require.NoError(t, err)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL, got.Status())
	require.Equal(t, "risk MEDIUM", got.Proto().GetDecisionReason())
	require.Equal(t, []repairv1.StepKind{repairv1.StepKind_STEP_KIND_PROPOSED, repairv1.StepKind_STEP_KIND_DECIDED}, timeline(t, store, r.ID()))
	require.Equal(t, []string{bus.SubjectRepairApprovalRequested}, outboxed(t, pool))
	expiring, err := store.Expired(ctx, now.Add(2*time.Hour), 10)
	require.NoError(t, err)
	require.Equal(t, []string{r.ID()}, expiring, "the deadline column is written with the row")

	errLater := errors.New("the guardrails could not be read")
	err = repairs.Update(ctx, r.ID(), func(r *lifecycle.Repair) error {
		if err := r.Answer(lifecycle.Answer{Approve: true, By: "user:olga", Via: "api", At: now}, func() (string, error) { return "", nil }); err != nil {
			return err
		}
		return errLater
	})
	require.ErrorIs(t, err, errLater)
	err = repairs.Update(ctx, r.ID(), func(r *lifecycle.Repair) error { return r.Start(false, now) })
	var illegal *lifecycle.TransitionError
	require.ErrorAs(t, err, &illegal, "a pending repair does not start")

	got, err = repairs.Get(ctx, r.ID())
	require.NoError(t, err)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL, got.Status(), "nothing changed")
	require.Empty(t, got.Proto().GetDecidedBy())
	require.Equal(t, []repairv1.StepKind{repairv1.StepKind_STEP_KIND_PROPOSED, repairv1.StepKind_STEP_KIND_DECIDED}, timeline(t, store, r.ID()))
	require.Equal(t, []string{bus.SubjectRepairApprovalRequested}, outboxed(t, pool), "no event")
}

// A repair being decided comes with the counts its decision is checked
// against: the automatic repairs of the hour, on its resource too, and
// the resource's cooldown.
func TestUpdateCountsForADecision(t *testing.T) {
	t.Parallel()
	pool := open(t)
	ctx := t.Context()
	repairs := postgres.New(pool).Repairs(pool)
	now := time.Now().Truncate(time.Microsecond)

	done := proposed(now)
	_, err := repairs.Add(ctx, done)
	require.NoError(t, err)
	require.NoError(t, repairs.Update(ctx, done.ID(), func(r *lifecycle.Repair) error {
		require.Equal(t, lifecycle.Counts{}, r.Recent())
		return r.Decide(lifecycle.Decision{Decision: repairv1.Decision_DECISION_AUTO}, now)
	}))
	require.NoError(t, repairs.Update(ctx, done.ID(), func(r *lifecycle.Repair) error {
		if err := r.Start(false, now); err != nil {
			return err
		}
		return r.Fail("refused", false, time.Hour, now)
	}))

	next := proposed(now)
	_, err = repairs.Add(ctx, next)
	require.NoError(t, err)
	var recent lifecycle.Counts
	require.NoError(t, repairs.Update(ctx, next.ID(), func(r *lifecycle.Repair) error {
		recent = r.Recent()
		return nil
	}))
	require.Equal(t, 1, recent.Overall)
	require.Equal(t, 1, recent.OnResource)
	require.True(t, recent.CooldownUntil.Equal(now.Add(time.Hour)), "%v", recent.CooldownUntil)
}

// In a transaction of its caller (an inbox handler's), an update is a
// savepoint: it commits or rolls back with the caller's.
func TestUpdateInTheCallersTransaction(t *testing.T) {
	t.Parallel()
	pool := open(t)
	ctx := context.Background()
	store := postgres.New(pool)
	now := time.Now().Truncate(time.Microsecond)
	r := proposed(now)
	_, err := store.Repairs(pool).Add(ctx, r)
	require.NoError(t, err)

	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, store.Repairs(tx).Update(ctx, r.ID(), func(r *lifecycle.Repair) error {
		return r.Decide(lifecycle.Decision{Decision: repairv1.Decision_DECISION_BLOCKED, Reasons: []string{"denied"}}, now)
	}))
	require.NoError(t, tx.Rollback(ctx))

	got, err := store.Repairs(pool).Get(ctx, r.ID())
	require.NoError(t, err)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_UNSPECIFIED, got.Status(), "rolled back with the caller")
	require.Empty(t, outboxed(t, pool))
}

// A lease is renewed only by the worker that holds it: once it ran out
// and another worker leased the repair, or once the repair was released,
// the first worker's renewal changes nothing.
func TestRenewOnlyWhileHeld(t *testing.T) {
	t.Parallel()
	pool := open(t)
	ctx := t.Context()
	store := postgres.New(pool)
	repairs := store.Repairs(pool)
	now := time.Now()
	r := proposed(now)
	_, err := repairs.Add(ctx, r)
	require.NoError(t, err)
	lease := func(at time.Duration) (int, bool) {
		t.Helper()
		got, ok, err := store.Lease(ctx, now.Add(at), 10*time.Second)
		require.NoError(t, err)
		if !ok {
			return 0, false
		}
		require.Equal(t, r.ID(), got.ID())
		return got.Attempts(), true
	}

	first, ok := lease(0)
	require.True(t, ok)
	held, err := store.Renew(ctx, r.ID(), first, now.Add(20*time.Second))
	require.NoError(t, err)
	require.True(t, held)
	_, ok = lease(15 * time.Second)
	require.False(t, ok, "renewed: still the first worker's")

	second, ok := lease(21 * time.Second)
	require.True(t, ok, "the renewal ran out")
	held, err = store.Renew(ctx, r.ID(), first, now.Add(time.Hour))
	require.NoError(t, err)
	require.False(t, held, "the first worker lost it")
	require.NoError(t, store.Hold(ctx, r.ID(), first, now.Add(time.Hour)))
	_, ok = lease(30 * time.Second)
	require.False(t, ok, "the second worker's, until 31 s")
	third, ok := lease(32 * time.Second)
	require.True(t, ok, "the first worker extended nothing")
	require.Equal(t, second+1, third)

	require.NoError(t, repairs.Update(ctx, r.ID(), func(r *lifecycle.Repair) error {
		return r.Decide(lifecycle.Decision{Decision: repairv1.Decision_DECISION_AUTO}, now)
	}))
	held, err = store.Renew(ctx, r.ID(), third, now.Add(time.Hour))
	require.NoError(t, err)
	require.False(t, held, "released by its decision")
	_, ok = lease(33 * time.Second)
	require.True(t, ok, "free for any worker at once")
}

// failures is the failures column of repair id.
func failures(t *testing.T, pool *pgxpool.Pool, id string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT failures FROM repairs WHERE id = $1`, id).Scan(&n))
	return n
}

// Failed tries of a step are counted apart from leases: leasing (every
// poll of a verification leases again) counts none; only the worker
// holding the lease records one; a try that went well (Hold) or the
// next step ends the run; a repair that ended keeps its count.
func TestFailuresCountedApartFromLeases(t *testing.T) {
	t.Parallel()
	f := newLeasing(t)
	ctx, store, repairs, r, now, pool := t.Context(), f.store, f.repairs, f.r, f.now, f.pool
	lease := func() int { return f.lease(t).Attempts() }
	failed := func(attempt int) (int, bool) {
		t.Helper()
		n, held, err := store.Failed(ctx, r.ID(), attempt)
		require.NoError(t, err)
		return n, held
	}

	for range 10 {
		lease()
	}
	require.Equal(t, 0, failures(t, pool, r.ID()), "ten leases, no failure")
	first := lease()
	n, held := failed(first)
	require.True(t, held)
	require.Equal(t, 1, n)
	second := lease()
	n, held = failed(first)
	require.False(t, held, "the first worker's lease ran out and the second worker holds it")
	require.Zero(t, n)
	require.Equal(t, 1, failures(t, pool, r.ID()), "the refused record changed nothing")
	n, held = failed(second)
	require.True(t, held)
	require.Equal(t, 2, n, "in a row, across leases")

	// A try that went well (a verification not done yet) ends the run.
	require.NoError(t, store.Hold(ctx, r.ID(), second, now.Add(f.at+time.Second)))
	require.Equal(t, 0, failures(t, pool, r.ID()))
	n, _ = failed(lease())
	require.Equal(t, 1, n)

	// The next step starts its own count, in the transaction that ends
	// this one.
	require.NoError(t, repairs.Update(ctx, r.ID(), func(r *lifecycle.Repair) error {
		return r.Decide(lifecycle.Decision{Decision: repairv1.Decision_DECISION_AUTO}, now)
	}))
	require.Equal(t, 0, failures(t, pool, r.ID()), "queued: the execution's count starts at zero")
	n, held = failed(lease())
	require.True(t, held)
	require.Equal(t, 1, n)
	_, held = failed(second)
	require.False(t, held, "an old worker records nothing for the new step")

	// Released by its step, the repair records no failure of the worker
	// that released it; one that ended keeps the count it ended with.
	last := lease()
	n, _ = failed(last)
	require.Equal(t, 2, n)
	require.NoError(t, repairs.Update(ctx, r.ID(), func(r *lifecycle.Repair) error {
		if err := r.Start(false, now); err != nil {
			return err
		}
		return r.Fail("gave up", false, time.Hour, now)
	}))
	_, held = failed(last)
	require.False(t, held, "released")
	require.Equal(t, 2, failures(t, pool, r.ID()), "a failed repair keeps its count")
}

// Tries count the leases of a repair's step since it last went well: a
// try that went well (a poll) or the next step starts them again.
func TestTriesCountLeasesOfAStep(t *testing.T) {
	t.Parallel()
	f := newLeasing(t)
	ctx, store, repairs, r, now := t.Context(), f.store, f.repairs, f.r, f.now
	lease := func() *lifecycle.Repair { return f.lease(t) }

	lease()
	lease()
	third := lease()
	require.Equal(t, 3, third.Tries(), "three leases, none gone well")
	require.NoError(t, store.Hold(ctx, r.ID(), third.Attempts(), f.now.Add(f.at+time.Second)))
	require.Equal(t, 1, lease().Tries(), "a try that went well ends them")
	lease()
	require.NoError(t, repairs.Update(ctx, r.ID(), func(r *lifecycle.Repair) error {
		return r.Decide(lifecycle.Decision{Decision: repairv1.Decision_DECISION_AUTO}, now)
	}))
	next := lease()
	require.Equal(t, 1, next.Tries(), "the next step starts its own")
	require.Greater(t, next.Attempts(), 5, "the lease token goes on")
}

// leasing is one proposed repair, leased again and again.
type leasing struct {
	pool    *pgxpool.Pool
	store   *postgres.Store
	repairs *postgres.Repairs
	r       *lifecycle.Repair
	now     time.Time
	at      time.Duration // since now, of the last lease
}

func newLeasing(t *testing.T) *leasing {
	t.Helper()
	pool := open(t)
	store := postgres.New(pool)
	f := &leasing{pool: pool, store: store, repairs: store.Repairs(pool), now: time.Now()}
	f.r = proposed(f.now)
	_, err := f.repairs.Add(t.Context(), f.r)
	require.NoError(t, err)
	return f
}

// lease takes the repair once its last lease (10 s) ran out.
func (f *leasing) lease(t *testing.T) *lifecycle.Repair {
	t.Helper()
	f.at += 11 * time.Second
	got, ok, err := f.store.Lease(t.Context(), f.now.Add(f.at), 10*time.Second)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, f.r.ID(), got.ID())
	return got
}
