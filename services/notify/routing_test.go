package notify

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/testkit/fakeslack"
	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/channel/slack"
	"github.com/vigil-ops/vigil/services/notify/channel/telegram"
	"github.com/vigil-ops/vigil/services/notify/route"
)

const (
	routeChat  = "-1001234567890"
	routeSlack = "C0ALERTS1"
)

// routed is notify sending to a Telegram chat (channel "telegram") and a
// Slack channel ("slack"), with routes applied through RouteService.
type routed struct {
	pool *pgxpool.Pool
	js   jetstream.JetStream
	tg   *faketelegram.Server
	sl   *fakeslack.Server
	opts Options
	// reload is the replicas' SIGHUP.
	reload chan struct{}
}

func newRouted(t *testing.T) *routed {
	t.Helper()
	pool, err := db.Open(context.Background(), testkit.Postgres(t), Schema)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, js := testkit.JetStream(t, testkit.NATS(t))
	tg := faketelegram.New(t, faketelegram.Options{ChatIDs: []string{routeChat}})
	sl := fakeslack.New(t, fakeslack.Options{Channels: []fakeslack.Channel{{ID: routeSlack, Name: "alerts"}}})
	// No re-announcement but those a test asks for (repeatDue).
	opts := Options{MaxDeliver: 5, ReplyWait: 10 * time.Second, RepeatCheck: time.Hour, Channels: []channel.Config{
		telegram.Options{BotToken: tg.Token(), ChatID: routeChat, APIURL: tg.URL()},
		slack.Options{BotToken: sl.BotToken(), Channel: routeSlack, APIURL: sl.APIURL()},
	}}
	return &routed{pool: pool, js: js, tg: tg, sl: sl, opts: opts, reload: make(chan struct{})}
}

// run starts a notify replica over r's database and bus.
func (r *routed) run(t *testing.T) *Service {
	t.Helper()
	s, err := New(context.Background(), r.opts, Deps{Pool: r.pool, JetStream: r.js, Logger: testkit.Logger(t), Reload: r.reload})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return s
}

func (r *routed) apply(t *testing.T, s *Service, doc string) {
	t.Helper()
	cfg := parseDoc(t, doc)
	cur, err := s.RouteServer().GetRoutes(context.Background(), &notifyv1.GetRoutesRequest{})
	require.NoError(t, err)
	_, err = s.RouteServer().ApplyRoutes(context.Background(), &notifyv1.ApplyRoutesRequest{Config: cfg, Version: cur.GetCurrent().GetVersion()})
	require.NoError(t, err)
}

func parseDoc(t *testing.T, doc string) *notifyv1.RoutingConfig {
	t.Helper()
	cfg, err := route.Parse([]byte(doc))
	require.NoError(t, err)
	return cfg
}

func (r *routed) publish(t *testing.T, e bus.Event) {
	t.Helper()
	require.NoError(t, bus.NewPublisher(r.js, nil).Publish(context.Background(), e))
}

// sentOn are the channels an event was sent on, once its delivery on
// each of want is recorded.
func (r *routed) sentOn(t *testing.T, eventID string, want ...string) []string {
	t.Helper()
	var got []string
	require.Eventually(t, func() bool {
		rows, err := r.pool.Query(context.Background(), `SELECT channel FROM deliveries WHERE event_id = $1 AND status = 'sent' ORDER BY channel`, eventID)
		require.NoError(t, err)
		got = got[:0]
		for rows.Next() {
			var c string
			require.NoError(t, rows.Scan(&c))
			got = append(got, c)
		}
		require.NoError(t, rows.Err())
		return len(got) >= len(want)
	}, 30*time.Second, 20*time.Millisecond)
	return got
}

func incident(team, title string, labels map[string]string) *eventsv1.IncidentOpened {
	return &eventsv1.IncidentOpened{Meta: bus.NewMeta("monitor", nil), Incident: &typesv1.Incident{
		Id: uuid.NewString(), Title: title, Team: team, Severity: typesv1.Severity_SEVERITY_CRITICAL,
		Status: typesv1.IncidentStatus_INCIDENT_STATUS_OPEN, FiringCount: 1, AlertCount: 1, OpenedAt: timestamppb.Now(),
		GroupLabels: labels,
	}}
}

const twoTeams = `
route:
  receivers: [telegram, slack]
  routes:
    - name: team-a
      teams: [team-a]
      receivers: [telegram]
    - name: team-b
      teams: [team-b]
      receivers: [slack]
`

// Two teams' routes: team-a's incident goes to team-a's channel only, and
// team-b's to team-b's, whatever team label the sender set; the
// incident's replies follow it.
func TestRoutesByTeam(t *testing.T) {
	t.Parallel()
	r := newRouted(t)
	s := r.run(t)
	r.apply(t, s, twoTeams)

	a := incident("team-a", "A down", map[string]string{"alertname": "KubePodCrashLooping"})
	r.publish(t, a)
	require.Equal(t, []string{"telegram"}, r.sentOn(t, a.GetMeta().GetId(), "telegram"))
	// A label cannot move an incident to another team.
	b := incident("team-b", "B down", map[string]string{"alertname": "KubePodCrashLooping", "team": "team-a"})
	r.publish(t, b)
	require.Equal(t, []string{"slack"}, r.sentOn(t, b.GetMeta().GetId(), "slack"))

	// An analysis of team-a's incident is a reply where it was announced.
	an := &eventsv1.AnalysisCompleted{Meta: bus.NewMeta("analysis", nil), IncidentId: a.GetIncident().GetId(), Summary: "OOM"}
	r.publish(t, an)
	require.Equal(t, []string{"telegram"}, r.sentOn(t, an.GetMeta().GetId(), "telegram"))

	tg := r.tg.Messages()
	require.Len(t, tg, 2)
	require.Contains(t, tg[0].PlainText, "A down")
	require.Equal(t, tg[0].MessageID, tg[1].ReplyToMessageID)
	sl := r.sl.Messages()
	require.Len(t, sl, 1)
	require.Contains(t, sl[0].Text, "B down")
}

// continue: a route that matched lets the next one match too.
func TestRoutesContinue(t *testing.T) {
	t.Parallel()
	r := newRouted(t)
	s := r.run(t)
	r.apply(t, s, `
route:
  routes:
    - teams: [team-a]
      receivers: [telegram]
      continue: true
    - matchers: ['alertname=~"Kube.*"']
      receivers: [slack]
`)
	a := incident("team-a", "A down", map[string]string{"alertname": "KubePodCrashLooping"})
	r.publish(t, a)
	require.Equal(t, []string{"slack", "telegram"}, r.sentOn(t, a.GetMeta().GetId(), "slack", "telegram"))
}

// A route's language and time zone reach the message, although the
// channel's queue sends it later by the channel's name: team-a's route
// speaks Traditional Chinese in Taipei time on a channel that speaks
// English, and the default route keeps the channel's English.
func TestRouteLocaleSurvivesTheQueue(t *testing.T) {
	t.Parallel()
	r := newRouted(t)
	s := r.run(t)
	r.apply(t, s, `
route:
  receivers: [telegram]
  routes:
    - teams: [team-a]
      receivers: [telegram]
      language: zh-TW
      time_zone: Asia/Taipei
`)
	a := incident("team-a", "A down", nil)
	r.publish(t, a)
	r.sentOn(t, a.GetMeta().GetId(), "telegram")
	b := incident("team-b", "B down", nil)
	r.publish(t, b)
	r.sentOn(t, b.GetMeta().GetId(), "telegram")

	var language, zone string
	require.NoError(t, r.pool.QueryRow(context.Background(), `SELECT language, time_zone FROM deliveries WHERE event_id = $1`,
		a.GetMeta().GetId()).Scan(&language, &zone))
	require.Equal(t, []string{"zh-TW", "Asia/Taipei"}, []string{language, zone}, "queued with its route's locale")
	tg := r.tg.Messages()
	require.Len(t, tg, 2)
	require.Contains(t, tg[0].PlainText, "事件發生：A down", "team-a's route speaks zh-TW")
	require.Contains(t, tg[1].PlainText, "Incident opened: B down", "the default route, the channel's English")
}

// Without routes, every channel hears about everything, as before routes.
func TestNoRoutesEveryChannel(t *testing.T) {
	t.Parallel()
	r := newRouted(t)
	r.run(t)
	a := incident("team-a", "A down", nil)
	r.publish(t, a)
	require.Equal(t, []string{"slack", "telegram"}, r.sentOn(t, a.GetMeta().GetId(), "slack", "telegram"))
}

// An incident still firing is announced again once per repeat interval
// and channel, whichever replica looks, until it is acknowledged or
// resolved.
func TestRepeatInterval(t *testing.T) {
	t.Parallel()
	r := newRouted(t)
	s1 := r.run(t)
	s2 := r.run(t)
	r.apply(t, s1, `
route:
  receivers: [telegram]
  repeat_interval: 1h
  routes:
    - teams: [quiet]
      repeat_interval: "0"
`)
	require.NoError(t, s2.loadRoutes(context.Background()))
	ctx := context.Background()
	a := incident("team-a", "A down", nil)
	quiet := incident("quiet", "Q down", nil)
	r.publish(t, a)
	r.publish(t, quiet)
	r.sentOn(t, a.GetMeta().GetId(), "telegram")
	r.sentOn(t, quiet.GetMeta().GetId(), "telegram")
	opened := a.GetIncident().GetOpenedAt().AsTime()
	var first int64
	for _, m := range r.tg.Messages() {
		if strings.Contains(m.PlainText, "A down") {
			first = m.MessageID
		}
	}
	require.NotZero(t, first)
	stillFiring := func() int {
		n := 0
		for _, m := range r.tg.Messages() {
			if strings.HasPrefix(m.PlainText, "🔁 Still firing: A down") {
				require.Equal(t, first, m.ReplyToMessageID, "in the incident's thread")
				n++
			}
		}
		require.Len(t, r.tg.Messages(), 2+n, "nothing else, and nothing of the quiet incident")
		return n
	}

	id := a.GetIncident().GetId()
	s1.repeatDue(ctx, opened.Add(59*time.Minute))
	require.Zero(t, r.repeatsQueued(t, id), "not due yet")
	require.Zero(t, stillFiring())
	for _, s := range []*Service{s1, s2, s1} {
		s.repeatDue(ctx, opened.Add(61*time.Minute))
	}
	s2.repeatDue(ctx, opened.Add(119*time.Minute))
	r.sentOn(t, repeatID(id, 1), "telegram")
	require.Equal(t, 1, r.repeatsQueued(t, id), "one delivery for the first interval, across replicas")
	require.Equal(t, 1, stillFiring(), "sent once")
	s2.repeatDue(ctx, opened.Add(121*time.Minute))
	r.sentOn(t, repeatID(id, 2), "telegram")
	require.Equal(t, 2, stillFiring())

	// Acknowledged: no more.
	r.acknowledge(t, s1, a)
	s1.repeatDue(ctx, opened.Add(181*time.Minute))
	require.Equal(t, 2, r.repeatsQueued(t, id), "none queued")
	require.Equal(t, 2, stillFiring())
}

// acknowledge has a person acknowledge inc, and waits until s knows.
func (r *routed) acknowledge(t *testing.T, s *Service, inc *eventsv1.IncidentOpened) {
	t.Helper()
	ack := &eventsv1.IncidentUpdated{Meta: bus.NewMeta("monitor", nil), Incident: inc.GetIncident()}
	ack.Incident.Status = typesv1.IncidentStatus_INCIDENT_STATUS_ACKNOWLEDGED
	r.publish(t, ack)
	require.Eventually(t, func() bool {
		got, _, err := s.incidents.Get(context.Background(), inc.GetIncident().GetId())
		require.NoError(t, err)
		return got.Acknowledged
	}, 30*time.Second, 20*time.Millisecond)
}

// repeatsQueued is how many re-announcements of incident id were queued
// on any channel.
func (r *routed) repeatsQueued(t *testing.T, id string) int {
	t.Helper()
	var n int
	require.NoError(t, r.pool.QueryRow(context.Background(), `SELECT count(*) FROM deliveries WHERE event_id LIKE $1`, "repeat/"+id+"/%").Scan(&n))
	return n
}

// A re-announcement goes through its channel's queue: while the channel
// is paused (a rate limit, say) it waits there, and goes out once the
// pause ends; one acknowledged while it waited is not sent.
func TestRepeatWaitsForAPausedChannel(t *testing.T) {
	t.Parallel()
	r := newRouted(t)
	s := r.run(t)
	r.apply(t, s, `
route:
  receivers: [telegram]
  repeat_interval: 1h
`)
	ctx := context.Background()
	a := incident("team-a", "A down", nil)
	b := incident("team-a", "B down", nil)
	r.publish(t, a)
	r.publish(t, b)
	r.sentOn(t, a.GetMeta().GetId(), "telegram")
	r.sentOn(t, b.GetMeta().GetId(), "telegram")
	require.Len(t, r.tg.Messages(), 2)

	require.NoError(t, s.deliveries.Pause(ctx, "telegram", time.Now().Add(time.Hour), "rate limited"))
	for _, e := range []*eventsv1.IncidentOpened{a, b} {
		s.repeatDue(ctx, e.GetIncident().GetOpenedAt().AsTime().Add(61*time.Minute))
	}
	require.Equal(t, "queued", r.status(t, repeatID(a.GetIncident().GetId(), 1)))
	// Its sender looks (woken by the queueing) and leaves it while paused.
	require.Never(t, func() bool { return len(r.tg.Messages()) > 2 }, 2*time.Second, 100*time.Millisecond, "held back by the pause")
	require.Equal(t, "queued", r.status(t, repeatID(a.GetIncident().GetId(), 1)))

	r.acknowledge(t, s, b)

	_, err := r.pool.Exec(ctx, `DELETE FROM channel_pauses WHERE channel = 'telegram'`)
	require.NoError(t, err)
	s.senders.wakeAll()
	r.sentOn(t, repeatID(a.GetIncident().GetId(), 1), "telegram")
	require.Eventually(t, func() bool { return r.status(t, repeatID(b.GetIncident().GetId(), 1)) == "failed" }, 30*time.Second, 20*time.Millisecond,
		"the acknowledged incident's is dropped")
	msgs := r.tg.Messages()
	require.Len(t, msgs, 3)
	require.True(t, strings.HasPrefix(msgs[2].PlainText, "🔁 Still firing: A down"), msgs[2].PlainText)
}

// status is the status of delivery eventID on telegram.
func (r *routed) status(t *testing.T, eventID string) string {
	t.Helper()
	var st string
	require.NoError(t, r.pool.QueryRow(context.Background(), `SELECT status FROM deliveries WHERE event_id = $1 AND channel = 'telegram'`, eventID).Scan(&st))
	return st
}

// A routing file is applied at start and is in charge: an apply through
// the API is refused, and changes nothing.
func TestRoutesFileRefusesAPI(t *testing.T) {
	t.Parallel()
	r := newRouted(t)
	r.opts.RoutesFile = filepath.Join(t.TempDir(), "routes.yaml")
	require.NoError(t, os.WriteFile(r.opts.RoutesFile, []byte(twoTeams), 0o600))
	s := r.run(t)
	// A second replica with the same file applies nothing more. Only the
	// first hears reloads: each is handled before the next is taken.
	reload := r.reload
	r.reload = nil
	r.run(t)

	got, err := s.RouteServer().GetRoutes(context.Background(), &notifyv1.GetRoutesRequest{History: 5})
	require.NoError(t, err)
	require.Equal(t, int64(1), got.GetCurrent().GetVersion())
	require.Empty(t, got.GetHistory())
	require.Equal(t, "file:"+r.opts.RoutesFile, got.GetCurrent().GetAppliedBy())
	require.Equal(t, r.opts.RoutesFile, got.GetFile())

	_, err = s.RouteServer().ApplyRoutes(context.Background(), &notifyv1.ApplyRoutesRequest{
		Config: parseDoc(t, "route:\n  receivers: [slack]\n"), Version: 1,
	})
	require.Equal(t, codes.FailedPrecondition, status.Code(err))
	require.Contains(t, status.Convert(err).Message(), "VIGIL_ROUTES_FILE")
	after, err := s.RouteServer().GetRoutes(context.Background(), &notifyv1.GetRoutesRequest{})
	require.NoError(t, err)
	require.Equal(t, int64(1), after.GetCurrent().GetVersion(), "nothing applied")

	a := incident("team-a", "A down", nil)
	r.publish(t, a)
	require.Equal(t, []string{"telegram"}, r.sentOn(t, a.GetMeta().GetId(), "telegram"))

	// SIGHUP: a file with a mistake changes nothing; a good one is
	// applied as the next version.
	require.NoError(t, os.WriteFile(r.opts.RoutesFile, []byte("route:\n  receivers: [pagerduty]\n"), 0o600))
	reload <- struct{}{}
	reload <- struct{}{} // taken once the first was handled
	require.NoError(t, os.WriteFile(r.opts.RoutesFile, []byte("route:\n  receivers: [slack]\n"), 0o600))
	reload <- struct{}{}
	reload <- struct{}{} // the same file again: nothing new
	require.Eventually(t, func() bool {
		got, err := s.RouteServer().GetRoutes(context.Background(), &notifyv1.GetRoutesRequest{History: 5})
		require.NoError(t, err)
		return got.GetCurrent().GetVersion() == 2
	}, 30*time.Second, 20*time.Millisecond)
	got, err = s.RouteServer().GetRoutes(context.Background(), &notifyv1.GetRoutesRequest{History: 5})
	require.NoError(t, err)
	require.Equal(t, []string{"slack"}, got.GetCurrent().GetConfig().GetRoute().GetReceivers())
	require.Len(t, got.GetHistory(), 1, "the bad file and the same one applied nothing")
}

// RouteService refuses a tree naming a channel that does not exist, or
// applied over a stale version, and changes nothing; TestRoutes says where
// an event would go, and why.
func TestRouteService(t *testing.T) {
	t.Parallel()
	r := newRouted(t)
	s := r.run(t)
	api := s.RouteServer()
	ctx := context.Background()

	test, err := api.TestRoutes(ctx, &notifyv1.TestRoutesRequest{Team: "team-a"})
	require.NoError(t, err)
	require.Equal(t, []string{"telegram", "slack"}, test.GetChannels(), "no routes: every channel")

	_, err = api.ApplyRoutes(ctx, &notifyv1.ApplyRoutesRequest{Config: parseDoc(t, "route:\n  receivers: [pagerduty]\n")})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Contains(t, err.Error(), "no channel named pagerduty")
	got, err := api.GetRoutes(ctx, &notifyv1.GetRoutesRequest{})
	require.NoError(t, err)
	require.Nil(t, got.GetCurrent())

	r.apply(t, s, twoTeams)
	_, err = api.ApplyRoutes(ctx, &notifyv1.ApplyRoutesRequest{Config: parseDoc(t, "route:\n  receivers: [slack]\n"), Version: 0})
	require.Equal(t, codes.Aborted, status.Code(err))
	got, err = api.GetRoutes(ctx, &notifyv1.GetRoutesRequest{})
	require.NoError(t, err)
	require.Equal(t, int64(1), got.GetCurrent().GetVersion())

	test, err = api.TestRoutes(ctx, &notifyv1.TestRoutesRequest{
		Team: "team-b", Labels: map[string]string{"team": "team-a"}, Kind: "repair.failed",
	})
	require.NoError(t, err)
	require.Equal(t, []string{"slack"}, test.GetChannels())
	require.Equal(t, "route.routes[1]", test.GetMatches()[0].GetPath())
	require.Equal(t, []string{"team is team-b"}, test.GetMatches()[0].GetWhy())

	_, err = api.TestRoutes(ctx, &notifyv1.TestRoutesRequest{Kind: "incident.closed", Priority: "high"})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}
