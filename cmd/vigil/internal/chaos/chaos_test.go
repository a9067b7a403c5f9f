package chaos_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	"github.com/vigil-ops/vigil/pkg/testkit/faultproxy"

	"github.com/vigil-ops/vigil/pkg/testkit"
)

// chaosScale is how hard the chaos test pushes: `make test` runs the
// short one, `make chaos` (VIGIL_CHAOS=long) the long one.
type chaosScale struct {
	groups, alertsPerGroup, senders int
	// releases crash-loop and must be rolled back, every other one
	// automatically, the others approved in Telegram or Slack.
	releases int
	// pause is each sender's rest between repeats: the short run shares
	// two cores with the rest of `make test`.
	pause time.Duration
	// rounds is how many times the fault schedule runs.
	rounds int
}

func scale() chaosScale {
	if os.Getenv("VIGIL_CHAOS") == "long" {
		return chaosScale{groups: 200, alertsPerGroup: 20, senders: 8, rounds: 4, releases: 8}
	}
	return chaosScale{groups: 20, alertsPerGroup: 5, senders: 3, rounds: 1, releases: 4, pause: 20 * time.Millisecond}
}

// seed is VIGIL_CHAOS_SEED, to replay a run, or a new one.
func seed(t *testing.T) uint64 {
	t.Helper()
	if v := os.Getenv("VIGIL_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "VIGIL_CHAOS_SEED")
		return s
	}
	return uint64(time.Now().UnixNano())
}

// storm sends the alerts of groups through the gateways, over and over
// until stop, then resolves them all; each request is retried until the
// gateways accept it (202), as Alertmanager retries.
type storm struct {
	split  *Split
	scale  chaosScale
	client *http.Client

	mu       sync.Mutex
	requests int            // accepted requests
	alerts   int            // alerts in accepted requests
	refused  map[string]int // answers other than 202, by status
}

func groupName(g int) string { return fmt.Sprintf("Chaos%03d", g) }

func (s *storm) alertsOf(g int, status string, now time.Time, startsAt time.Time) []amAlert {
	out := make([]amAlert, s.scale.alertsPerGroup)
	for i := range out {
		out[i] = amAlert{Status: status, StartsAt: startsAt, Labels: map[string]string{
			"alertname": groupName(g), "namespace": "chaos", "pod": fmt.Sprintf("pod-%d", i), "severity": "warning",
		}}
		if status == "resolved" {
			out[i].EndsAt = now
		}
	}
	return out
}

// send posts until accepted.
func (s *storm) send(ctx context.Context, name, ns string, alerts []amAlert) {
	for ctx.Err() == nil {
		code := postAlerts(s.client, s.split.GatewayURL(), name, ns, alerts)
		s.mu.Lock()
		if code == http.StatusAccepted {
			s.requests++
			s.alerts += len(alerts)
			s.mu.Unlock()
			return
		}
		s.refused[strconv.Itoa(code)]++
		s.mu.Unlock()
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *storm) run(ctx context.Context, stop <-chan struct{}, rng *rand.Rand, startsAt time.Time) {
	var wg sync.WaitGroup
	// Every group fires at least once before the faults start to end.
	groups := make(chan int, s.scale.groups)
	for g := range s.scale.groups {
		groups <- g
	}
	close(groups)
	var rngMu sync.Mutex
	for range s.scale.senders {
		wg.Go(func() {
			for g := range groups {
				s.send(ctx, groupName(g), "chaos", s.alertsOf(g, "firing", time.Now(), startsAt))
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				rngMu.Lock()
				g := rng.IntN(s.scale.groups)
				rngMu.Unlock()
				// Repeats: the same alerts again, deduplicated.
				s.send(ctx, groupName(g), "chaos", s.alertsOf(g, "firing", time.Now(), startsAt))
				time.Sleep(s.scale.pause)
			}
		})
	}
	wg.Wait()
	for g := range s.scale.groups {
		s.send(ctx, groupName(g), "chaos", s.alertsOf(g, "resolved", time.Now(), startsAt))
	}
}

// fault is one kind of failure: inject breaks something and returns
// the repair, which returns once the thing is back.
type fault struct {
	kind   string
	inject func(t *testing.T, rng *rand.Rand) (what string, heal func())
}

func faults(s *Split) []fault {
	pick := func(rng *rand.Rand) *Replica {
		all := s.All()
		return all[rng.IntN(len(all))]
	}
	proxyOf := func(r *Replica, dep string) *faultproxy.Proxy {
		if dep == "nats" {
			return r.NATSProxy
		}
		return r.PGProxy
	}
	dep := func(rng *rand.Rand) string { return []string{"nats", "postgres"}[rng.IntN(2)] }
	return []fault{
		{kind: "kill -9 replica", inject: func(t *testing.T, rng *rand.Rand) (string, func()) {
			r := pick(rng)
			r.Kill()
			return r.String(), func() {
				time.Sleep(time.Duration(500+rng.IntN(2000)) * time.Millisecond)
				r.Start(t)
				r.WaitReady(t)
			}
		}},
		{kind: "kill -9 replica", inject: func(t *testing.T, rng *rand.Rand) (string, func()) {
			// Both replicas of a service at once: nobody takes over.
			svc := services[rng.IntN(len(services))]
			for _, r := range s.Replicas[svc] {
				r.Kill()
			}
			return svc + " (both)", func() {
				time.Sleep(time.Second)
				for _, r := range s.Replicas[svc] {
					r.Start(t)
				}
				for _, r := range s.Replicas[svc] {
					r.WaitReady(t)
				}
			}
		}},
		{kind: "NATS restart", inject: func(t *testing.T, _ *rand.Rand) (string, func()) {
			s.NATS.Stop()
			return "nats-server", func() {
				time.Sleep(2 * time.Second)
				s.NATS.Start(t)
			}
		}},
		{kind: "Postgres kill -9", inject: func(t *testing.T, _ *rand.Rand) (string, func()) {
			s.Postgres.Kill(t)
			return "postgres", func() {
				time.Sleep(2 * time.Second)
				s.Postgres.Start(t)
			}
		}},
		{kind: "latency", inject: func(_ *testing.T, rng *rand.Rand) (string, func()) {
			r, d := pick(rng), dep(rng)
			p := proxyOf(r, d)
			p.SetLatency(time.Duration(100+rng.IntN(400)) * time.Millisecond)
			return r.String() + "→" + d, func() {
				time.Sleep(3 * time.Second)
				p.SetLatency(0)
			}
		}},
		{kind: "connection reset", inject: func(_ *testing.T, rng *rand.Rand) (string, func()) {
			r := pick(rng)
			r.NATSProxy.ResetAll()
			r.PGProxy.ResetAll()
			return r.String(), func() {}
		}},
		{kind: "partition", inject: func(_ *testing.T, rng *rand.Rand) (string, func()) {
			r, d := pick(rng), dep(rng)
			p := proxyOf(r, d)
			mode := []faultproxy.Mode{faultproxy.Refuse, faultproxy.Blackhole}[rng.IntN(2)]
			p.SetMode(mode)
			return fmt.Sprintf("%s→%s (%s)", r, d, mode), func() {
				time.Sleep(5 * time.Second)
				p.Heal()
			}
		}},
	}
}

// recovery is the time from a fault's heal until a new alert became an
// incident, read back through the gateways.
func probe(t *testing.T, s *Split, n int) time.Duration {
	t.Helper()
	conn, ctx := s.Conn(t)
	incidents := monitorv1.NewIncidentServiceClient(conn)
	name := fmt.Sprintf("Probe%03d", n)
	began := time.Now()
	st := &storm{split: s, client: &http.Client{Timeout: 10 * time.Second}, refused: map[string]int{}}
	st.send(t.Context(), name, "probe", []amAlert{{Status: "firing", StartsAt: began, Labels: map[string]string{"alertname": name, "namespace": "probe"}}})
	require.Eventually(t, func() bool {
		resp, err := incidents.ListIncidents(ctx, &monitorv1.ListIncidentsRequest{Text: name})
		return err == nil && len(resp.GetIncidents()) == 1
	}, 3*time.Minute, 100*time.Millisecond, "probe %s became an incident", name)
	return time.Since(began)
}

// TestChaosSplitMode runs every service as two `vigil serve` replicas,
// sends a storm of alerts (fired, repeated, resolved) through the
// gateways, and meanwhile kills replicas, restarts NATS, kills Postgres
// and cuts, slows and resets the replicas' connections, on a schedule
// from a seeded RNG (VIGIL_CHAOS_SEED replays one). Then, through the API
// and the fakes and read-only in the services' tables: every accepted
// alert stored once, one incident per group, every resolve applied, one
// analysis per incident, exactly one message per event per chat, no
// stuck leases or queues, counters equal to a recount.
func TestChaosSplitMode(t *testing.T) {
	sd := seed(t)
	t.Logf("seed %d (VIGIL_CHAOS_SEED=%d replays the schedule)", sd, sd)
	rng := rand.New(rand.NewPCG(sd, sd))
	sc := scale()
	s := StartSplit(t, SplitOptions{Replicas: 2, Binary: vigilBinary(t, testkit.RepoRoot(t))})
	pool := s.Postgres.Pool(t)
	conn, ctx := s.Conn(t)
	onboard(ctx, t, conn)
	// Crash-looping releases, prepared before the faults (deploys are
	// not what this test breaks); rolled back while they happen.
	var rels []release
	for i := range sc.releases {
		rels = append(rels, release{name: fmt.Sprintf("rel-%d", i), auto: i%2 == 0, bySlack: i%4 == 1})
	}
	t.Run("prepare", func(t *testing.T) {
		for _, r := range rels {
			t.Run(r.name, func(t *testing.T) {
				t.Parallel()
				r.prepare(ctx, t, conn)
			})
		}
	})
	require.False(t, t.Failed(), "the releases are ready")
	relCtx, relCancel := context.WithTimeout(ctx, 10*time.Minute)
	defer relCancel()
	releasesDone := runReleases(relCtx, t, s, conn, rels)

	st := &storm{split: s, scale: sc, client: &http.Client{Timeout: 10 * time.Second}, refused: map[string]int{}}
	stop := make(chan struct{})
	stormDone := make(chan struct{})
	startsAt := time.Now()
	go func() {
		defer close(stormDone)
		st.run(t.Context(), stop, rand.New(rand.NewPCG(sd+1, sd+1)), startsAt)
	}()

	// The faults, one after the other, each healed and probed before the
	// next: how long until a new alert became an incident again.
	injected := map[string]int{}
	recovery := map[string][]time.Duration{}
	probes := 0
	for round := range sc.rounds {
		schedule := faults(s)
		rng.Shuffle(len(schedule), func(i, j int) { schedule[i], schedule[j] = schedule[j], schedule[i] })
		for _, f := range schedule {
			time.Sleep(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
			what, heal := f.inject(t, rng)
			t.Logf("round %d: %s: %s", round, f.kind, what)
			injected[f.kind]++
			heal()
			probes++
			recovery[f.kind] = append(recovery[f.kind], probe(t, s, probes))
		}
	}
	close(stop)
	select {
	case <-stormDone:
	case <-time.After(5 * time.Minute):
		require.FailNow(t, "the storm's sends did not end in 5 minutes")
	}

	require.Empty(t, releasesDone(), "every release alerted and, where asked, approved")
	repairs := checkReleases(ctx, t, conn, rels)

	// Drained: every group's incident resolved, through the gateways.
	incidents := monitorv1.NewIncidentServiceClient(conn)
	require.Eventually(t, func() bool {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM monitor.incidents WHERE title LIKE 'Chaos% in chaos' AND status = 'resolved'`).Scan(&n)
		return err == nil && n >= sc.groups
	}, 5*time.Minute, 500*time.Millisecond, "every group's incident resolved")
	resp, err := incidents.ListIncidents(ctx, &monitorv1.ListIncidentsRequest{Text: groupName(0)})
	require.NoError(t, err)
	require.Len(t, resp.GetIncidents(), 1, "through the API too")

	r := check(t, s, pool, sc, probes)
	st.mu.Lock()
	t.Logf("figures: seed %d; faults injected %v; requests accepted %d (%d alerts), refused %v; groups %d, incidents %d, analyses %d, releases %d, repairs %d, messages %v; alerts lost %d, duplicated %d; messages duplicated %d",
		sd, injected, st.requests, st.alerts, st.refused, sc.groups+probes, r.incidents, r.analyses, len(rels), repairs, r.messages, r.lost, r.duplicated, r.dupMessages)
	st.mu.Unlock()
	for _, kind := range slices.Sorted(maps.Keys(recovery)) {
		t.Logf("figures: recovery after %s: %v", kind, recovery[kind])
	}
}

// checked are the figures the checks counted.
type checked struct {
	incidents, analyses int
	lost, duplicated    int
	dupMessages         int
	messages            map[string]int
}

// check asserts the invariants, read-only, as the superuser in the
// services' own tables and at the fakes.
func check(t *testing.T, s *Split, pool *pgxpool.Pool, sc chaosScale, probes int) checked {
	t.Helper()
	ctx := t.Context()
	var r checked
	count := func(sql string, args ...any) int {
		t.Helper()
		var n int
		require.NoError(t, pool.QueryRow(ctx, sql, args...).Scan(&n), sql)
		return n
	}

	// Every accepted alert stored once: each group's alerts, one row per
	// fingerprint, in the group's one incident.
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM monitor.incidents WHERE title LIKE 'Chaos% in chaos' OR title LIKE 'Probe% in probe'`).Scan(&r.incidents))
	for g := range sc.groups {
		title := groupName(g) + " in chaos"
		assert.Equal(t, 1, count(`SELECT count(*) FROM monitor.incidents WHERE title = $1`, title), "one incident for %s", title)
		var rows, distinct, firing int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT a.fingerprint), count(*) FILTER (WHERE a.status = 'firing')
			FROM monitor.alerts a JOIN monitor.incidents i ON i.id = a.incident_id WHERE i.title = $1`, title).Scan(&rows, &distinct, &firing))
		r.lost += max(0, sc.alertsPerGroup-distinct)
		r.duplicated += rows - distinct
		assert.Equal(t, sc.alertsPerGroup, rows, "%s: every accepted alert stored once", title)
		assert.Zero(t, firing, "%s: every resolve applied", title)
	}
	for n := 1; n <= probes; n++ {
		assert.Equal(t, 1, count(`SELECT count(*) FROM monitor.incidents WHERE title = $1`, fmt.Sprintf("Probe%03d in probe", n)))
	}
	// Counters kept by deltas equal a recount.
	assert.Zero(t, count(`SELECT count(*) FROM monitor.incidents i WHERE
		i.alert_count <> (SELECT count(*) FROM monitor.alerts a WHERE a.incident_id = i.id) OR
		i.firing_count <> (SELECT count(*) FROM monitor.alerts a WHERE a.incident_id = i.id AND a.status = 'firing')`),
		"incident counters equal a recount")

	// One analysis per incident opening, none waiting or leased.
	require.Eventually(t, func() bool {
		return count(`SELECT count(*) FROM analysis.jobs`) == 0
	}, 3*time.Minute, time.Second, "every analysis done")
	incidents := count(`SELECT count(*) FROM monitor.incidents`)
	assert.Eventually(t, func() bool {
		return count(`SELECT count(DISTINCT incident_id) FROM analysis.analyses`) == incidents
	}, 2*time.Minute, time.Second, "every incident analysed")
	r.analyses = count(`SELECT count(*) FROM analysis.analyses`)
	assert.Zero(t, count(`SELECT count(*) FROM (SELECT incident_id FROM analysis.analyses GROUP BY incident_id HAVING count(*) > 1) d`), "one analysis per incident")
	if t.Failed() {
		t.Logf("incidents without an analysis: %v", column(t, pool, `SELECT title || ' opened ' || opened_at::text FROM monitor.incidents i
			WHERE NOT EXISTS (SELECT 1 FROM analysis.analyses a WHERE a.incident_id = i.id)`))
	}

	// No stuck queues: every outbox relayed, every delivery final.
	outboxes := column(t, pool, `SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox'`)
	require.NotEmpty(t, outboxes)
	for _, schema := range outboxes {
		require.Eventually(t, func() bool {
			return count(fmt.Sprintf(`SELECT count(*) FROM %s.outbox`, pgx.Identifier{schema}.Sanitize())) == 0
		}, 2*time.Minute, 500*time.Millisecond, "%s's outbox relayed", schema)
	}
	require.Eventually(t, func() bool {
		return count(`SELECT count(*) FROM notify.deliveries WHERE status IN ('queued', 'sending', 'retrying')`) == 0
	}, 3*time.Minute, 500*time.Millisecond, "every delivery final")
	assert.Zero(t, count(`SELECT count(*) FROM notify.deliveries WHERE status IN ('failed', 'unknown')`), "no delivery failed or in doubt")
	assert.Zero(t, count(`SELECT count(*) FROM repair.repairs WHERE locked_until > now()`), "no repair leased")

	// Exactly one message per event per chat: every message a fake holds
	// is one sent delivery's, and no delivery's message is another's.
	r.messages = map[string]int{}
	for ch, ps := range s.Posts() {
		r.messages[ch] = len(ps)
		ids := column(t, pool, `SELECT message_id FROM notify.deliveries WHERE channel = $1 AND status = 'sent' AND message_id <> ''`, ch)
		recorded := map[string]int{}
		for _, id := range ids {
			recorded[id]++
		}
		var unrecorded []string
		for _, p := range ps {
			if recorded[p.ID] == 0 {
				unrecorded = append(unrecorded, fmt.Sprintf("%s (reply to %s): %q", p.ID, p.Thread, p.Text))
			}
		}
		r.dupMessages += len(unrecorded)
		// A delivery may edit a message another posted (a decided card),
		// so one message can be several deliveries'; a post no delivery
		// recorded was sent twice.
		assert.Empty(t, unrecorded, "%s: messages posted that no delivery recorded (a post repeated after a crash)", ch)
	}
	for g := range sc.groups {
		title := groupName(g) + " in chaos"
		for ch, n := range s.announced(title) {
			assert.Positive(t, n, "%s announced in %s", title, ch)
		}
	}
	return r
}

// strings is the text column of sql's rows.
func column(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), sql, args...)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}
