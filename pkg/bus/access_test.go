package bus_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// The locked bus, embedded (vigil up) and as an external nats-server run
// with the shipped deploy/nats/nats.conf: nobody gets in without a password,
// and each user may do what its role needs and nothing else.
func TestLockedBus(t *testing.T) {
	t.Parallel()
	for _, server := range []struct {
		name  string
		start func(testing.TB) *testkit.Bus
	}{
		{"embedded", testkit.LockedNATS},
		{"external", testkit.ExternalNATS},
	} {
		t.Run(server.name, func(t *testing.T) {
			t.Parallel()
			b := server.start(t)

			t.Run("no credentials", func(t *testing.T) {
				t.Parallel()
				_, err := nats.Connect(b.URL, nats.NoReconnect())
				require.ErrorIs(t, err, nats.ErrAuthorization)
			})
			t.Run("wrong password", func(t *testing.T) {
				t.Parallel()
				for _, u := range bus.Users() {
					_, err := nats.Connect(b.URL, nats.UserInfo(u, b.Passwords[u]+"x"), nats.NoReconnect())
					require.ErrorIs(t, err, nats.ErrAuthorization, u)
				}
				_, err := nats.Connect(b.URL, nats.UserInfo("gateway", b.Passwords["monitor"]), nats.NoReconnect())
				require.ErrorIs(t, err, nats.ErrAuthorization, "another user's password")
			})
			for _, r := range bus.Roles {
				t.Run(r.User, func(t *testing.T) {
					t.Parallel()
					testRole(t, b, r)
				})
			}
			t.Run("producer check", func(t *testing.T) {
				t.Parallel()
				// A server of its own: its "notify" consumer would
				// otherwise share the durable of the notify role's
				// subtest, and take its events.
				testProducerCheck(t, server.start(t))
			})
		})
	}
}

// probe is a connection as one user that hears the server's refusals.
type probe struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	errs chan error
}

func dial(t *testing.T, b *testkit.Bus, user string) *probe {
	t.Helper()
	p := &probe{errs: make(chan error, 16)}
	nc, err := nats.Connect(b.URL,
		nats.UserInfo(user, b.Passwords[user]),
		nats.CustomInboxPrefix(bus.InboxPrefix(user)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { p.errs <- err }),
	)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	p.nc = nc
	p.js, err = jetstream.New(nc)
	require.NoError(t, err)
	return p
}

// refused waits for the server's asynchronous "Permissions Violation for
// <op> to <subject>"; the flush before guarantees it was sent if it is
// coming at all.
func (p *probe) refused(t *testing.T, op, subject string) {
	t.Helper()
	require.NoError(t, p.nc.Flush())
	want := strings.ToLower(fmt.Sprintf("%s to %q", op, subject))
	select {
	case err := <-p.errs:
		require.ErrorIs(t, err, nats.ErrPermissionViolation)
		require.Contains(t, strings.ToLower(err.Error()), want)
	case <-time.After(10 * time.Second):
		t.Fatalf("%s to %s: no permissions violation", op, subject)
	}
}

func (p *probe) refusedPublish(t *testing.T, subject string) {
	t.Helper()
	require.NoError(t, p.nc.Publish(subject, []byte("x")))
	p.refused(t, "publish", subject)
}

func (p *probe) refusedSubscribe(t *testing.T, subject string) {
	t.Helper()
	sub, err := p.nc.SubscribeSync(subject)
	require.NoError(t, err)
	p.refused(t, "subscription", subject)
	_ = sub.Unsubscribe()
}

func (p *probe) quiet(t *testing.T) {
	t.Helper()
	require.NoError(t, p.nc.Flush())
	select {
	case err := <-p.errs:
		t.Fatalf("unexpected error: %v", err)
	default:
	}
}

// event returns an encoded event on subject from producer: an event with
// its meta alone, which is field 1 of every event.
func event(t *testing.T, subject, producer string) bus.Message {
	t.Helper()
	data, err := proto.Marshal(&eventsv1.AlertFired{Meta: bus.NewMeta(producer, nil)})
	require.NoError(t, err)
	es, err := bus.Decode(subject, data)
	require.NoError(t, err)
	m, err := bus.Encode(context.Background(), es[0])
	require.NoError(t, err)
	return m
}

func testRole(t *testing.T, b *testkit.Bus, r bus.Role) {
	ctx := t.Context()
	p := dial(t, b, r.User)

	// Allowed: its own subjects, stored and acknowledged by JetStream.
	for _, s := range r.Publishes {
		ack, err := p.js.Publish(ctx, s, []byte("x"), jetstream.WithMsgID(bus.NewID()))
		require.NoError(t, err, "%s publishes %s", r.User, s)
		require.NotEmpty(t, ack.Stream)
	}
	// Allowed: dead-lettering what it consumes.
	for _, s := range r.Consumes {
		_, err := p.js.Publish(ctx, bus.DLQPrefix+s, []byte("x"), jetstream.WithMsgID(bus.NewID()))
		require.NoError(t, err, "%s dead-letters %s", r.User, s)
	}
	// Allowed: its durable consumer on each stream it reads, pulling and
	// acknowledging, through bus.Consumer as the services run it.
	if len(r.Consumes) > 0 {
		_, js := b.Conn(t, r.User)
		_, admin := b.Conn(t, bus.UserAdmin)
		byStream := map[string][]string{}
		for _, s := range r.Consumes {
			st := streamOf(t, s)
			byStream[st] = append(byStream[st], s)
		}
		for st, subjects := range byStream {
			got := make(chan string, 64)
			h := bus.BatchHandlerFunc(func(_ context.Context, ds []*bus.Delivery) []error {
				for _, d := range ds {
					got <- d.Event.GetMeta().GetId()
				}
				return make([]error, len(ds))
			})
			runConsumer(t, js, bus.ConsumerConfig{Name: r.User, Subjects: subjects, StartWithin: time.Nanosecond}, h)
			e := event(t, subjects[0], ownerOf(subjects[0]))
			require.NoError(t, bus.NewPublisher(admin, nil).PublishMessages(ctx, e))
			// Other subtests publish on the same server: wait for this one.
			deadline := time.After(30 * time.Second)
			for seen := ""; seen != e.ID; {
				select {
				case seen = <-got:
				case <-deadline:
					t.Fatalf("%s: no delivery of %s on %s", r.User, subjects[0], st)
				}
			}
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				info, err := admin.Consumer(ctx, st, r.User)
				require.NoError(c, err)
				assert.Zero(c, info.CachedInfo().NumAckPending, "acknowledged")
			}, 10*time.Second, 20*time.Millisecond)
		}
	}
	// Allowed: watching its live subjects, as published by their owner.
	for _, s := range r.Watches {
		sub, err := p.nc.SubscribeSync(s)
		require.NoError(t, err)
		require.NoError(t, p.nc.Flush())
		_, admin := b.Conn(t, bus.UserAdmin)
		e := event(t, s, ownerOf(s))
		require.NoError(t, bus.NewPublisher(admin, nil).PublishMessages(ctx, e))
		m, err := sub.NextMsg(10 * time.Second)
		require.NoError(t, err, "%s watches %s", r.User, s)
		require.Equal(t, s, m.Subject)
		_ = sub.Unsubscribe()
	}
	p.quiet(t)

	// Refused: every other event subject.
	for _, s := range append(bus.EventSubjects(), bus.SubjectAlertBatched) {
		if !slices.Contains(r.Publishes, s) {
			p.refusedPublish(t, s)
		}
	}
	// Refused: dead letters of what it does not consume, reading
	// everything or another user's replies, the JetStream API beyond its
	// own consumers.
	for _, s := range bus.EventSubjects() {
		if !slices.Contains(r.Consumes, s) {
			p.refusedPublish(t, bus.DLQPrefix+s)
			break
		}
	}
	for _, s := range []string{">", "alert.>", "incident.>", "dlq.>", "_INBOX.>", "$JS.API.>"} {
		p.refusedSubscribe(t, s)
	}
	// Refused: watching any event it does not watch.
	for _, s := range append(bus.EventSubjects(), bus.SubjectAlertBatched) {
		if !slices.Contains(r.Watches, s) {
			p.refusedSubscribe(t, s)
		}
	}
	for _, other := range bus.Users() {
		if other != r.User {
			p.refusedSubscribe(t, bus.InboxPrefix(other)+".>")
		}
	}
	for _, s := range []string{
		"$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST",
		"$JS.API.STREAM.INFO.ALERTS",
		"$JS.API.STREAM.CREATE.ALERTS", "$JS.API.STREAM.UPDATE.ALERTS",
		"$JS.API.STREAM.DELETE.ALERTS", "$JS.API.STREAM.PURGE.ALERTS",
		"$JS.API.STREAM.MSG.DELETE.ALERTS", "$JS.API.STREAM.MSG.GET.ALERTS",
		"$JS.API.CONSUMER.DELETE.ALERTS.monitor",
		"$JS.API.CONSUMER.CREATE.ALERTS.x", "$JS.API.CONSUMER.MSG.NEXT.INCIDENTS.notify",
		"$JS.API.CONSUMER.LIST.ALERTS",
	} {
		// monitor drops what was acknowledged from ALERTS (see
		// TestAlertsKeepOnlyWhatWaits): it may read the stream, list its
		// consumers and purge it, and delete nothing else.
		trims := r.User == "monitor" && slices.Contains([]string{
			"$JS.API.STREAM.INFO.ALERTS", "$JS.API.CONSUMER.LIST.ALERTS", "$JS.API.STREAM.PURGE.ALERTS",
		}, s)
		if !trims && (r.User != "monitor" || !strings.HasSuffix(s, "ALERTS.monitor")) &&
			(r.User != "notify" || !strings.HasSuffix(s, "INCIDENTS.notify")) {
			p.refusedPublish(t, s)
		}
	}
	if r.External {
		p.refusedPublish(t, "$JS.API.INFO")
	}

	// The refused calls changed nothing.
	_, admin := b.Conn(t, bus.UserAdmin)
	var names []string
	for n := range admin.StreamNames(ctx).Name() {
		names = append(names, n)
	}
	require.Len(t, names, len(bus.Streams))
}

// An event whose meta.producer is not its subject's publisher is
// terminated and dead-lettered with the reason, not handled.
func testProducerCheck(t *testing.T, b *testkit.Bus) {
	ctx := t.Context()
	_, js := b.Conn(t, "notify")
	_, admin := b.Conn(t, bus.UserAdmin)
	handled := make(chan string, 4)
	h := bus.BatchHandlerFunc(func(_ context.Context, ds []*bus.Delivery) []error {
		for _, d := range ds {
			handled <- d.Event.GetMeta().GetProducer()
		}
		return make([]error, len(ds))
	})
	runConsumer(t, js, bus.ConsumerConfig{Name: "notify", Subjects: []string{bus.SubjectIncidentOpened}}, h)
	pub := bus.NewPublisher(admin, nil)
	forged := event(t, bus.SubjectIncidentOpened, "gateway")
	require.NoError(t, pub.PublishMessages(ctx, forged, event(t, bus.SubjectIncidentOpened, "monitor")))
	select {
	case producer := <-handled:
		require.Equal(t, "monitor", producer, "only monitor's event is handled")
	case <-time.After(30 * time.Second):
		t.Fatal("monitor's event not handled")
	}
	c, err := admin.OrderedConsumer(ctx, "DLQ", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"dlq.incident.opened"}})
	require.NoError(t, err)
	m, err := c.Next(jetstream.FetchMaxWait(30 * time.Second))
	require.NoError(t, err)
	require.Equal(t, "notify:"+forged.ID, m.Headers().Get(jetstream.MsgIDHeader))
	require.Contains(t, m.Headers().Get("Vigil-Dlq-Reason"), `producer "gateway"`)
	select {
	case producer := <-handled:
		t.Fatalf("forged event handled (producer %s)", producer)
	default:
	}
}

// ownerOf is the service that publishes subject.
func ownerOf(subject string) string {
	for _, r := range bus.Roles {
		if !r.External && slices.Contains(r.Publishes, subject) {
			return r.User
		}
	}
	return ""
}

// streamOf is the stream of subject.
func streamOf(t *testing.T, subject string) string {
	t.Helper()
	for _, s := range bus.Streams {
		for _, p := range s.Subjects {
			if strings.HasSuffix(p, ">") && strings.HasPrefix(subject, strings.TrimSuffix(p, ">")) {
				return s.Name
			}
		}
	}
	t.Fatalf("no stream for %s", subject)
	return ""
}
