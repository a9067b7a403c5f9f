package intake_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
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
	"github.com/vigil-ops/vigil/services/monitor/internal/intake"
	"github.com/vigil-ops/vigil/services/monitor/internal/monitortest"
	"github.com/vigil-ops/vigil/services/monitor/internal/postgres"
	"github.com/vigil-ops/vigil/services/monitor/internal/silence"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// clock is a test clock the correlator reads.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type fixture struct {
	pool  *pgxpool.Pool
	clock *clock
	t0    time.Time
	dsn   string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pool, dsn := monitortest.Pool(t)
	now := time.Now().UTC().Truncate(time.Second)
	return &fixture{pool: pool, clock: &clock{t: now}, t0: now.Add(-time.Hour), dsn: dsn}
}

// handler is one replica: its own pool, the shared schema and inbox.
func (f *fixture) handler(t *testing.T, interval time.Duration, chunk int) (*intake.Handler, *incident.Correlator) {
	t.Helper()
	pool := f.pool
	if chunk < 0 {
		var err error
		pool, err = db.Open(context.Background(), f.dsn, "monitor")
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		chunk = 0
	}
	c := incident.NewCorrelator(postgres.Store{}, incident.Options{
		UpdateInterval: interval, Now: f.clock.now,
		Silences: func(ctx context.Context, tx pgx.Tx, now time.Time) (incident.Muter, error) {
			return postgres.Silences{}.Active(ctx, tx, now)
		},
	}, testkit.Logger(t))
	return intake.New(pool, "monitor", c, chunk, testkit.Logger(t)), c
}

func (f *fixture) alert(group, instance int) *typesv1.Alert {
	labels := map[string]string{
		"alertname": fmt.Sprintf("Storm%d", group), "namespace": "shop",
		"instance": fmt.Sprintf("i-%d", instance), "severity": "warning",
	}
	return &typesv1.Alert{
		Fingerprint: fmt.Sprintf("g%d/i%d", group, instance), Labels: labels, StartsAt: timestamppb.New(f.t0),
		Source: typesv1.AlertSource_ALERT_SOURCE_ALERTMANAGER,
	}
}

func fired(a *typesv1.Alert) *bus.Delivery {
	return &bus.Delivery{Subject: bus.SubjectAlertFired, Event: &eventsv1.AlertFired{Meta: bus.NewMeta("test", nil), Alert: a}}
}

func resolved(a *typesv1.Alert) *bus.Delivery {
	r := proto.Clone(a).(*typesv1.Alert)
	r.Status = typesv1.AlertStatus_ALERT_STATUS_RESOLVED
	r.EndsAt = timestamppb.New(a.GetStartsAt().AsTime().Add(time.Minute))
	return &bus.Delivery{Subject: bus.SubjectAlertResolved, Event: &eventsv1.AlertResolved{Meta: bus.NewMeta("test", nil), Alert: r}}
}

func handle(t *testing.T, h *intake.Handler, ds []*bus.Delivery) {
	t.Helper()
	for i, err := range h.HandleBatch(context.Background(), ds) {
		require.NoError(t, err, "delivery %d (%s)", i, ds[i].Subject)
	}
}

// event is an outbox event, decoded.
type event struct {
	subject  string
	incident *typesv1.Incident
	reason   string
	change   *eventsv1.IncidentChange
}

// drain returns the events in the outbox, oldest first, and empties it.
func (f *fixture) drain(t *testing.T) []event {
	t.Helper()
	ctx := context.Background()
	rows, err := f.pool.Query(ctx, `DELETE FROM outbox RETURNING seq, subject, data`)
	require.NoError(t, err)
	type row struct {
		seq     int64
		subject string
		data    []byte
	}
	var rs []row
	for rows.Next() {
		var r row
		require.NoError(t, rows.Scan(&r.seq, &r.subject, &r.data))
		rs = append(rs, r)
	}
	require.NoError(t, rows.Err())
	var out []event
	for _, r := range sortBySeq(rs, func(r row) int64 { return r.seq }) {
		e := event{subject: r.subject}
		switch r.subject {
		case bus.SubjectIncidentOpened:
			var m eventsv1.IncidentOpened
			require.NoError(t, proto.Unmarshal(r.data, &m))
			e.incident = m.GetIncident()
		case bus.SubjectIncidentUpdated:
			var m eventsv1.IncidentUpdated
			require.NoError(t, proto.Unmarshal(r.data, &m))
			e.incident, e.reason, e.change = m.GetIncident(), m.GetReason(), m.GetChange()
		case bus.SubjectIncidentResolved:
			var m eventsv1.IncidentResolved
			require.NoError(t, proto.Unmarshal(r.data, &m))
			e.incident, e.change = m.GetIncident(), m.GetChange()
		}
		out = append(out, e)
	}
	return out
}

func sortBySeq[T any](xs []T, seq func(T) int64) []T {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && seq(xs[j]) < seq(xs[j-1]); j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
	return xs
}

func (f *fixture) incidents(t *testing.T) []*typesv1.Incident {
	t.Helper()
	incs, _, err := postgres.Store{}.List(context.Background(), f.pool, postgres.Filter{}, 500, "")
	require.NoError(t, err)
	return incs
}

func TestBatchOfOneGroupIsOneOpenedEvent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h, _ := f.handler(t, 5*time.Second, 100) // several chunks per batch
	var ds []*bus.Delivery
	for i := range 1000 {
		ds = append(ds, fired(f.alert(1, i)))
	}
	for i := range 10 {
		ds = append(ds, fired(f.alert(2, i)), fired(f.alert(2, i))) // with repeats
	}
	handle(t, h, ds)

	events := f.drain(t)
	var opened int
	alerts := map[string]int32{}
	for _, e := range events {
		if e.subject == bus.SubjectIncidentOpened {
			opened++
			assert.LessOrEqual(t, len(e.incident.GetAlerts()), 10, "events carry a bounded sample")
		}
		alerts[e.incident.GetGroupLabels()["alertname"]] = e.incident.GetAlertCount()
	}
	assert.Equal(t, 2, opened)
	// 1000 alerts in chunks of 100: the first chunk opens, the next ones'
	// changes wait for the interval (the clock does not move).
	assert.Len(t, events, 2, "no incident.updated within the interval: %v", events)
	assert.Equal(t, int32(10), alerts["Storm2"])
	incs := f.incidents(t)
	require.Len(t, incs, 2)
	counts := map[string]int32{}
	for _, i := range incs {
		counts[i.GetGroupLabels()["alertname"]] = i.GetAlertCount()
	}
	assert.Equal(t, map[string]int32{"Storm1": 1000, "Storm2": 10}, counts)
	monitortest.RequireCountersMatch(t, f.pool)
}

func TestChangesWithinTheIntervalAreFoldedIntoOneUpdate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h, c := f.handler(t, 5*time.Second, 0)
	handle(t, h, []*bus.Delivery{fired(f.alert(1, 0))})
	require.Len(t, f.drain(t), 1)

	// Three batches within the interval: nothing announced yet.
	for i := 1; i <= 3; i++ {
		f.clock.add(time.Second)
		handle(t, h, []*bus.Delivery{fired(f.alert(1, i)), fired(f.alert(1, i))})
	}
	handle(t, h, []*bus.Delivery{resolved(f.alert(1, 0))})
	assert.Empty(t, f.drain(t))
	flush := func() int {
		var n int
		require.NoError(t, db.InTx(context.Background(), f.pool, func(tx pgx.Tx) (err error) {
			n, err = c.FlushDue(context.Background(), tx, 100)
			return err
		}))
		return n
	}
	assert.Equal(t, 0, flush(), "not due yet")

	f.clock.add(2 * time.Second) // 5s after incident.opened
	assert.Equal(t, 1, flush())
	events := f.drain(t)
	require.Len(t, events, 1)
	e := events[0]
	assert.Equal(t, bus.SubjectIncidentUpdated, e.subject)
	assert.Equal(t, "alert_added", e.reason)
	assert.Equal(t, int32(3), e.change.GetAlertsAdded())
	assert.Equal(t, int32(1), e.change.GetAlertsResolved())
	assert.Equal(t, []string{"alert_added", "alert_resolved"}, e.change.GetReasons())
	assert.Len(t, e.change.GetAdded(), 3)
	assert.Len(t, e.change.GetResolved(), 1)
	assert.Equal(t, int32(4), e.incident.GetAlertCount())
	assert.Equal(t, int32(3), e.incident.GetFiringCount())
	assert.Equal(t, 0, flush(), "announced once")

	// Resolving the rest resolves the incident at once, interval or not.
	handle(t, h, []*bus.Delivery{resolved(f.alert(1, 1)), resolved(f.alert(1, 2)), resolved(f.alert(1, 3))})
	events = f.drain(t)
	require.Len(t, events, 1)
	assert.Equal(t, bus.SubjectIncidentResolved, events[0].subject)
	assert.Equal(t, int32(3), events[0].change.GetAlertsResolved())
	assert.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED, events[0].incident.GetStatus())
	monitortest.RequireCountersMatch(t, f.pool)
}

func TestCountersEqualARecountAfterARandomMix(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h, _ := f.handler(t, -1, 37)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	startsAt := map[string]time.Time{}
	for round := range 20 {
		var ds []*bus.Delivery
		for range 200 {
			a := f.alert(rng.IntN(5), rng.IntN(40))
			if st, ok := startsAt[a.GetFingerprint()]; ok {
				a.StartsAt = timestamppb.New(st)
			}
			switch r := rng.IntN(10); {
			case r < 3:
				ds = append(ds, resolved(a))
				// The next firing of it is a new instance.
				startsAt[a.GetFingerprint()] = a.GetStartsAt().AsTime().Add(time.Minute)
			default:
				ds = append(ds, fired(a))
			}
		}
		handle(t, h, ds)
		if round%5 == 4 {
			handle(t, h, ds) // a redelivered batch changes nothing
		}
		f.clock.add(time.Second)
	}
	monitortest.RequireCountersMatch(t, f.pool)
}

// Two replicas share the stream: batches with the same groups, in different
// orders, at the same time. Locks in one order: no deadlock; every alert
// stored once; counters right.
func TestReplicasRacingOnTheSameGroups(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, _ := f.handler(t, 5*time.Second, -1)
	b, _ := f.handler(t, 5*time.Second, -1)
	const groups, perGroup = 20, 50
	var fires, repeats []*bus.Delivery
	for g := range groups {
		for i := range perGroup {
			fires = append(fires, fired(f.alert(g, i)))
			repeats = append(repeats, fired(f.alert(g, i)))
		}
	}
	race := func(ds []*bus.Delivery) {
		t.Helper()
		rand.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
		var wg sync.WaitGroup
		for r, h := range []*intake.Handler{a, b} {
			wg.Go(func() {
				for k := r * 50; k < len(ds); k += 100 {
					batch := ds[k:min(k+50, len(ds))]
					for i, err := range h.HandleBatch(context.Background(), batch) {
						assert.NoError(t, err, "replica %d, delivery %d", r, i)
					}
				}
			})
		}
		wg.Wait()
	}
	race(append(fires, repeats...))
	incs := f.incidents(t)
	require.Len(t, incs, groups, "one incident per group")
	for _, i := range incs {
		assert.Equal(t, int32(perGroup), i.GetAlertCount())
		assert.Equal(t, int32(perGroup), i.GetFiringCount())
	}
	var twice int
	require.NoError(t, f.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM alerts WHERE count <> 2`).Scan(&twice))
	assert.Zero(t, twice, "every alert fired twice, counted twice")
	monitortest.RequireCountersMatch(t, f.pool)

	// A firing and its resolution racing on two replicas: whichever comes
	// first, no incident stays open with the alert firing.
	var pairs []*bus.Delivery
	for g := range groups {
		for i := range perGroup {
			al := f.alert(100+g, i)
			pairs = append(pairs, fired(al), resolved(al))
		}
	}
	var wg sync.WaitGroup
	for r, h := range []*intake.Handler{a, b} {
		wg.Go(func() {
			var mine []*bus.Delivery
			for k := r; k < len(pairs); k += 2 { // a fires, b resolves
				mine = append(mine, pairs[k])
			}
			for k := 0; k < len(mine); k += 25 {
				for i, err := range h.HandleBatch(context.Background(), mine[k:min(k+25, len(mine))]) {
					assert.NoError(t, err, "replica %d, delivery %d", r, i)
				}
			}
		})
	}
	wg.Wait()
	var open int
	require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT count(*) FROM alerts a
		JOIN incidents i ON i.id = a.incident_id
		WHERE a.status = 'firing' AND i.group_key LIKE '%Storm1__"%'`).Scan(&open))
	assert.Zero(t, open, "an alert resolved on one replica stays resolved whatever the other did")
	monitortest.RequireCountersMatch(t, f.pool)
}

func TestStoppingLeavesTheRestForRedelivery(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h, _ := f.handler(t, -1, 10)
	var ds []*bus.Delivery
	for i := range 100 {
		ds = append(ds, fired(f.alert(i%7, i)))
	}
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	for _, err := range h.HandleBatch(stopped, ds) {
		require.ErrorIs(t, err, bus.ErrStopped)
	}
	assert.Empty(t, f.incidents(t), "nothing done once stopping")
	handle(t, h, ds) // redelivered
	var total int32
	for _, i := range f.incidents(t) {
		total += i.GetAlertCount()
	}
	assert.Equal(t, int32(100), total)
}

func TestInvalidAlertsFailAloneAndPermanently(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h, _ := f.handler(t, -1, 0)
	bad := f.alert(1, 1)
	bad.Fingerprint = ""
	errs := h.HandleBatch(context.Background(), []*bus.Delivery{fired(f.alert(1, 0)), fired(bad), fired(f.alert(1, 2))})
	require.NoError(t, errs[0])
	require.Error(t, errs[1])
	assert.True(t, bus.IsPermanent(errs[1]))
	require.NoError(t, errs[2])
	assert.Equal(t, int32(2), f.incidents(t)[0].GetAlertCount())
}

func (f *fixture) silence(t *testing.T, p silence.Params) *silence.Silence {
	t.Helper()
	s, err := silence.New(p, f.clock.now())
	require.NoError(t, err)
	require.NoError(t, postgres.Silences{}.Create(context.Background(), f.pool, s))
	return s
}

// alertRows returns the stored alerts of a fingerprint: incident id ("" for
// silenced), status and who silenced it.
func (f *fixture) alertRows(t *testing.T, fingerprint string) []string {
	t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT coalesce(incident_id::text, ''), status,
		coalesce(silenced_by::text, ''), count FROM alerts WHERE fingerprint = $1 ORDER BY incident_id NULLS FIRST`, fingerprint)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var inc, status, by string
		var count int
		require.NoError(t, rows.Scan(&inc, &status, &by, &count))
		where := "incident"
		if inc == "" {
			where = "silenced by " + by
		}
		out = append(out, fmt.Sprintf("%s %s x%d", where, status, count))
	}
	require.NoError(t, rows.Err())
	return out
}

func TestSilencedAlertsAreStoredButOpenNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h, _ := f.handler(t, -1, 0)
	s := f.silence(t, silence.Params{
		Matchers: []string{`alertname="Storm1"`, `instance=~"i-[0-4]"`}, EndsAt: f.clock.now().Add(time.Hour),
		CreatedBy: "alice", Comment: "maintenance",
	})
	var ds []*bus.Delivery
	for i := range 10 {
		ds = append(ds, fired(f.alert(1, i)))
	}
	ds = append(ds, fired(f.alert(1, 0))) // a repeat, still silenced
	handle(t, h, ds)
	assert.Equal(t, []string{"silenced by " + s.ID() + " firing x2"}, f.alertRows(t, "g1/i0"))
	assert.Equal(t, []string{"incident firing x1"}, f.alertRows(t, "g1/i7"))
	incs := f.incidents(t)
	require.Len(t, incs, 1)
	assert.Equal(t, int32(5), incs[0].GetAlertCount(), "silenced alerts are not in the incident")
	events := f.drain(t)
	require.Len(t, events, 1)
	assert.Equal(t, int32(5), events[0].incident.GetAlertCount())

	// Search shows them as silenced.
	silenced, _, err := postgres.Store{}.ListAlerts(context.Background(), f.pool,
		postgres.AlertFilter{States: []postgres.AlertState{postgres.StateSilenced}}, 50, "")
	require.NoError(t, err)
	assert.Len(t, silenced, 5)
	for _, a := range silenced {
		assert.Equal(t, s.ID(), a.GetSilencedBy())
		assert.Empty(t, a.GetIncidentId())
	}

	// A silenced group alone opens nothing.
	f.silence(t, silence.Params{Matchers: []string{`alertname="Storm2"`}, EndsAt: f.clock.now().Add(time.Hour)})
	handle(t, h, []*bus.Delivery{fired(f.alert(2, 0)), resolved(f.alert(2, 0))})
	assert.Len(t, f.incidents(t), 1)
	assert.Empty(t, f.drain(t))
	require.Len(t, f.alertRows(t, "g2/i0"), 1)
	assert.Contains(t, f.alertRows(t, "g2/i0")[0], "resolved", "a silenced alert's resolution is recorded")

	// Once expired, the next firing goes through, and the silenced copy goes.
	require.NoError(t, db.InTx(context.Background(), f.pool, func(tx pgx.Tx) error {
		_, err := postgres.Silences{}.Expire(context.Background(), tx, s.ID(), "bob", f.clock.now())
		return err
	}))
	handle(t, h, []*bus.Delivery{fired(f.alert(1, 0))})
	assert.Equal(t, []string{"incident firing x1"}, f.alertRows(t, "g1/i0"))
	assert.Equal(t, int32(6), f.incidents(t)[0].GetAlertCount())
	monitortest.RequireCountersMatch(t, f.pool)
}

// A weekly maintenance window on Friday 22:00 to 02:00 in Tokyo mutes the
// alerts that fire inside it, across midnight, and none outside it.
func TestMaintenanceWindowCrossingMidnight(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	require.NoError(t, err)
	// A Friday, 21:30 in Tokyo (12:30 UTC): before the window.
	f.clock.t = time.Date(2026, 11, 27, 21, 30, 0, 0, tokyo).UTC()
	h, _ := f.handler(t, -1, 0)
	f.silence(t, silence.Params{
		Matchers: []string{`alertname=~"Storm.*"`}, EndsAt: f.clock.now().Add(30 * 24 * time.Hour),
		Schedule: &silence.Schedule{TimeZone: "Asia/Tokyo", Windows: []silence.Window{{Days: []string{"fri"}, Start: "22:00", End: "02:00"}}},
	})
	fire := func(i int) { handle(t, h, []*bus.Delivery{fired(f.alert(1, i))}) }
	fire(0) // 21:30 Friday: through
	f.clock.add(time.Hour)
	fire(1) // 22:30 Friday: muted
	f.clock.add(3 * time.Hour)
	fire(2) // 01:30 Saturday: muted, across midnight
	f.clock.add(time.Hour)
	fire(3) // 02:30 Saturday: through
	f.clock.add(6*24*time.Hour + 19*time.Hour)
	fire(4) // 21:30 the next Friday: through
	f.clock.add(time.Hour)
	fire(5) // 22:30 the next Friday: muted again
	var through []string
	for i := range 6 {
		if rows := f.alertRows(t, fmt.Sprintf("g1/i%d", i)); len(rows) == 1 && rows[0] == "incident firing x1" {
			through = append(through, fmt.Sprint(i))
		}
	}
	assert.Equal(t, []string{"0", "3", "4"}, through)
}

func TestPruneDeletesWhatIsPastRetention(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h, _ := f.handler(t, -1, 0)
	f.silence(t, silence.Params{Matchers: []string{`alertname="Storm9"`}, EndsAt: f.clock.now().Add(time.Minute)})
	handle(t, h, []*bus.Delivery{
		fired(f.alert(1, 0)), fired(f.alert(1, 1)), resolved(f.alert(1, 0)), resolved(f.alert(1, 1)), // resolved
		fired(f.alert(2, 0)), // stays open
		fired(f.alert(9, 0)), // silenced
	})
	require.Len(t, f.incidents(t), 2)
	ctx := context.Background()
	count := func(sql string) int {
		var n int
		require.NoError(t, f.pool.QueryRow(ctx, sql).Scan(&n))
		return n
	}

	p, err := postgres.Store{}.Prune(ctx, f.pool, f.clock.now().Add(-time.Hour))
	require.NoError(t, err)
	assert.Equal(t, postgres.Pruned{}, p, "nothing is old enough")

	p, err = postgres.Store{}.Prune(ctx, f.pool, time.Now().Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, int64(1), p.Incidents)
	assert.Equal(t, int64(1), p.SilencedAlerts)
	assert.Equal(t, int64(2), p.Resolutions)
	incs := f.incidents(t)
	require.Len(t, incs, 1, "the open incident stays")
	assert.Equal(t, "Storm2", incs[0].GetGroupLabels()["alertname"])
	assert.Equal(t, 1, count(`SELECT count(*) FROM alerts`), "the resolved incident's alerts went with it")
	assert.Zero(t, count(`SELECT count(*) FROM alert_resolutions`))
}
