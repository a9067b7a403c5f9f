package escalation_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/appteam"
	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/monitor/internal/escalation"
	"github.com/vigil-ops/vigil/services/monitor/internal/incident"
	"github.com/vigil-ops/vigil/services/monitor/internal/monitortest"
	"github.com/vigil-ops/vigil/services/monitor/internal/postgres"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// clock is a fake clock the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

type fixture struct {
	pool  *pgxpool.Pool
	dsn   string
	clock *clock
	c     *incident.Correlator
	eng   *escalation.Engine
	relay *outbox.Relay
	js    jetstream.JetStream
}

// t0 is 08:50 UTC: the schedule below hands over from alice to bob at
// 09:00 UTC.
var t0 = time.Date(2026, 3, 10, 8, 50, 0, 0, time.UTC)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pool, dsn := monitortest.Pool(t)
	_, js := testkit.JetStream(t, testkit.NATS(t))
	clk := &clock{t: t0}
	f := &fixture{
		pool: pool, dsn: dsn, clock: clk, js: js,
		c: incident.NewCorrelator(postgres.Store{}, incident.Options{
			UpdateInterval: -1, Now: clk.Now, Priorities: escalation.LoadPriorities,
		}, testkit.Logger(t)),
		eng:   escalation.NewEngine(pool, clk, escalation.Options{}, testkit.Logger(t)),
		relay: outbox.NewRelay(pool, bus.NewPublisher(js, bus.NewMetrics(prometheus.NewRegistry())), outbox.RelayOptions{Schema: "monitor"}, testkit.Logger(t)),
	}
	ctx := context.Background()
	require.NoError(t, appteam.SetApp(ctx, pool, appteam.App{Name: "shop", Team: "team-a", Cluster: "kind", Namespace: "shop"}, t0.Add(-time.Hour)))
	require.NoError(t, db.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := escalation.Schedules.Put(ctx, tx, &monitorv1.OnCallSchedule{
			Name: "team-a", Team: "team-a", Zone: "UTC",
			Layers: []*monitorv1.ScheduleLayer{{Participants: []string{"alice", "bob"}, RotationDays: 1, Handoff: "09:00", Start: "2026-03-09"}},
		}, true, false, "test", t0); err != nil {
			return err
		}
		_, err := escalation.Policies.Put(ctx, tx, &monitorv1.EscalationPolicy{
			Name: "team-a", Team: "team-a",
			Steps: []*monitorv1.EscalationStep{
				{Schedules: []string{"team-a"}},
				{Delay: durationpb.New(10 * time.Minute), Users: []string{"carol"}, Channels: []string{"team-a-chat"}},
				{Delay: durationpb.New(20 * time.Minute), Teams: []string{"team-a"}, Users: []string{"dave"}, Channels: []string{"managers"}},
			},
		}, true, false, "test", t0)
		return err
	}))
	return f
}

// open fires a critical alert of team-a's app: a P1 incident (target 15
// minutes), and returns its id.
func (f *fixture) open(t *testing.T, name string) string {
	t.Helper()
	ctx := context.Background()
	a := &typesv1.Alert{
		Fingerprint: name, StartsAt: timestamppb.New(f.clock.Now()),
		Labels: map[string]string{"alertname": name, "namespace": "shop", "severity": "critical"},
	}
	require.NoError(t, db.InTx(ctx, f.pool, func(tx pgx.Tx) error {
		return f.c.AlertFired(ctx, tx, &eventsv1.AlertFired{Meta: bus.NewMeta("test", nil), Alert: a})
	}))
	var id string
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT id::text FROM incidents WHERE group_labels->>'alertname' = $1`, name).Scan(&id))
	return id
}

// tick moves the clock to at and runs a tick; it returns the steps taken.
func (f *fixture) tick(t *testing.T, at time.Time) int {
	t.Helper()
	f.clock.Set(at)
	n, err := f.eng.Tick(context.Background())
	require.NoError(t, err)
	return n
}

// escalated relays the outbox and returns every incident.escalated on
// the bus, in order.
func (f *fixture) escalated(t *testing.T) []*eventsv1.IncidentEscalated {
	t.Helper()
	ctx := context.Background()
	_, err := f.relay.Flush(ctx)
	require.NoError(t, err)
	return monitortest.Escalated(t, f.js)
}

type step struct {
	Incident string
	Level    int32
	Users    []string
	Channels []string
	Reason   string
	By       string
}

func steps(evs []*eventsv1.IncidentEscalated) []step {
	var out []step
	for _, e := range evs {
		out = append(out, step{e.GetIncident().GetId(), e.GetLevel(), e.GetUsers(), e.GetChannels(), e.GetReason(), e.GetBy()})
	}
	return out
}

func TestUnacknowledgedIncidentWalksItsSteps(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.open(t, "Down")
	var prio int32
	require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT priority FROM incidents WHERE id = $1`, id).Scan(&prio))
	require.Equal(t, typesv1.Priority_PRIORITY_P1, typesv1.Priority(prio), "critical is P1")

	// P1's response target is 15 minutes: step 1 at 09:05, once the
	// schedule has handed over from alice to bob.
	require.Zero(t, f.tick(t, t0.Add(15*time.Minute-time.Second)))
	require.Empty(t, f.escalated(t))
	require.Equal(t, 1, f.tick(t, t0.Add(15*time.Minute)))
	require.Zero(t, f.tick(t, t0.Add(15*time.Minute+time.Second)), "a step is taken once")
	// Step 2 ten minutes later, step 3 twenty after that; then no more.
	require.Zero(t, f.tick(t, t0.Add(25*time.Minute-time.Second)))
	require.Equal(t, 1, f.tick(t, t0.Add(25*time.Minute)))
	require.Equal(t, 1, f.tick(t, t0.Add(45*time.Minute)))
	require.Zero(t, f.tick(t, t0.Add(48*time.Hour)))

	require.Equal(t, []step{
		{id, 1, []string{"bob"}, nil, "unacknowledged", ""},
		{id, 2, []string{"carol"}, []string{"team-a-chat"}, "unacknowledged", ""},
		{id, 3, []string{"dave", "bob"}, []string{"managers"}, "unacknowledged", ""},
	}, steps(f.escalated(t)))
	for _, e := range f.escalated(t) {
		require.Equal(t, "team-a", e.GetPolicy())
		require.Equal(t, typesv1.Priority_PRIORITY_P1, e.GetIncident().GetPriority())
	}
}

func TestAcknowledgeAndResolveStopEscalation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	acked, resolved, walked := f.open(t, "Acked"), f.open(t, "Resolved"), f.open(t, "Walked")
	cleared := f.open(t, "Cleared")
	require.Equal(t, 4, f.tick(t, t0.Add(15*time.Minute)))
	// Its alert resolves: the incident resolves, and so stops.
	require.NoError(t, db.InTx(ctx, f.pool, func(tx pgx.Tx) error {
		return f.c.AlertResolved(ctx, tx, &eventsv1.AlertResolved{Meta: bus.NewMeta("test", nil), Alert: &typesv1.Alert{
			Fingerprint: "Cleared", StartsAt: timestamppb.New(t0), EndsAt: timestamppb.New(f.clock.Now()), Status: typesv1.AlertStatus_ALERT_STATUS_RESOLVED,
			Labels: map[string]string{"alertname": "Cleared", "namespace": "shop", "severity": "critical"},
		}})
	}))
	require.NoError(t, db.InTx(ctx, f.pool, func(tx pgx.Tx) error {
		if _, err := f.c.Acknowledge(ctx, tx, acked, "alice"); err != nil {
			return err
		}
		_, err := f.c.Resolve(ctx, tx, resolved, "alice")
		return err
	}))
	// Due again at 09:15: the stopped ones take no step, then or later.
	require.Equal(t, 4, f.tick(t, t0.Add(25*time.Minute)), "every due row is looked at")
	require.Equal(t, 1, f.tick(t, t0.Add(45*time.Minute)), "only the incident nobody acknowledged goes on")
	require.Zero(t, f.tick(t, t0.Add(48*time.Hour)))
	var levels []step
	for _, s := range steps(f.escalated(t)) {
		levels = append(levels, step{Incident: s.Incident, Level: s.Level})
	}
	require.ElementsMatch(t, []step{
		{Incident: acked, Level: 1},
		{Incident: resolved, Level: 1},
		{Incident: cleared, Level: 1},
		{Incident: walked, Level: 1},
		{Incident: walked, Level: 2},
		{Incident: walked, Level: 3},
	}, levels)
}

func TestSnoozeHoldsStepsUntilItEnds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	id := f.open(t, "Snoozed")
	f.clock.Set(t0.Add(5 * time.Minute))
	var until time.Time
	require.NoError(t, db.InTx(ctx, f.pool, func(tx pgx.Tx) (err error) {
		until, err = f.eng.Snooze(ctx, tx, id, 30*time.Minute, "alice")
		return err
	}))
	require.Equal(t, t0.Add(35*time.Minute), until)
	require.Zero(t, f.tick(t, t0.Add(15*time.Minute)), "due, but snoozed")
	require.Zero(t, f.tick(t, t0.Add(35*time.Minute-time.Second)))
	require.Equal(t, 1, f.tick(t, t0.Add(35*time.Minute)), "the held step is taken when the snooze ends")
	require.Zero(t, f.tick(t, t0.Add(45*time.Minute-time.Second)), "the next step counts from the held one")
	require.Equal(t, 1, f.tick(t, t0.Add(45*time.Minute)))
	got := steps(f.escalated(t))
	require.Len(t, got, 2)
	require.Equal(t, []int32{1, 2}, []int32{got[0].Level, got[1].Level})
}

func TestEscalateByHand(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	id := f.open(t, "Manual")
	f.clock.Set(t0.Add(time.Minute))
	escalate := func() (int32, error) {
		var level int32
		err := db.InTx(ctx, f.pool, func(tx pgx.Tx) (err error) {
			level, err = f.eng.Escalate(ctx, tx, id, "erin")
			return err
		})
		return level, err
	}
	level, err := escalate()
	require.NoError(t, err)
	require.Equal(t, int32(1), level)
	// The next step counts from the manual one: 10 minutes.
	require.Zero(t, f.tick(t, t0.Add(11*time.Minute-time.Second)))
	require.Equal(t, 1, f.tick(t, t0.Add(11*time.Minute)))
	f.clock.Set(t0.Add(12 * time.Minute))
	level, err = escalate()
	require.NoError(t, err)
	require.Equal(t, int32(3), level)
	_, err = escalate()
	require.ErrorIs(t, err, escalation.ErrExhausted)
	require.Equal(t, []step{
		{id, 1, []string{"alice"}, nil, "manual", "erin"},
		{id, 2, []string{"carol"}, []string{"team-a-chat"}, "unacknowledged", ""},
		// bob took over at 09:00.
		{id, 3, []string{"dave", "bob"}, []string{"managers"}, "manual", "erin"},
	}, steps(f.escalated(t)))
}

// TestReplicasTakeEachStepOnce runs two engines, each on its own pool, at
// the same due time over many incidents, and a third after a "restart".
func TestReplicasTakeEachStepOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const n = 30
	ids := map[string]bool{}
	for i := range n {
		ids[f.open(t, "Storm"+string(rune('A'+i)))] = true
	}
	engines := make([]*escalation.Engine, 2)
	for i := range engines {
		pool, err := db.Open(context.Background(), f.dsn, "monitor")
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		engines[i] = escalation.NewEngine(pool, f.clock, escalation.Options{}, testkit.Logger(t))
	}
	f.clock.Set(t0.Add(15 * time.Minute))
	var wg sync.WaitGroup
	taken := make([]int, len(engines))
	for i, e := range engines {
		wg.Go(func() {
			var err error
			taken[i], err = e.Tick(context.Background())
			require.NoError(t, err)
		})
	}
	wg.Wait()
	require.Equal(t, n, taken[0]+taken[1])

	// A new engine (a restarted monitor) continues where they were.
	restarted := escalation.NewEngine(f.pool, f.clock, escalation.Options{}, testkit.Logger(t))
	f.clock.Set(t0.Add(25 * time.Minute))
	got, err := restarted.Tick(context.Background())
	require.NoError(t, err)
	require.Equal(t, n, got)

	count := map[string][]int32{}
	for _, s := range steps(f.escalated(t)) {
		require.True(t, ids[s.Incident])
		count[s.Incident] = append(count[s.Incident], s.Level)
	}
	require.Len(t, count, n)
	for id, levels := range count {
		require.Equal(t, []int32{1, 2}, levels, id)
	}
}

// A repeated policy starts over the response target after its last step,
// and stops after its repeats.
func TestRepeat(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	require.NoError(t, db.InTx(ctx, f.pool, func(tx pgx.Tx) error {
		p, err := escalation.Policies.Get(ctx, tx, "team-a")
		if err != nil {
			return err
		}
		p.Repeat = 1
		_, err = escalation.Policies.Put(ctx, tx, p, false, false, "test", t0)
		return err
	}))
	id := f.open(t, "Repeated")
	for _, at := range []time.Duration{15, 25, 45} {
		require.Equal(t, 1, f.tick(t, t0.Add(at*time.Minute)))
	}
	require.Zero(t, f.tick(t, t0.Add(60*time.Minute-time.Second)))
	for _, at := range []time.Duration{60, 70, 90} {
		require.Equal(t, 1, f.tick(t, t0.Add(at*time.Minute)))
	}
	require.Zero(t, f.tick(t, t0.Add(48*time.Hour)))
	var reasons []string
	for _, s := range steps(f.escalated(t)) {
		require.Equal(t, id, s.Incident)
		reasons = append(reasons, s.Reason)
	}
	require.Equal(t, []string{"unacknowledged", "unacknowledged", "unacknowledged", "repeat", "unacknowledged", "unacknowledged"}, reasons)
}

func TestPriorityFromRulesAndSeverity(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	require.NoError(t, db.InTx(ctx, f.pool, func(tx pgx.Tx) error {
		return escalation.SetRules(ctx, tx, &monitorv1.PriorityRules{Rules: []*monitorv1.PriorityRule{
			{Matchers: []string{`alertname="Pay"`}, Team: "team-a", Priority: typesv1.Priority_PRIORITY_P0},
		}}, false, "test", t0)
	}))
	fire := func(name, fp, severity string) {
		require.NoError(t, db.InTx(ctx, f.pool, func(tx pgx.Tx) error {
			return f.c.AlertFired(ctx, tx, &eventsv1.AlertFired{Meta: bus.NewMeta("test", nil), Alert: &typesv1.Alert{
				Fingerprint: fp, StartsAt: timestamppb.New(f.clock.Now()),
				Labels: map[string]string{"alertname": name, "namespace": "shop", "severity": severity, "fp": fp},
			}})
		}))
	}
	prio := func(name string) (string, typesv1.Priority) {
		var id string
		var p int32
		require.NoError(t, f.pool.QueryRow(ctx, `SELECT id::text, priority FROM incidents WHERE group_labels->>'alertname' = $1`, name).Scan(&id, &p))
		return id, typesv1.Priority(p)
	}
	fire("Pay", "p1", "info")
	_, p := prio("Pay")
	require.Equal(t, typesv1.Priority_PRIORITY_P0, p, "a rule")
	fire("Slow", "s1", "warning")
	id, p := prio("Slow")
	require.Equal(t, typesv1.Priority_PRIORITY_P2, p, "warning")
	fire("Slow", "s2", "critical")
	_, p = prio("Slow")
	require.Equal(t, typesv1.Priority_PRIORITY_P1, p, "raised with the severity")
	fire("Slow", "s3", "info")
	_, p = prio("Slow")
	require.Equal(t, typesv1.Priority_PRIORITY_P1, p, "never lowered by an alert")

	// A person's priority stays.
	require.NoError(t, db.InTx(ctx, f.pool, func(tx pgx.Tx) error {
		_, err := f.c.SetPriority(ctx, tx, id, typesv1.Priority_PRIORITY_P3, "erin")
		return err
	}))
	fire("Slow", "s4", "critical")
	_, p = prio("Slow")
	require.Equal(t, typesv1.Priority_PRIORITY_P3, p)
	var reasons []string
	rows, err := f.pool.Query(ctx, `SELECT data FROM outbox WHERE subject = 'incident.updated' ORDER BY seq`)
	require.NoError(t, err)
	for rows.Next() {
		var data []byte
		require.NoError(t, rows.Scan(&data))
		evs, err := bus.Decode(bus.SubjectIncidentUpdated, data)
		require.NoError(t, err)
		reasons = append(reasons, evs[0].(*eventsv1.IncidentUpdated).GetChange().GetReasons()...)
	}
	require.NoError(t, rows.Err())
	require.Contains(t, reasons, "priority_raised")
	require.Contains(t, reasons, "priority_set")
}

func TestChoose(t *testing.T) {
	t.Parallel()
	step := []*monitorv1.EscalationStep{{Users: []string{"x"}}}
	p0 := []typesv1.Priority{typesv1.Priority_PRIORITY_P0}
	policies := []*monitorv1.EscalationPolicy{
		{Name: "global", Steps: step},
		{Name: "global-p0", Priorities: p0, Steps: step},
		{Name: "web", Team: "web", Steps: step},
		{Name: "web-p0-b", Team: "web", Priorities: p0, Steps: step},
		{Name: "web-p0-a", Team: "web", Priorities: p0, Steps: step},
		{Name: "data-p1", Team: "data", Priorities: []typesv1.Priority{typesv1.Priority_PRIORITY_P1}, Steps: step},
	}
	for _, tc := range []struct {
		team string
		prio typesv1.Priority
		want string
	}{
		{"web", typesv1.Priority_PRIORITY_P0, "web-p0-a"},
		{"web", typesv1.Priority_PRIORITY_P1, "web"},
		{"data", typesv1.Priority_PRIORITY_P1, "data-p1"},
		{"data", typesv1.Priority_PRIORITY_P2, "global"},
		{"data", typesv1.Priority_PRIORITY_P0, "global-p0"},
		{"", typesv1.Priority_PRIORITY_P2, "global"},
	} {
		require.Equal(t, tc.want, escalation.Choose(policies, tc.team, tc.prio).GetName(), "%s %s", tc.team, tc.prio)
	}
	require.Nil(t, escalation.Choose(policies[2:4], "data", typesv1.Priority_PRIORITY_P2), "no policy applies")
}
