package monitor_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/appteam"
	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/monitor"
	"github.com/vigil-ops/vigil/services/monitor/internal/monitortest"
)

// fakeClock is escalation's clock in these tests: now plus what the test
// moved it by.
type fakeClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.offset += d }

// service starts a monitor replica on clock and returns it.
func (e *env) service(t *testing.T, clock *fakeClock) *monitor.Service {
	t.Helper()
	return e.serviceWith(t, clock, monitor.Options{EscalationInterval: 20 * time.Millisecond})
}

// serviceWith starts a monitor replica with opts on clock.
func (e *env) serviceWith(t *testing.T, clock *fakeClock, opts monitor.Options) *monitor.Service {
	t.Helper()
	pool, err := db.Open(context.Background(), e.dsn, monitor.Schema)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := monitor.New(ctx, opts, monitor.Deps{
		Pool: pool, JetStream: e.js, Publisher: e.pub, Metrics: e.metrics, Logger: testkit.Logger(t), Clock: clock,
	})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return s
}

// An alert of team-a's app opens a P1 incident nobody acknowledges: two
// monitor replicas walk its policy on a moved clock, each step published
// once, until a person acknowledges it through the API.
func TestEscalationUntilAcknowledged(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clock := &fakeClock{}
	a, b := e.service(t, clock), e.service(t, clock)
	ctx := context.Background()
	require.NoError(t, appteam.SetApp(ctx, e.pool, appteam.App{Name: "shop", Team: "team-a", Cluster: "kind", Namespace: "shop"}, time.Now().Add(-time.Hour)))
	admin := auth.WithPrincipal(ctx, auth.Principal{Kind: auth.KindUser, Name: "root", Role: auth.RoleAdmin, AllTeams: true, Unowned: true})
	_, err := a.OnCallServer().CreateSchedule(admin, &monitorv1.CreateScheduleRequest{Schedule: &monitorv1.OnCallSchedule{
		Name: "team-a", Team: "team-a", Zone: "UTC",
		// Nobody but ann is on call, whatever the date the test runs.
		Layers: []*monitorv1.ScheduleLayer{{Participants: []string{"ann"}, RotationDays: 1, Handoff: "00:00", Start: "2026-01-01"}},
	}})
	require.NoError(t, err)
	_, err = b.EscalationServer().CreatePolicy(admin, &monitorv1.CreatePolicyRequest{Policy: &monitorv1.EscalationPolicy{
		Name: "team-a", Team: "team-a",
		Steps: []*monitorv1.EscalationStep{
			{Teams: []string{"team-a"}},
			{Delay: durationpb.New(10 * time.Minute), Users: []string{"boss"}, Channels: []string{"team-a-chat"}},
		},
		Repeat: 5,
	}})
	require.NoError(t, err)

	require.NoError(t, e.batcher.Publish(ctx, &eventsv1.AlertFired{Meta: bus.NewMeta("test", nil), Alert: &typesv1.Alert{
		Fingerprint: "down", Labels: map[string]string{"alertname": "Down", "namespace": "shop", "severity": "critical"},
		StartsAt: timestamppb.Now(), Status: typesv1.AlertStatus_ALERT_STATUS_FIRING,
	}}))
	var id string
	require.Eventually(t, func() bool {
		return e.pool.QueryRow(ctx, `SELECT id::text FROM incidents WHERE priority = $1 AND team = 'team-a'`,
			int32(typesv1.Priority_PRIORITY_P1)).Scan(&id) == nil
	}, 30*time.Second, 20*time.Millisecond, "a P1 incident of team-a")

	level := func(want int32) {
		t.Helper()
		require.Eventually(t, func() bool {
			var l int32
			return e.pool.QueryRow(ctx, `SELECT level FROM escalations WHERE incident_id = $1`, id).Scan(&l) == nil && l == want
		}, 30*time.Second, 20*time.Millisecond, "level %d", want)
	}
	clock.Advance(15 * time.Minute)
	level(1)
	clock.Advance(10 * time.Minute)
	level(2)

	state, err := b.IncidentServer().GetIncident(admin, &monitorv1.GetIncidentRequest{Id: id})
	require.NoError(t, err)
	require.Equal(t, "team-a", state.GetEscalation().GetPolicy())
	require.Equal(t, int32(2), state.GetEscalation().GetLevel())
	require.NotNil(t, state.GetEscalation().GetNextStepAt(), "the policy's repeat is due")

	_, err = a.IncidentServer().AcknowledgeIncident(admin, &monitorv1.AcknowledgeIncidentRequest{Id: id})
	require.NoError(t, err)
	clock.Advance(time.Hour)
	require.Eventually(t, func() bool {
		var stopped string
		return e.pool.QueryRow(ctx, `SELECT stopped FROM escalations WHERE incident_id = $1 AND due_at IS NULL`, id).Scan(&stopped) == nil &&
			stopped == "acknowledged"
	}, 30*time.Second, 20*time.Millisecond, "stopped by the acknowledgement")

	require.Eventually(t, func() bool { return len(monitortest.Escalated(t, e.js)) >= 2 }, 30*time.Second, 20*time.Millisecond)
	var got []string
	for _, ev := range monitortest.Escalated(t, e.js) {
		require.Equal(t, id, ev.GetIncident().GetId())
		got = append(got, ev.GetReason()+" "+ev.GetPolicy())
		switch ev.GetLevel() {
		case 1:
			require.Equal(t, []string{"ann"}, ev.GetUsers())
			require.Empty(t, ev.GetChannels())
		case 2:
			require.Equal(t, []string{"boss"}, ev.GetUsers())
			require.Equal(t, []string{"team-a-chat"}, ev.GetChannels())
		}
	}
	require.Equal(t, []string{"unacknowledged team-a", "unacknowledged team-a"}, got, "each step once, none after the acknowledgement")
}
