package monitor_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/monitor"
	"github.com/vigil-ops/vigil/services/monitor/internal/monitortest"
)

func TestMain(m *testing.M) { testkit.Main(m) }

type env struct {
	dsn      string
	js       jetstream.JetStream
	pub      *bus.Publisher
	batcher  *bus.Batcher
	pool     *pgxpool.Pool
	registry *prometheus.Registry
	metrics  *bus.Metrics
	t0       time.Time
}

func newEnv(t testing.TB) *env {
	t.Helper()
	dsn := testkit.Postgres(t)
	_, js := testkit.JetStream(t, testkit.NATS(t))
	reg := prometheus.NewRegistry()
	m := bus.NewMetrics(reg)
	pub := bus.NewPublisher(js, m)
	pool, err := db.Open(context.Background(), dsn, monitor.Schema)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return &env{
		dsn: dsn, js: js, pub: pub, batcher: bus.NewBatcher(pub, "test"), pool: pool, registry: reg, metrics: m,
		t0: time.Now().Add(-time.Hour).UTC().Truncate(time.Second),
	}
}

// replica starts one monitor with its own pool; stop cancels it and waits.
func (e *env) replica(t testing.TB, opts monitor.Options) (stop func()) {
	t.Helper()
	pool, err := db.Open(context.Background(), e.dsn, monitor.Schema)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := monitor.New(ctx, opts, monitor.Deps{
		Pool: pool, JetStream: e.js, Publisher: e.pub, Metrics: e.metrics, Logger: testkit.Logger(t),
	})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return stop
}

func (e *env) alert(group, instance int, resolved bool) bus.Event {
	a := &typesv1.Alert{
		Fingerprint: fmt.Sprintf("g%d/i%d", group, instance),
		Labels: map[string]string{
			"alertname": fmt.Sprintf("Storm%d", group), "namespace": "shop", "instance": fmt.Sprint(instance),
		},
		StartsAt: timestamppb.New(e.t0),
		Source:   typesv1.AlertSource_ALERT_SOURCE_ALERTMANAGER,
	}
	if resolved {
		a.Status = typesv1.AlertStatus_ALERT_STATUS_RESOLVED
		a.EndsAt = timestamppb.New(e.t0.Add(time.Minute))
		return &eventsv1.AlertResolved{Meta: bus.NewMeta("test", nil), Alert: a}
	}
	a.Status = typesv1.AlertStatus_ALERT_STATUS_FIRING
	return &eventsv1.AlertFired{Meta: bus.NewMeta("test", nil), Alert: a}
}

// send publishes events from several concurrent senders, as the gateway
// does: envelopes of many webhooks' alerts.
func (e *env) send(t testing.TB, events []bus.Event, senders, perRequest int) {
	t.Helper()
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for k := s * perRequest; k < len(events); k += senders * perRequest {
				assert.NoError(t, e.batcher.Publish(context.Background(), events[k:min(k+perRequest, len(events))]...))
			}
		})
	}
	wg.Wait()
}

type tally struct {
	incidents, unresolved int
	alerts, firing        int64
	// stored is the number of alert rows; fires the sum of their counts.
	stored, fires int64
}

func (e *env) tally(t testing.TB) tally {
	t.Helper()
	var x tally
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE status <> 'resolved'),
		coalesce(sum(alert_count), 0), coalesce(sum(firing_count), 0) FROM incidents`).
		Scan(&x.incidents, &x.unresolved, &x.alerts, &x.firing))
	require.NoError(t, e.pool.QueryRow(context.Background(),
		`SELECT count(*), coalesce(sum(count), 0) FROM alerts WHERE incident_id IS NOT NULL`).Scan(&x.stored, &x.fires))
	return x
}

// retries counts the monitor's deliveries that failed and were retried.
func (e *env) retries(t *testing.T) float64 {
	t.Helper()
	mfs, err := e.registry.Gather()
	require.NoError(t, err)
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "vigil_bus_handled_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["consumer"] == "monitor" && labels["outcome"] == "retry" {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// Two monitors share the durable consumer. Fires, repeats and resolves of
// the same alerts arrive on both at once: every alert is stored once with
// every repeat counted, counters equal a recount, nothing needs a retry
// (a deadlock would fail a batch and retry it).
func TestTwoReplicasShareTheWork(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Two processes, one of them with two workers: three batches at once.
	e.replica(t, monitor.Options{UpdateInterval: time.Second, Workers: 2})
	e.replica(t, monitor.Options{UpdateInterval: time.Second})

	const groups, perGroup = 20, 100
	var events []bus.Event
	for range 2 {
		for i := range perGroup {
			for g := range groups {
				events = append(events, e.alert(g, i, false))
			}
		}
	}
	e.send(t, events, 8, 50)
	require.Eventually(t, func() bool { return e.tally(t).fires == 2*groups*perGroup }, time.Minute, 50*time.Millisecond)
	x := e.tally(t)
	assert.Equal(t, groups, x.incidents, "one incident per group")
	assert.Equal(t, int64(groups*perGroup), x.alerts)
	assert.Equal(t, int64(groups*perGroup), x.stored, "each alert stored once")
	monitortest.RequireCountersMatch(t, e.pool)

	// Half the groups resolve entirely while the other half repeat.
	events = events[:0]
	for i := range perGroup {
		for g := range groups {
			events = append(events, e.alert(g, i, g < groups/2))
		}
	}
	e.send(t, events, 8, 50)
	require.Eventually(t, func() bool {
		x := e.tally(t)
		return x.unresolved == groups/2 && x.fires == 2*groups*perGroup+groups/2*perGroup
	}, time.Minute, 50*time.Millisecond)
	x = e.tally(t)
	assert.Equal(t, int64(groups/2*perGroup), x.firing)
	monitortest.RequireCountersMatch(t, e.pool)
	assert.Zero(t, e.retries(t), "no batch failed (deadlock, conflict) and was retried")
}

// A monitor stopped in the middle of a storm leaves what it did not do to
// be redelivered; after a restart every alert is in its incident exactly
// once.
func TestStopMidStormLosesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	opts := monitor.Options{ChunkSize: 200}
	stop := e.replica(t, opts)

	const groups, perGroup = 10, 1000
	var events []bus.Event
	for i := range perGroup {
		for g := range groups {
			events = append(events, e.alert(g, i, false))
		}
	}
	e.send(t, events, 4, 100)
	// Stop as soon as part of the storm is in.
	require.Eventually(t, func() bool { return e.tally(t).alerts > 0 }, time.Minute, 10*time.Millisecond)
	stop()
	partial := e.tally(t).alerts
	t.Logf("stopped with %d of %d alerts in incidents", partial, groups*perGroup)

	e.replica(t, opts)
	require.Eventually(t, func() bool { return e.tally(t).alerts == groups*perGroup }, time.Minute, 50*time.Millisecond)
	x := e.tally(t)
	assert.Equal(t, int64(groups*perGroup), x.stored)
	assert.Equal(t, int64(groups*perGroup), x.fires, "no alert counted twice")
	assert.Equal(t, groups, x.incidents)
	monitortest.RequireCountersMatch(t, e.pool)
}

// BenchmarkDrain measures the monitor alone: a storm already stored on
// JetStream (envelopes of 1,000 alerts, as the gateway's group commit makes
// them) drained into incidents. Done is every alert in its incident.
//
//	go test -run '^$' -bench Drain -benchtime 1x .
func BenchmarkDrain(b *testing.B) {
	for _, groups := range []int{20, 2000} {
		for _, workers := range []int{1, 2} {
			b.Run(fmt.Sprintf("groups=%d/workers=%d", groups, workers), func(b *testing.B) {
				const total = 200_000
				for b.Loop() {
					b.StopTimer()
					e := newEnv(b)
					events := make([]bus.Event, 0, total)
					for i := range total / groups {
						for g := range groups {
							events = append(events, e.alert(g, i, false))
						}
					}
					e.send(b, events, 8, 1000)
					b.StartTimer()
					e.replica(b, monitor.Options{Workers: workers})
					for e.tally(b).alerts < total {
						time.Sleep(20 * time.Millisecond)
					}
				}
				b.ReportMetric(float64(total*b.N)/b.Elapsed().Seconds(), "alerts/s")
			})
		}
	}
}

// A verified repair resolves the incident it fixed, once, however often
// repair.succeeded is delivered; one for an incident monitor does not
// hold is let go.
func TestVerifiedRepairResolvesItsIncident(t *testing.T) {
	e := newEnv(t)
	e.replica(t, monitor.Options{})
	e.send(t, []bus.Event{e.alert(1, 1, false)}, 1, 1)
	var id string
	require.Eventually(t, func() bool {
		return e.pool.QueryRow(context.Background(), `SELECT id::text FROM incidents`).Scan(&id) == nil
	}, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, 1, e.tally(t).unresolved)

	repaired := &eventsv1.RepairSucceeded{Meta: bus.NewMeta("repair", nil), RepairId: bus.NewID(), IncidentId: id}
	unknown := &eventsv1.RepairSucceeded{Meta: bus.NewMeta("repair", nil), RepairId: bus.NewID(), IncidentId: bus.NewID()}
	require.NoError(t, e.pub.Publish(context.Background(), unknown, repaired, repaired))
	require.Eventually(t, func() bool { return e.tally(t).unresolved == 0 }, 30*time.Second, 50*time.Millisecond)
	var resolved int
	require.Eventually(t, func() bool {
		s, err := e.js.Stream(context.Background(), "INCIDENTS")
		require.NoError(t, err)
		info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(bus.SubjectIncidentResolved))
		require.NoError(t, err)
		resolved = int(info.State.Subjects[bus.SubjectIncidentResolved])
		return resolved > 0
	}, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, 1, resolved, "one incident.resolved")
}
