package incident_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/monitor/internal/incident"
	"github.com/vigil-ops/vigil/services/monitor/internal/monitortest"
	"github.com/vigil-ops/vigil/services/monitor/internal/postgres"
)

func TestMain(m *testing.M) { testkit.Main(m) }

type fixture struct {
	pool *pgxpool.Pool
	c    *incident.Correlator
	t0   time.Time
}

func newFixture(t *testing.T, window time.Duration) *fixture {
	t.Helper()
	pool, _ := monitortest.Pool(t)
	return &fixture{
		pool: pool,
		// Every batch announces its changes (no coalescing interval): these
		// tests apply one alert per transaction and look at each event.
		c:  incident.NewCorrelator(postgres.Store{}, incident.Options{DedupWindow: window, UpdateInterval: -1}, testkit.Logger(t)),
		t0: time.Now().Add(-time.Hour).UTC().Truncate(time.Second),
	}
}

func alert(instance, namespace string, startsAt time.Time) *typesv1.Alert {
	labels := map[string]string{"alertname": "HighLatency", "namespace": namespace, "instance": instance, "severity": "warning"}
	return &typesv1.Alert{Fingerprint: instance + "/" + namespace, Labels: labels, StartsAt: timestamppb.New(startsAt)}
}

func (f *fixture) fire(t *testing.T, a *typesv1.Alert) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, db.InTx(ctx, f.pool, func(tx pgx.Tx) error {
		return f.c.AlertFired(ctx, tx, &eventsv1.AlertFired{Meta: bus.NewMeta("test", nil), Alert: a})
	}))
}

func (f *fixture) resolve(t *testing.T, a *typesv1.Alert) {
	t.Helper()
	ctx := context.Background()
	r := proto.Clone(a).(*typesv1.Alert)
	r.Status = typesv1.AlertStatus_ALERT_STATUS_RESOLVED
	r.EndsAt = timestamppb.Now()
	require.NoError(t, db.InTx(ctx, f.pool, func(tx pgx.Tx) error {
		return f.c.AlertResolved(ctx, tx, &eventsv1.AlertResolved{Meta: bus.NewMeta("test", nil), Alert: r})
	}))
}

// events returns the subjects in the outbox, oldest first, with the reason
// of incident.updated ("incident.updated:alert_added").
func (f *fixture) events(t *testing.T) []string {
	t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT subject, data FROM outbox ORDER BY seq`)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var subject string
		var data []byte
		require.NoError(t, rows.Scan(&subject, &data))
		if subject == bus.SubjectIncidentUpdated {
			var e eventsv1.IncidentUpdated
			require.NoError(t, proto.Unmarshal(data, &e))
			subject += ":" + e.GetReason()
		}
		out = append(out, subject)
	}
	require.NoError(t, rows.Err())
	return out
}

func (f *fixture) incidents(t *testing.T) []*typesv1.Incident {
	t.Helper()
	incs, _, err := postgres.Store{}.List(context.Background(), f.pool, postgres.Filter{}, 100, "")
	require.NoError(t, err)
	return incs
}

func TestRepeatsOfOneAlertAreOneAlert(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 10*time.Minute)
	a := alert("a", "shop", f.t0)
	f.fire(t, a)
	f.fire(t, a)
	f.fire(t, a)
	incs := f.incidents(t)
	require.Len(t, incs, 1)
	assert.Equal(t, int32(1), incs[0].GetAlertCount())
	got, _, err := postgres.Store{}.Get(context.Background(), f.pool, incs[0].GetId(), 50)
	require.NoError(t, err)
	assert.Equal(t, int32(3), got.GetAlerts()[0].GetCount())
	assert.Equal(t, []string{bus.SubjectIncidentOpened}, f.events(t), "repeats announce nothing")
}

func TestGroupsByAlertnameAndNamespace(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 10*time.Minute)
	f.fire(t, alert("a", "shop", f.t0))
	f.fire(t, alert("b", "shop", f.t0))
	f.fire(t, alert("a", "billing", f.t0))
	incs := f.incidents(t)
	require.Len(t, incs, 2)
	counts := map[string]int32{}
	for _, i := range incs {
		counts[i.GetNamespace()] = i.GetAlertCount()
	}
	assert.Equal(t, map[string]int32{"shop": 2, "billing": 1}, counts)
	assert.Equal(t, []string{bus.SubjectIncidentOpened, "incident.updated:alert_added", bus.SubjectIncidentOpened}, f.events(t))
}

func TestIncidentResolvesWhenAllAlertsResolve(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 10*time.Minute)
	a, b := alert("a", "shop", f.t0), alert("b", "shop", f.t0)
	f.fire(t, a)
	f.fire(t, b)
	f.resolve(t, a)
	incs := f.incidents(t)
	require.Len(t, incs, 1)
	assert.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_OPEN, incs[0].GetStatus())
	assert.Equal(t, int32(1), incs[0].GetFiringCount())
	f.resolve(t, b)
	f.resolve(t, b) // a repeat of the resolution changes nothing
	incs = f.incidents(t)
	assert.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED, incs[0].GetStatus())
	assert.Equal(t, "source", incs[0].GetResolvedBy())
	assert.Equal(t, []string{
		bus.SubjectIncidentOpened, "incident.updated:alert_added", "incident.updated:alert_resolved", bus.SubjectIncidentResolved,
	}, f.events(t))
}

func TestRefireWithinDedupWindowReopens(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 10*time.Minute)
	a := alert("a", "shop", f.t0)
	f.fire(t, a)
	f.resolve(t, a)
	f.fire(t, alert("a", "shop", f.t0.Add(time.Minute))) // fires again, a new instance
	incs := f.incidents(t)
	require.Len(t, incs, 1, "flapping reopens the incident")
	assert.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_OPEN, incs[0].GetStatus())
	assert.Equal(t, []string{bus.SubjectIncidentOpened, bus.SubjectIncidentResolved, "incident.updated:reopened"}, f.events(t))
}

func TestRefireAfterDedupWindowOpensNewIncident(t *testing.T) {
	t.Parallel()
	f := newFixture(t, time.Nanosecond)
	a := alert("a", "shop", f.t0)
	f.fire(t, a)
	f.resolve(t, a)
	time.Sleep(time.Millisecond) // past the 1ns window
	f.fire(t, alert("a", "shop", f.t0.Add(time.Minute)))
	assert.Len(t, f.incidents(t), 2)
}

func TestFiredAfterItsOwnResolutionIsIgnored(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 10*time.Minute)
	a := alert("a", "shop", f.t0)
	f.resolve(t, a) // delivered first
	f.fire(t, a)    // the older event, late
	assert.Empty(t, f.incidents(t))
	assert.Empty(t, f.events(t))
}

func TestAcknowledgeAndResolveByHand(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 10*time.Minute)
	f.fire(t, alert("a", "shop", f.t0))
	id := f.incidents(t)[0].GetId()
	ctx := context.Background()
	var inc *typesv1.Incident
	require.NoError(t, db.InTx(ctx, f.pool, func(tx pgx.Tx) (err error) {
		inc, err = f.c.Acknowledge(ctx, tx, id, "alice")
		return err
	}))
	assert.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_ACKNOWLEDGED, inc.GetStatus())
	assert.Equal(t, "alice", inc.GetAcknowledgedBy())
	require.NoError(t, db.InTx(ctx, f.pool, func(tx pgx.Tx) (err error) {
		inc, err = f.c.Resolve(ctx, tx, id, "bob")
		return err
	}))
	assert.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED, inc.GetStatus())
	err := db.InTx(ctx, f.pool, func(tx pgx.Tx) error {
		_, err := f.c.Acknowledge(ctx, tx, id, "carol")
		return err
	})
	require.ErrorIs(t, err, incident.ErrResolved)
	err = db.InTx(ctx, f.pool, func(tx pgx.Tx) error {
		_, err := f.c.Acknowledge(ctx, tx, "01a20236-f568-7af1-9546-d3f52f62c45a", "carol")
		return err
	})
	require.ErrorIs(t, err, incident.ErrNotFound)
	assert.Equal(t, []string{bus.SubjectIncidentOpened, "incident.updated:acknowledged", bus.SubjectIncidentResolved}, f.events(t))
}

// Alertmanager sends times with nanoseconds; Postgres keeps microseconds.
// A late firing of an instance that resolved is still recognised, and a
// firing and its resolution compare equal, stored or not.
func TestNanosecondStartsMatchTheirResolution(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 10*time.Minute)
	a := alert("a", "shop", f.t0.Add(123456789*time.Nanosecond))
	f.fire(t, proto.Clone(a).(*typesv1.Alert))
	f.resolve(t, a)
	incs := f.incidents(t)
	require.Len(t, incs, 1)
	assert.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED, incs[0].GetStatus(), "the resolution matched the firing")
	f.fire(t, proto.Clone(a).(*typesv1.Alert)) // the same instance, delivered late
	assert.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED, f.incidents(t)[0].GetStatus(), "a late firing of a resolved instance reopens nothing")
}
