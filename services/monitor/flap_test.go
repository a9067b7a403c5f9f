package monitor_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/monitor"
	"github.com/vigil-ops/vigil/services/monitor/internal/monitortest"
)

// flapReplica starts a monitor replica on clock that marks an alert
// flapping after more than 2 cycles in 15 minutes.
func (e *env) flapReplica(t *testing.T, clock *fakeClock) {
	t.Helper()
	e.serviceWith(t, clock, monitor.Options{FlapThreshold: 2, FlapWindow: 15 * time.Minute, DedupWindow: time.Hour})
}

// incidentEvents are the incident.* events on the bus once monitor's
// outbox is drained, in order: the subject, and an update's reason
// ("incident.updated:flapping").
func (e *env) incidentEvents(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, e.pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n))
		return n == 0
	}, 30*time.Second, 20*time.Millisecond, "outbox relayed")
	var out []string
	for _, ev := range monitortest.Incidents(t, e.js, "incident.>") {
		name, err := bus.SubjectOf(ev)
		require.NoError(t, err)
		if u, ok := ev.(*eventsv1.IncidentUpdated); ok {
			name += ":" + u.GetReason()
		}
		out = append(out, name)
	}
	return out
}

// flapState is the incident's as stored: its status, firing alerts and
// whether it flaps.
type flapState struct {
	status   string
	firing   int
	flapping bool
}

func (e *env) flapState(t *testing.T) flapState {
	t.Helper()
	var s flapState
	err := e.pool.QueryRow(context.Background(), `SELECT status, firing_count, flapping_since IS NOT NULL FROM incidents`).
		Scan(&s.status, &s.firing, &s.flapping)
	if err != nil {
		return flapState{}
	}
	return s
}

// An alert that fires and resolves three times, with two monitor replicas
// sharing the work: the third resolution marks its incident flapping, one
// incident.updated; five more cycles announce nothing, resolve and reopen
// nothing; once it stayed resolved for the window, the incident resolves:
// one incident.resolved.
func TestFlappingAlertThroughTheBus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clock := &fakeClock{}
	e.flapReplica(t, clock)
	e.flapReplica(t, clock)
	ctx := context.Background()
	alert := func(i int, resolved bool) bus.Event {
		a := &typesv1.Alert{
			Fingerprint: "flaky", Labels: map[string]string{"alertname": "Flaky", "namespace": "shop"},
			// Each firing is a new one: its own start.
			StartsAt: timestamppb.New(clock.Now().Truncate(time.Minute).Add(time.Duration(i) * time.Second)),
			Status:   typesv1.AlertStatus_ALERT_STATUS_FIRING, Source: typesv1.AlertSource_ALERT_SOURCE_ALERTMANAGER,
		}
		if resolved {
			a.Status = typesv1.AlertStatus_ALERT_STATUS_RESOLVED
			return &eventsv1.AlertResolved{Meta: bus.NewMeta("test", nil), Alert: a}
		}
		return &eventsv1.AlertFired{Meta: bus.NewMeta("test", nil), Alert: a}
	}
	// cycle fires and resolves the alert, each applied before the next
	// is sent (the replicas would take them in any order otherwise).
	cycle := func(i int, after flapState) {
		t.Helper()
		require.NoError(t, e.batcher.Publish(ctx, alert(i, false)))
		require.Eventually(t, func() bool { return e.flapState(t).firing == 1 }, 30*time.Second, 20*time.Millisecond, "cycle %d fired", i)
		require.NoError(t, e.batcher.Publish(ctx, alert(i, true)))
		require.Eventually(t, func() bool { return e.flapState(t) == after }, 30*time.Second, 20*time.Millisecond, "cycle %d resolved", i)
	}
	cycle(1, flapState{status: "resolved"})
	cycle(2, flapState{status: "resolved"})
	cycle(3, flapState{status: "open", flapping: true})
	flapped := []string{
		bus.SubjectIncidentOpened, bus.SubjectIncidentResolved, "incident.updated:reopened", bus.SubjectIncidentResolved,
		"incident.updated:reopened", "incident.updated:flapping",
	}
	require.Equal(t, flapped, e.incidentEvents(t))

	for i := 4; i <= 8; i++ {
		cycle(i, flapState{status: "open", flapping: true})
	}
	assert.Equal(t, flapped, e.incidentEvents(t), "nothing more while it flaps")
	monitortest.RequireCountersMatch(t, e.pool)

	clock.Advance(16 * time.Minute)
	require.Eventually(t, func() bool { return e.flapState(t) == flapState{status: "resolved"} }, 30*time.Second, 20*time.Millisecond)
	assert.Equal(t, append(flapped, bus.SubjectIncidentResolved), e.incidentEvents(t), "resolved once")
}
