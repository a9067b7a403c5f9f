package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	hook "github.com/vigil-ops/vigil/pkg/chat/webhook"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit/fakewebhook"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/channel/webhook"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
)

const secret = "s3cret-for-tests"

func open(t *testing.T, url string, timeout time.Duration) channel.Channel {
	t.Helper()
	o := webhook.Options{URL: url, Secret: secret, Timeout: timeout}
	require.NoError(t, o.Validate())
	ep, err := o.Open(channel.Deps{HTTPClient: http.DefaultClient})
	require.NoError(t, err)
	require.NotNil(t, ep)
	return ep.Channel
}

func incident() message.Message {
	inc := &typesv1.Incident{Id: "inc-1", Title: "DiskFull in <prod>", Severity: typesv1.Severity_SEVERITY_CRITICAL, FiringCount: 1}
	return message.IncidentOpened(inc)
}

// A message arrives signed, as plain text with what it is about, under
// an id derived from its delivery's key: the id Send returns, the same on
// a retry of that delivery.
func TestSend(t *testing.T) {
	t.Parallel()
	sink := fakewebhook.New(t, secret)
	ch := open(t, sink.URL, 0)
	ctx := channel.WithDeliveryKey(context.Background(), "ev-1/webhook/target")
	id, err := ch.Send(ctx, incident(), "")
	require.NoError(t, err)
	got := sink.WaitFor(t, 1, 5*time.Second)
	require.Len(t, got, 1)
	b := got[0].Body
	assert.Equal(t, id, b.ID)
	assert.Equal(t, id, got[0].Delivery)
	assert.Equal(t, hook.Version, b.Version)
	assert.Equal(t, "incident.opened", b.Kind)
	assert.Equal(t, "inc-1", b.IncidentID)
	assert.Equal(t, "critical", b.Severity)
	assert.Equal(t, "DiskFull in <prod>", b.Title)
	assert.Contains(t, b.Text, "Incident opened: DiskFull in <prod>", "plain text, not escaped")
	assert.Contains(t, string(got[0].Raw), `"title":"DiskFull in <prod>"`, "no HTML escapes in the JSON")
	assert.Empty(t, b.Parent)
	assert.Nil(t, b.Card)
	assert.Zero(t, sink.Refused())

	again, err := ch.Send(ctx, incident(), "")
	require.NoError(t, err)
	assert.Equal(t, id, again, "a retry of the delivery carries its id")

	reply := message.Sample(message.KindAnalysis)
	rid, err := ch.Send(channel.WithDeliveryKey(context.Background(), "ev-2/webhook/target"), reply, id)
	require.NoError(t, err)
	got = sink.WaitFor(t, 3, 5*time.Second)
	assert.Equal(t, id, got[2].Body.Parent)
	assert.NotEqual(t, id, rid, "another delivery, another id")
	assert.Equal(t, rid, got[2].Body.ID)
}

// An approval card carries its parts; its redrawing names the message it
// edits, with the outcome.
func TestCardAndEdit(t *testing.T) {
	t.Parallel()
	sink := fakewebhook.New(t, secret)
	ch := open(t, sink.URL, 0)
	req := &eventsv1.RepairApprovalRequested{
		RepairId: "rep-1", IncidentId: "inc-1", App: "shop", Reasons: []string{"risk is high"}, Confidence: 0.8,
		Proposal: &typesv1.RepairProposal{
			Action: typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, Target: &typesv1.ResourceRef{Namespace: "shop", Kind: "Deployment", Name: "checkout"},
		},
	}
	card := message.ApprovalCard(req, nil)
	card.About = message.About{Kind: message.KindApprovalCard, IncidentID: "inc-1", RepairID: "rep-1"}
	id, err := ch.Send(context.Background(), card, "ev-incident")
	require.NoError(t, err)
	dec := &eventsv1.RepairDecided{RepairId: "rep-1", IncidentId: "inc-1", Outcome: "approved", DecidedBy: "user:alice", Channel: "slack"}
	decided := message.ApprovalCard(req, dec)
	decided.About = message.About{Kind: message.KindDecided, IncidentID: "inc-1", RepairID: "rep-1"}
	require.NoError(t, ch.Edit(context.Background(), id, decided))

	got := sink.WaitFor(t, 2, 5*time.Second)
	c := got[0].Body
	assert.Equal(t, "repair.approval", c.Kind)
	assert.Equal(t, "ev-incident", c.Parent)
	assert.Equal(t, "rep-1", c.RepairID)
	require.NotNil(t, c.Card)
	assert.Equal(t, c.Card.Title, c.Title)
	assert.Contains(t, c.Card.Facts, hook.Field{Label: "Target", Value: "Deployment shop/checkout"})
	assert.Equal(t, []string{"risk is high"}, c.Card.Why)
	assert.Empty(t, c.Card.Outcome, "waiting")

	d := got[1].Body
	assert.Equal(t, "repair.decided", d.Kind)
	assert.NotEqual(t, id, d.ID)
	assert.Equal(t, id, d.Edits)
	assert.Empty(t, d.Parent)
	require.NotNil(t, d.Card)
	assert.Contains(t, d.Card.Outcome, "alice")
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"7", 7 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"Fri, 01 May 2026 12:00:30 GMT", 30 * time.Second},
		{"Fri, 01 May 2026 11:00:00 GMT", 0},
		{"-3", 0},
		{"soon", 0},
		{"", 0},
	} {
		assert.Equal(t, tc.want, webhook.RetryAfter(tc.in, now), tc.in)
	}
}

// What a receiver's answer means: a 429 or 5xx may pass later (after the
// Retry-After asked for), another 4xx will not; nothing was accepted.
func TestFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(*fakewebhook.Sink)
		want  channel.Error
	}{
		{"429 with Retry-After", func(s *fakewebhook.Sink) { s.RateLimit("7") }, channel.Error{Status: 429, Retry: true, RetryAfter: 7 * time.Second}},
		{"500", func(s *fakewebhook.Sink) { s.Fail(http.StatusInternalServerError) }, channel.Error{Status: 500, Retry: true}},
		{"429 with a date", func(s *fakewebhook.Sink) { s.RateLimit(time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)) }, channel.Error{Status: 429, Retry: true}},
		{"400", func(s *fakewebhook.Sink) { s.Fail(http.StatusBadRequest) }, channel.Error{Status: 400}},
		{"410", func(s *fakewebhook.Sink) { s.Fail(http.StatusGone) }, channel.Error{Status: 410}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sink := fakewebhook.New(t, secret)
			tc.setup(sink)
			_, err := open(t, sink.URL, 0).Send(context.Background(), incident(), "")
			require.Error(t, err)
			v := channel.Judge(err)
			assert.Equal(t, tc.want.Status, v.Status)
			assert.Equal(t, tc.want.Retry, v.Retry)
			if tc.name == "429 with a date" {
				assert.Greater(t, v.RetryAfter, 50*time.Minute)
			} else {
				assert.Equal(t, tc.want.RetryAfter, v.RetryAfter)
			}
			assert.Empty(t, sink.Accepted())
			assert.Equal(t, 1, sink.Attempts())
		})
	}
}

// A redirect is not followed: the signed message goes nowhere else, and
// it is a failure no retry fixes.
func TestNoRedirect(t *testing.T) {
	t.Parallel()
	sink := fakewebhook.New(t, secret)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, sink.URL, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirect.Close)
	_, err := open(t, redirect.URL, 0).Send(context.Background(), incident(), "")
	require.Error(t, err)
	v := channel.Judge(err)
	assert.Equal(t, http.StatusTemporaryRedirect, v.Status)
	assert.False(t, v.Retry)
	assert.Zero(t, sink.Attempts())
}

// No answer -- a receiver down or hanging past the timeout -- may pass on
// a retry.
func TestNoAnswer(t *testing.T) {
	t.Parallel()
	sink := fakewebhook.New(t, secret)
	sink.Hang()
	_, err := open(t, sink.URL, 200*time.Millisecond).Send(context.Background(), incident(), "")
	require.Error(t, err)
	assert.True(t, channel.Judge(err).Retry)
	assert.NotContains(t, err.Error(), secret)
	// The sink learns of the hang-up when its connection closes; released
	// before that, it would take the request the sender gave up on (which
	// a real receiver may do too: that is the unknown outcome the queue
	// records). Wait for it, then release: nothing is taken.
	require.Eventually(t, func() bool { return sink.Hanging() == 0 }, 10*time.Second, 10*time.Millisecond)
	sink.Release()
	assert.Empty(t, sink.Accepted())

	down := httptest.NewServer(http.NotFoundHandler())
	url := down.URL
	down.Close()
	_, err = open(t, url, 0).Send(context.Background(), incident(), "")
	require.Error(t, err)
	assert.True(t, channel.Judge(err).Retry)
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    webhook.Options
		want string
	}{
		{"off", webhook.Options{}, ""},
		{"https", webhook.Options{URL: "https://hooks.example.com/vigil", Secret: "x"}, ""},
		{"http to localhost", webhook.Options{URL: "http://localhost:8080/hook", Secret: "x"}, ""},
		{"http to 127.0.0.1", webhook.Options{URL: "http://127.0.0.1:8080/hook", Secret: "x"}, ""},
		{"http elsewhere", webhook.Options{URL: "http://hooks.example.com/vigil", Secret: "x"}, "VIGIL_WEBHOOK_URL: want https"},
		{"no secret", webhook.Options{URL: "https://hooks.example.com/vigil"}, "VIGIL_WEBHOOK_SECRET: missing"},
		{"no URL", webhook.Options{Secret: "x"}, "VIGIL_WEBHOOK_URL: missing"},
		{"relative", webhook.Options{URL: "/hook?token=abc", Secret: "x"}, "VIGIL_WEBHOOK_URL: not an absolute URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
			assert.NotContains(t, err.Error(), "token=abc", "the URL may hold a token")
		})
	}
}
