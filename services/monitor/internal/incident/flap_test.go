package incident_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/monitor/internal/incident"
	"github.com/vigil-ops/vigil/services/monitor/internal/monitortest"
	"github.com/vigil-ops/vigil/services/monitor/internal/postgres"
)

// flapFixture is a fixture whose correlator marks flapping after more
// than 2 cycles in 15 minutes, on a clock the test moves.
type flapFixture struct {
	*fixture
	mu  sync.Mutex
	now time.Time
	// started counts the firings made, so each has a start of its own.
	started int
}

const flapWindow = 15 * time.Minute

func newFlapFixture(t *testing.T) *flapFixture {
	t.Helper()
	f := &flapFixture{fixture: newFixture(t, time.Hour), now: time.Now().UTC().Truncate(time.Second)}
	f.c = incident.NewCorrelator(postgres.Store{}, incident.Options{
		DedupWindow: time.Hour, UpdateInterval: -1, Now: f.clock,
		Flapping: incident.Flapping{Threshold: 2, Window: flapWindow, Store: postgres.Store{}},
	}, testkit.Logger(t))
	return f
}

func (f *flapFixture) clock() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }

func (f *flapFixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// toggle fires alert a again (a new firing, started now) and, unless
// stay, resolves it; the clock moves a minute each time.
func (f *flapFixture) toggle(t *testing.T, instance string, stay bool) {
	t.Helper()
	f.started++
	a := alert(instance, "shop", f.clock().Add(time.Duration(f.started)*time.Millisecond))
	f.fire(t, a)
	f.advance(time.Minute)
	if !stay {
		f.resolve(t, a)
		f.advance(time.Minute)
	}
}

// flush runs the due work (pending updates, settled flapping) as
// monitor's ticker does, and returns how many incidents it changed.
func (f *flapFixture) flush(t *testing.T) int {
	t.Helper()
	ctx := context.Background()
	var n int
	require.NoError(t, db.InTx(ctx, f.pool, func(tx pgx.Tx) (err error) {
		n, err = f.c.FlushDue(ctx, tx, 100)
		return err
	}))
	return n
}

func (f *flapFixture) only(t *testing.T) *typesv1.Incident {
	t.Helper()
	incs := f.incidents(t)
	require.Len(t, incs, 1)
	return incs[0]
}

// churn is what an alert that fires and resolves twice announces today:
// the opening, and a resolution and a reopening per cycle.
var churn = []string{
	bus.SubjectIncidentOpened, bus.SubjectIncidentResolved,
	"incident.updated:reopened", bus.SubjectIncidentResolved,
}

// Up to the threshold an alert that fires and resolves resolves and
// reopens its incident as it always did.
func TestBelowTheThresholdNothingFlaps(t *testing.T) {
	t.Parallel()
	f := newFlapFixture(t)
	f.toggle(t, "a", false)
	f.toggle(t, "a", false)
	inc := f.only(t)
	assert.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED, inc.GetStatus())
	assert.False(t, inc.GetFlapping())
	assert.Equal(t, churn, f.events(t))

	// Cycles older than the window do not count: a third one, later, is
	// the first of a new window.
	f.advance(flapWindow)
	f.toggle(t, "a", false)
	assert.False(t, f.only(t).GetFlapping())
	assert.Len(t, f.events(t), len(churn)+2, "reopened and resolved again")
}

// The third cycle marks the incident flapping, announced once; from then
// on the alert's fires and resolutions change its counts and announce
// nothing, until it stays resolved for the window: then the incident
// resolves, once.
func TestFlappingAlertIsToldOnceAndSettlesResolved(t *testing.T) {
	t.Parallel()
	f := newFlapFixture(t)
	f.toggle(t, "a", false)
	f.toggle(t, "a", false)
	flappedAt := f.clock().Add(time.Minute)
	f.toggle(t, "a", false) // the third cycle
	inc := f.only(t)
	assert.True(t, inc.GetFlapping())
	assert.Equal(t, flappedAt, inc.GetFlappingSince().AsTime())
	assert.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_OPEN, inc.GetStatus(), "not resolved: it flaps")
	assert.Zero(t, inc.GetFiringCount())
	want := append(append([]string{}, churn...), "incident.updated:reopened", "incident.updated:flapping")
	require.Equal(t, want, f.events(t))

	for range 5 {
		f.toggle(t, "a", false)
	}
	inc = f.only(t)
	assert.True(t, inc.GetFlapping())
	assert.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_OPEN, inc.GetStatus())
	assert.Equal(t, want, f.events(t), "no reopening, resolution or update while it flaps")
	monitortest.RequireCountersMatch(t, f.pool)

	// Each change pushed the end back: a window after the flapping began
	// is not a window after the last change.
	f.advance(flapWindow - 2*time.Minute)
	assert.Zero(t, f.flush(t))
	assert.True(t, f.only(t).GetFlapping())
	f.advance(2 * time.Minute)
	assert.Equal(t, 1, f.flush(t))
	inc = f.only(t)
	assert.False(t, inc.GetFlapping())
	assert.Nil(t, inc.GetFlappingSince())
	assert.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED, inc.GetStatus())
	assert.Equal(t, "monitor", inc.GetResolvedBy())
	assert.Equal(t, append(want, bus.SubjectIncidentResolved), f.events(t))
	assert.Zero(t, f.flush(t), "settled once")
}

// A flapping alert that stays firing for the window leaves an ordinary
// open incident, told once; its next resolution resolves it as usual.
func TestFlappingAlertSettlesFiring(t *testing.T) {
	t.Parallel()
	f := newFlapFixture(t)
	for range 3 {
		f.toggle(t, "a", false)
	}
	f.toggle(t, "a", true) // fires and stays
	inc := f.only(t)
	assert.True(t, inc.GetFlapping())
	assert.Equal(t, int32(1), inc.GetFiringCount())
	before := len(f.events(t))

	f.advance(flapWindow)
	assert.Equal(t, 1, f.flush(t))
	inc = f.only(t)
	assert.False(t, inc.GetFlapping())
	assert.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_OPEN, inc.GetStatus())
	events := f.events(t)
	assert.Equal(t, []string{"incident.updated:flapping_stopped"}, events[before:])

	// Its cycles are older than the window now: it resolves.
	f.resolve(t, lastFiring(t, f))
	inc = f.only(t)
	assert.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED, inc.GetStatus())
	assert.Equal(t, bus.SubjectIncidentResolved, f.events(t)[len(f.events(t))-1])
}

// lastFiring is the alert as it fires in f's incident.
func lastFiring(t *testing.T, f *flapFixture) *typesv1.Alert {
	t.Helper()
	got, _, err := postgres.Store{}.Get(context.Background(), f.pool, f.only(t).GetId(), 1)
	require.NoError(t, err)
	require.Len(t, got.GetAlerts(), 1)
	return got.GetAlerts()[0].GetAlert()
}

// A resolution delivered again is one cycle, not two; and a person who
// resolves a flapping incident ends its flapping.
func TestRepeatedResolutionCountsOnceAndResolvingByHandEndsFlapping(t *testing.T) {
	t.Parallel()
	f := newFlapFixture(t)
	a := alert("a", "shop", f.clock())
	f.fire(t, a)
	for range 4 {
		f.resolve(t, a)
	}
	f.toggle(t, "a", false)
	assert.False(t, f.only(t).GetFlapping(), "two cycles")
	f.toggle(t, "a", false)
	id := f.only(t).GetId()
	require.True(t, f.only(t).GetFlapping(), "three cycles")

	ctx := context.Background()
	require.NoError(t, db.InTx(ctx, f.pool, func(tx pgx.Tx) error {
		_, err := f.c.Resolve(ctx, tx, id, "alice")
		return err
	}))
	inc := f.only(t)
	assert.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED, inc.GetStatus())
	assert.False(t, inc.GetFlapping())
	before := len(f.events(t))
	f.advance(flapWindow)
	assert.Zero(t, f.flush(t), "nothing left to settle")
	assert.Len(t, f.events(t), before)
}

// An alert whose earlier cycles were in an incident long resolved opens a
// new one; when the batch that opens it also holds one cycle too many, the
// new incident is announced as it opened, then as flapping.
func TestNewIncidentOfAFlappingAlert(t *testing.T) {
	t.Parallel()
	f := newFlapFixture(t)
	f.c = incident.NewCorrelator(postgres.Store{}, incident.Options{
		DedupWindow: time.Minute, UpdateInterval: -1, Now: f.clock,
		Flapping: incident.Flapping{Threshold: 2, Window: flapWindow, Store: postgres.Store{}},
	}, testkit.Logger(t))
	f.toggle(t, "a", false)
	f.toggle(t, "a", false)
	f.advance(2 * time.Minute) // past the dedup window
	a := alert("a", "shop", f.clock())
	resolved := proto.CloneOf(a)
	ctx := context.Background()
	require.NoError(t, db.InTx(ctx, f.pool, func(tx pgx.Tx) error {
		return f.c.Apply(ctx, tx, f.c.NewPlan([]*incident.Signal{
			{Alert: a, Cause: bus.NewMeta("test", nil)},
			{Alert: alert("b", "shop", f.clock()), Cause: bus.NewMeta("test", nil)},
			{Alert: resolved, Resolved: true, Cause: bus.NewMeta("test", nil)},
		}, nil).Signals)
	}))
	incs := f.incidents(t)
	require.Len(t, incs, 2)
	assert.True(t, incs[0].GetFlapping(), "the new incident flaps")
	assert.False(t, incs[1].GetFlapping())
	assert.Equal(t, []string{
		bus.SubjectIncidentOpened, bus.SubjectIncidentResolved, "incident.updated:reopened", bus.SubjectIncidentResolved,
		bus.SubjectIncidentOpened, "incident.updated:flapping",
	}, f.events(t))
}
