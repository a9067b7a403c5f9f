package notify_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/testkit/fakeline"
	"github.com/vigil-ops/vigil/pkg/testkit/fakesmtp"
	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
	"github.com/vigil-ops/vigil/pkg/testkit/fakewebhook"
	"github.com/vigil-ops/vigil/services/notify"
	"github.com/vigil-ops/vigil/services/notify/channel/email"
	"github.com/vigil-ops/vigil/services/notify/channel/line"
)

// everywhere is notify's environment writing to every kind of channel:
// Telegram, Slack, LINE, a webhook and email.
type everywhere struct {
	*env
	ln   *fakeline.Server
	sink *fakewebhook.Sink
	smtp *fakesmtp.Server
}

func newEverywhere(t *testing.T) *everywhere {
	t.Helper()
	e := &everywhere{
		env: newEnv(t, chatID, channel), ln: fakeline.New(t, fakeline.Options{To: []string{lineTo}}),
		sink: fakewebhook.New(t, webhookSecret), smtp: fakesmtp.Start(t, fakesmtp.Options{}),
	}
	e.opts.Channels = append(e.opts.Channels,
		line.Options{ChannelToken: e.ln.Token(), To: lineTo, APIURL: e.ln.URL()},
		email.Options{
			Host: e.smtp.Host, Port: e.smtp.Port, TLS: email.TLSStartTLS, CAFile: e.smtp.CAFile(t),
			Username: fakesmtp.User, Password: fakesmtp.Password,
			From: "Vigil <vigil@ops.example.com>", To: []string{"oncall@example.com"},
		})
	e.withWebhook(e.sink, 0)
	return e
}

// counts are the messages each fake has, by channel kind.
func (e *everywhere) counts() map[string]int {
	return map[string]int{
		"telegram": len(e.tg.Messages()), "slack": len(e.sl.Messages()), "line": len(e.ln.Messages()),
		"webhook": len(e.sink.Accepted()), "email": len(e.smtp.Messages()),
	}
}

// each is n for every channel kind.
func each(n int) map[string]int {
	return map[string]int{"telegram": n, "slack": n, "line": n, "webhook": n, "email": n}
}

// conversation is an incident's events: opened, its analysis, a repair
// requested and succeeded (one stream, in this order), resolved.
func conversation(i int) []bus.Event {
	inc := opened()
	inc.Incident.Id = bus.NewID()
	inc.Incident.Title = fmt.Sprintf("DiskFull %d", i)
	id := inc.GetIncident().GetId()
	repair := bus.NewID()
	return []bus.Event{
		inc,
		completed(id),
		&eventsv1.RepairRequested{Meta: bus.NewMeta("repair", nil), RepairId: repair, IncidentId: id, Proposal: rollback()},
		&eventsv1.RepairSucceeded{Meta: bus.NewMeta("repair", nil), RepairId: repair, IncidentId: id, Proposal: rollback(), Verification: fmt.Sprintf("verified %d", i)},
		&eventsv1.IncidentResolved{Meta: bus.NewMeta("monitor", nil), Incident: inc.GetIncident()},
	}
}

// Two notify replicas on one database and stream, every event published
// and then redelivered (a copy JetStream would hand to either replica):
// each channel gets exactly one message per event; on Telegram an
// incident's messages answer its first; the webhook's ids are all
// different.
func TestTwoReplicasSendEachEventOncePerChannel(t *testing.T) {
	t.Parallel()
	e := newEverywhere(t)
	e.run(t)
	e.run(t)

	const incidents = 4
	var events []bus.Event
	for i := range incidents {
		c := conversation(i)
		e.publish(t, c...)
		events = append(events, c...)
	}
	for _, evt := range events {
		e.redeliver(t, evt)
	}
	want := each(len(events))
	require.Eventually(t, func() bool { return maps(e.counts(), want) }, 60*time.Second, 50*time.Millisecond, "%v", e.counts())
	require.Never(t, func() bool { return !maps(e.counts(), want) }, 2*time.Second, 100*time.Millisecond)

	ids := map[string]bool{}
	for _, r := range e.sink.Accepted() {
		assert.False(t, ids[r.Body.ID], "webhook message sent twice: %s", r.Body.ID)
		ids[r.Body.ID] = true
	}
	msgs := e.tg.Messages()
	for i := range incidents {
		title := fmt.Sprintf("DiskFull %d", i)
		first := slices.IndexFunc(msgs, func(m faketelegram.Message) bool { return strings.Contains(m.PlainText, "Incident opened: "+title) })
		require.GreaterOrEqual(t, first, 0, title)
		var replies int
		for _, m := range msgs {
			if m.ReplyToMessageID == msgs[first].MessageID {
				replies++
			}
		}
		assert.Equal(t, 4, replies, "the rest answers the incident's message")
	}
}

// One incident's messages on a channel go out in the order of their
// events, a retry included: the repair's success waits for its start,
// which Telegram refused once.
func TestIncidentMessagesKeepTheirOrder(t *testing.T) {
	t.Parallel()
	e := start(t, chatID)
	c := conversation(0)
	e.openIncident(t, c[0].(*eventsv1.IncidentOpened))
	e.tg.FailNext(1, 502)
	e.publish(t, c[2], c[3])
	msgs := e.tg.WaitForMessages(t, 3, 30*time.Second)
	assert.Contains(t, msgs[1].PlainText, "Repairing:")
	assert.Contains(t, msgs[2].PlainText, "Repaired:")
	assert.Equal(t, []string{"retry:502", "sent:200"}, e.attempts(t, c[2].GetMeta().GetId()))
}

// maps reports whether a and b are equal.
func maps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A notify stopped while Telegram holds its request gives the send a
// short grace, then abandons it: Telegram may have the message, and
// cannot say, so the next notify sends it again marked as a possible
// repeat -- people read it twice, the second time told so, rather than
// miss it. What comes after answers the message whose id is known.
func TestStoppedMidSendIsSentAgainMarked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, chatID, "")
	e.opts.StopGrace = 200 * time.Millisecond
	stop := e.run(t)
	e.tg.Hold()
	inc := opened()
	e.publish(t, inc)
	require.Eventually(t, func() bool { return e.tg.Holding() == 1 }, 20*time.Second, 10*time.Millisecond)
	stop()
	assert.Equal(t, "retrying", e.status(t, inc.GetMeta().GetId(), "telegram"))
	assert.Equal(t, []string{"in_doubt:0"}, e.attempts(t, inc.GetMeta().GetId()))

	e.tg.Release() // Telegram had it after all
	e.tg.WaitForMessages(t, 1, 30*time.Second)
	e.run(t)
	msgs := e.tg.WaitForMessages(t, 2, 30*time.Second)
	require.Eventually(t, func() bool { return e.status(t, inc.GetMeta().GetId(), "telegram") == "sent" }, 30*time.Second, 20*time.Millisecond)
	assert.NotContains(t, msgs[0].PlainText, "Possibly a repeat")
	assert.True(t, strings.HasPrefix(msgs[1].PlainText, "⚠️ Possibly a repeat"), msgs[1].PlainText)
	assert.Contains(t, msgs[1].PlainText, "Incident opened")
	assert.Equal(t, []string{"in_doubt:0", "sent:200"}, e.attempts(t, inc.GetMeta().GetId()))

	a := completed(inc.GetIncident().GetId())
	e.publish(t, a)
	msgs = e.tg.WaitForMessages(t, 3, 30*time.Second)
	assert.Contains(t, msgs[2].PlainText, "Analysis")
	assert.Equal(t, msgs[1].MessageID, msgs[2].ReplyToMessageID, "threaded under the message whose id notify knows")
	require.Never(t, func() bool { return len(e.tg.Messages()) > 3 }, time.Second, 100*time.Millisecond)
}

// cuttable is a pool whose connections fail from the moment it is cut.
type cuttable struct {
	*pgxpool.Pool
	cut atomic.Bool
}

var errCut = errors.New("test: database cut off")

func newCuttable(t *testing.T, e *env) *cuttable {
	t.Helper()
	c := &cuttable{}
	cfg := e.pool.Config().Copy()
	cfg.PrepareConn = func(context.Context, *pgx.Conn) (bool, error) {
		if c.cut.Load() {
			return true, errCut
		}
		return true, nil
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	c.Pool = pool
	return c
}

// cutAfter is a transport that cuts a notify's database off once every
// host in hosts answered it: the sends are out, nothing is recorded. With
// before set, no request reaches its host: the claims are committed, no
// provider has the message, nothing is recorded -- a notify killed
// between its intent and its post.
type cutAfter struct {
	db     *cuttable
	before bool
	// kill, when set, cuts the database off in place of db.
	kill    func()
	mu      sync.Mutex
	waiting map[string]bool
	all     chan struct{}
}

func (c *cutAfter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	first := c.waiting[r.URL.Host]
	c.mu.Unlock()
	var resp *http.Response
	err := error(context.Canceled) // as a process that dies: nothing sent
	if !c.before || !first {
		resp, err = http.DefaultTransport.RoundTrip(r)
	}
	c.mu.Lock()
	delete(c.waiting, r.URL.Host)
	if first && len(c.waiting) == 0 {
		if c.kill != nil {
			c.kill()
		} else {
			c.db.cut.Store(true)
		}
		close(c.all)
	}
	c.mu.Unlock()
	if first {
		select {
		case <-c.all:
		case <-time.After(20 * time.Second):
		}
	}
	return resp, err
}

// A notify that loses its database between the providers' answers and
// its records leaves its claims to their lease; another replica takes
// them over, in doubt: Slack's message is found by its delivery key and
// adopted (one message, its replies threaded under it), LINE's is sent
// again with the same retry key, which LINE refuses as a repeat (one
// message), and Telegram's is sent again marked as a possible repeat.
func TestDatabaseLostAfterSend(t *testing.T) {
	t.Parallel()
	e := newEnv(t, chatID, channel)
	ln := fakeline.New(t, fakeline.Options{To: []string{lineTo}})
	e.opts.Channels = append(e.opts.Channels, line.Options{ChannelToken: ln.Token(), To: lineTo, APIURL: ln.URL()})
	e.opts.Lease, e.opts.StopGrace = time.Second, 200*time.Millisecond
	pool := newCuttable(t, e)
	cut := &cutAfter{db: pool, waiting: map[string]bool{hostOf(e.tg.URL()): true, hostOf(ln.URL()): true, hostOf(e.sl.URL()): true}, all: make(chan struct{})}
	stopB := e.runWith(t, notify.Deps{Pool: pool.Pool, JetStream: e.js, Logger: testkit.Logger(t), HTTPClient: &http.Client{Transport: cut}})

	inc := opened()
	e.publish(t, inc)
	<-cut.all
	reg := prometheus.NewRegistry()
	e.runWith(t, notify.Deps{Pool: e.pool, JetStream: e.js, Logger: testkit.Logger(t), Registry: reg})
	id := inc.GetMeta().GetId()
	require.Eventually(t, func() bool {
		return e.status(t, id, "telegram") == "sent" && e.status(t, id, line.Name) == "sent" && e.status(t, id, "slack") == "sent"
	}, 30*time.Second, 20*time.Millisecond)
	pool.cut.Store(false)
	stopB()

	msgs := e.tg.Messages()
	require.Len(t, msgs, 2)
	assert.True(t, strings.HasPrefix(msgs[1].PlainText, "⚠️ Possibly a repeat"), msgs[1].PlainText)
	assert.Len(t, ln.Messages(), 1)
	reqs := ln.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, reqs[0].RetryKey, reqs[1].RetryKey, "the resend carries the same key")
	assert.Equal(t, http.StatusConflict, reqs[1].StatusCode, "and LINE knows it")
	assert.Equal(t, []string{"sent:200"}, e.attempts(t, id))
	assert.Equal(t, []string{"sent:200"}, e.attemptsOn(t, id, line.Name))

	posted := e.sl.Messages()
	require.Len(t, posted, 1, "Slack's message found, not posted again")
	assert.Equal(t, posted[0].TS, e.messageID(t, id, "slack"))
	assert.Equal(t, []string{"sent:200"}, e.attemptsOn(t, id, "slack"))
	e.publish(t, completed(inc.GetIncident().GetId()))
	replies := e.sl.WaitForMessages(t, 2, 30*time.Second)
	assert.Equal(t, posted[0].TS, replies[1].ThreadTS, "the analysis answers the message found")

	assert.InDelta(t, 1, counter(t, reg, "vigil_notify_deliveries_reconciled_total", "slack", "found"), 0)
	assert.InDelta(t, 1, counter(t, reg, "vigil_notify_deliveries_reconciled_total", "telegram", "reposted"), 0)
	assert.InDelta(t, 1, counter(t, reg, "vigil_notify_deliveries_in_doubt_total", "slack"), 0)
}

func hostOf(u string) string { return u[len("http://"):] }

// A rate limit on Telegram pauses Telegram, for every replica, until it
// ends; Slack keeps sending meanwhile. Once the pause is over, Telegram
// sends what waited, in order.
func TestRateLimitPausesOnlyItsChannel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, chatID, channel)
	e.tg.RateLimitNext(1, 3600)
	e.run(t)
	e.run(t)
	var incs []*eventsv1.IncidentOpened
	for i := range 3 {
		inc := opened()
		inc.Incident.Id = bus.NewID()
		inc.Incident.Title = fmt.Sprintf("DiskFull %d", i)
		incs = append(incs, inc)
	}
	e.publish(t, incs[0])
	// The pause is stored before the attempt is recorded.
	require.Eventually(t, func() bool {
		return slices.Equal(e.attempts(t, incs[0].GetMeta().GetId()), []string{"retry:429"})
	}, 30*time.Second, 20*time.Millisecond)
	e.publish(t, incs[1], incs[2])
	e.sl.WaitForMessages(t, 3, 30*time.Second)
	var paused int
	require.NoError(t, e.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM channel_pauses WHERE channel = 'telegram' AND until > now() + interval '50 minutes'`).Scan(&paused))
	assert.Equal(t, 1, paused)
	assert.Empty(t, e.tg.Messages())
	assert.Len(t, e.tg.Requests(), 1, "nothing else asked of Telegram while it is paused")

	// The hour passes.
	_, err := e.pool.Exec(context.Background(), `UPDATE channel_pauses SET until = now()`)
	require.NoError(t, err)
	_, err = e.pool.Exec(context.Background(), `UPDATE deliveries SET due_at = now() WHERE status = 'retrying'`)
	require.NoError(t, err)
	e.publish(t, completed(incs[2].GetIncident().GetId())) // wakes the senders
	msgs := e.tg.WaitForMessages(t, 4, 30*time.Second)
	for i, m := range msgs[:3] {
		assert.Contains(t, m.PlainText, fmt.Sprintf("DiskFull %d", i))
	}
	assert.Equal(t, []string{"retry:429", "sent:200"}, e.attempts(t, incs[0].GetMeta().GetId()))
}

// What a notify queued goes out after a restart: queued while Telegram
// was paused, sent by the next notify once the pause is over.
func TestRestartSendsWhatWasQueued(t *testing.T) {
	t.Parallel()
	e := newEnv(t, chatID, "")
	stop := e.run(t)
	_, err := e.pool.Exec(context.Background(), `INSERT INTO channel_pauses (channel, until) VALUES ('telegram', now() + interval '1 hour')`)
	require.NoError(t, err)
	inc := opened()
	a := completed(inc.GetIncident().GetId())
	e.publish(t, inc, a)
	e.handledOnce(t, "INCIDENTS")
	e.handledOnce(t, "ANALYSES")
	stop()
	assert.Empty(t, e.tg.Messages())

	_, err = e.pool.Exec(context.Background(), `DELETE FROM channel_pauses`)
	require.NoError(t, err)
	e.run(t)
	msgs := e.tg.WaitForMessages(t, 2, 30*time.Second)
	assert.Contains(t, msgs[0].PlainText, "Incident opened")
	assert.Equal(t, msgs[0].MessageID, msgs[1].ReplyToMessageID)
}

// A delivery queued for a channel notify no longer has (its
// configuration changed while the message waited) is taken by a sender
// started for it, and fails saying so; the channels notify has go on.
func TestDeliveryToAChannelGoneFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t, chatID, "")
	stop := e.run(t)
	stop() // the schema is there
	inc := opened()
	payload, err := proto.Marshal(inc)
	require.NoError(t, err)
	_, err = e.pool.Exec(context.Background(), `INSERT INTO deliveries (event_id, channel, subject, target, status, payload, due_at)
		VALUES ($1, 'pager', 'incident.opened', 'x', 'queued', $2, now())`, inc.GetMeta().GetId(), payload)
	require.NoError(t, err)

	e.run(t)
	require.Eventually(t, func() bool { return e.status(t, inc.GetMeta().GetId(), "pager") == "failed" }, 30*time.Second, 20*time.Millisecond)
	var lastError string
	require.NoError(t, e.pool.QueryRow(context.Background(),
		`SELECT last_error FROM deliveries WHERE event_id = $1 AND channel = 'pager'`, inc.GetMeta().GetId()).Scan(&lastError))
	assert.Equal(t, "channel pager is gone", lastError)
	assert.Equal(t, []string{"failed:0"}, e.attemptsOn(t, inc.GetMeta().GetId(), "pager"))
	assert.Empty(t, e.tg.Messages(), "nothing else sent it")
	e.openIncident(t, opened())
}

// A send that times out waiting for Telegram's answer may have reached
// it: it is sent again after a backoff, marked as a possible repeat; and
// Telegram, answering late, shows the first one too.
func TestTimedOutSendIsRepeatedMarked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, chatID, "")
	e.runWith(t, notify.Deps{Pool: e.pool, JetStream: e.js, Logger: testkit.Logger(t), HTTPClient: &http.Client{Timeout: 300 * time.Millisecond}})
	e.tg.Hold()
	inc := opened()
	e.publish(t, inc)
	require.Eventually(t, func() bool {
		return slices.Equal(e.attempts(t, inc.GetMeta().GetId()), []string{"in_doubt:0"})
	}, 30*time.Second, 20*time.Millisecond)
	e.tg.Release()
	msgs := e.tg.WaitForMessages(t, 2, 30*time.Second)
	assert.NotContains(t, msgs[0].PlainText, "Possibly a repeat")
	assert.True(t, strings.HasPrefix(msgs[1].PlainText, "⚠️ Possibly a repeat"), msgs[1].PlainText)
	require.Never(t, func() bool { return len(e.tg.Messages()) > 2 }, time.Second, 50*time.Millisecond)
	assert.Equal(t, []string{"in_doubt:0", "sent:200"}, e.attempts(t, inc.GetMeta().GetId()))
}
