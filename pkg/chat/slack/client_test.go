package slack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/chat/slack"
	"github.com/vigil-ops/vigil/pkg/testkit/fakeslack"
)

const channel = "C0ALERTS1"

func newFake(t *testing.T) *fakeslack.Server {
	t.Helper()
	return fakeslack.New(t, fakeslack.Options{Channels: []fakeslack.Channel{{ID: channel, Name: "alerts"}}})
}

func newClient(t *testing.T, fake *fakeslack.Server, opts ...func(*slack.Options)) *slack.Client {
	t.Helper()
	o := slack.Options{BaseURL: fake.APIURL(), Token: fake.BotToken()}
	for _, f := range opts {
		f(&o)
	}
	c, err := slack.New(o)
	require.NoError(t, err)
	return c
}

func card(repairID string) []slack.Block {
	return []slack.Block{
		slack.Header("Approval needed: restart shop/checkout"),
		slack.Section(slack.Mrkdwn("*Cause:* " + slack.Escape("<script> & </b>"))),
		slack.Fields(slack.Mrkdwn("*Risk*\nlow"), slack.Mrkdwn("*Confidence*\n92%")),
		slack.Context(slack.Mrkdwn("engine rules")),
		slack.Actions(
			slack.Button{ActionID: "vigil_repair_approve", Text: "Approve", Value: repairID, Style: "primary", Confirm: &slack.Confirm{
				Title: "Approve the repair?", Text: "Restart shop/checkout", Confirm: "Approve", Deny: "Cancel",
			}},
			slack.Button{ActionID: "vigil_repair_reject", Text: "Reject", Value: repairID, Style: "danger"},
		),
	}
}

// A message, a reply in its thread, and an update that takes the buttons
// away: what the fake received.
func TestPostReplyUpdate(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	c := newClient(t, fake)
	ctx := t.Context()

	parent, err := c.PostMessage(ctx, slack.Message{Channel: channel, Text: "*Incident opened:* " + slack.Escape("Disk <full> & co")})
	require.NoError(t, err)
	ts, err := c.PostMessage(ctx, slack.Message{Channel: channel, Text: "Approval needed", Blocks: card("r-1"), ThreadTS: parent})
	require.NoError(t, err)

	msgs := fake.Messages()
	require.Len(t, msgs, 2)
	assert.Equal(t, "*Incident opened:* Disk &lt;full&gt; &amp; co", msgs[0].Text)
	assert.Empty(t, msgs[0].ThreadTS)
	assert.Equal(t, parent, msgs[1].ThreadTS)
	assert.Equal(t, ts, msgs[1].TS)
	require.Len(t, msgs[1].Buttons, 2)
	assert.Equal(t, fakeslack.Button{BlockID: msgs[1].Buttons[0].BlockID, ActionID: "vigil_repair_approve", Text: "Approve", Value: "r-1", Style: "primary"}, msgs[1].Buttons[0])
	var blocks []map[string]any
	require.NoError(t, json.Unmarshal(msgs[1].Blocks, &blocks))
	assert.Equal(t, "*Cause:* &lt;script&gt; &amp; &lt;/b&gt;", blocks[1]["text"].(map[string]any)["text"])

	require.NoError(t, c.Update(ctx, channel, ts, "Approved", []slack.Block{slack.Section(slack.Mrkdwn("*Approved* by alice"))}))
	m, ok := fake.Message(channel, ts)
	require.True(t, ok)
	assert.Empty(t, m.Buttons)
	assert.Equal(t, "Approved", m.Text)
	require.Len(t, m.Edits, 1)
	assert.Equal(t, "chat.update", m.Edits[0].Via)

	for _, r := range fake.Requests() {
		assert.Equal(t, http.StatusOK, r.StatusCode)
		assert.Empty(t, r.Error)
	}
}

// Requests carry the bot token as a bearer token and a JSON body with its
// charset; reply_broadcast only goes with a reply.
func TestRequestShape(t *testing.T) {
	t.Parallel()
	var got []*http.Request
	var bodies []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b map[string]any
		assert.NoError(t, json.NewDecoder(r.Body).Decode(&b))
		got, bodies = append(got, r), append(bodies, b)
		_, _ = io.WriteString(w, `{"ok":true,"channel":"C0ALERTS1","ts":"1700000000.000100"}`)
	}))
	t.Cleanup(srv.Close)
	c, err := slack.New(slack.Options{BaseURL: srv.URL + "/api/", Token: fakeslack.DefaultBotToken})
	require.NoError(t, err)

	_, err = c.PostMessage(t.Context(), slack.Message{Channel: channel, Text: "x", Broadcast: true})
	require.NoError(t, err)
	_, err = c.PostMessage(t.Context(), slack.Message{Channel: channel, Text: "x", ThreadTS: "1700000000.000100", Broadcast: true})
	require.NoError(t, err)
	require.NoError(t, c.Update(t.Context(), channel, "1700000000.000100", "y", nil))

	require.Len(t, got, 3)
	assert.Equal(t, "/api/chat.postMessage", got[0].URL.Path)
	assert.Equal(t, "/api/chat.update", got[2].URL.Path)
	assert.Equal(t, "Bearer "+fakeslack.DefaultBotToken, got[0].Header.Get("Authorization"))
	assert.Equal(t, "application/json; charset=utf-8", got[0].Header.Get("Content-Type"))
	assert.NotContains(t, bodies[0], "reply_broadcast", "not a reply")
	assert.NotContains(t, bodies[0], "thread_ts")
	assert.Equal(t, true, bodies[1]["reply_broadcast"])
	assert.Equal(t, []any{}, bodies[2]["blocks"], "an update without blocks removes them")
}

// ok:false answers come back with Slack's error string, and the reasons
// for invalid blocks; they are permanent.
func TestAPIErrors(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	c := newClient(t, fake)

	_, err := c.PostMessage(t.Context(), slack.Message{Channel: "C0NOWHERE", Text: "x"})
	require.ErrorContains(t, err, "slack: chat.postMessage: channel_not_found")
	assert.True(t, slack.IsPermanent(err))
	assert.False(t, slack.IsRetryable(err))

	twice := slack.Actions(slack.Button{ActionID: "a", Text: "one"}, slack.Button{ActionID: "a", Text: "two"})
	_, err = c.PostMessage(t.Context(), slack.Message{Channel: channel, Text: "x", Blocks: []slack.Block{twice}})
	require.ErrorContains(t, err, "invalid_blocks")
	require.ErrorContains(t, err, `action_id "a" is already used`)
	apiErr, ok := errors.AsType[*slack.APIError](err)
	require.True(t, ok)
	assert.Equal(t, "invalid_blocks", apiErr.Code)
	assert.NotEmpty(t, apiErr.Messages)

	_, err = c.PostMessage(t.Context(), slack.Message{Channel: channel, Text: "x", ThreadTS: "1500000000.000100"})
	require.ErrorContains(t, err, "thread_not_found")
	err = c.Update(t.Context(), channel, "1500000000.000100", "x", nil)
	require.ErrorContains(t, err, "message_not_found")
	assert.True(t, slack.IsNotFound(err))

	bad, err := slack.New(slack.Options{BaseURL: fake.APIURL(), Token: "xoxb-not-the-right-one"})
	require.NoError(t, err)
	_, err = bad.PostMessage(t.Context(), slack.Message{Channel: channel, Text: "x"})
	require.ErrorContains(t, err, "invalid_auth")
	assert.True(t, slack.IsPermanent(err))
	assert.NotContains(t, err.Error(), "xoxb-")
}

// A short 429 is waited out inside the client; a long one comes back with
// the wait, to be retried later.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	c := newClient(t, fake)

	fake.RateLimitNext(1, 1)
	start := time.Now()
	_, err := c.PostMessage(t.Context(), slack.Message{Channel: channel, Text: "x"})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), time.Second)
	reqs := fake.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, http.StatusTooManyRequests, reqs[0].StatusCode)
	assert.Equal(t, "ratelimited", reqs[0].Error)

	fake.RateLimitNext(1, 30)
	_, err = c.PostMessage(t.Context(), slack.Message{Channel: channel, Text: "x"})
	require.Error(t, err)
	assert.True(t, slack.IsRetryable(err))
	assert.False(t, slack.IsPermanent(err))
	assert.Equal(t, 30*time.Second, slack.RetryAfter(err))
	assert.Len(t, fake.Messages(), 1)

	// Rate limited again and again: the client gives up after a few tries.
	fake.RateLimitNext(5, 1)
	_, err = c.PostMessage(t.Context(), slack.Message{Channel: channel, Text: "x"})
	require.ErrorContains(t, err, "ratelimited")
	assert.Len(t, fake.Requests(), 2+1+3)

	// Waiting stops with the context.
	fake.RateLimitNext(1, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err = newClient(t, fake, func(o *slack.Options) { o.MaxWait = 10 * time.Second }).PostMessage(ctx, slack.Message{Channel: channel, Text: "x"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

// A proxy's error page is judged by its status; the answer read is bounded.
func TestHTTPErrors(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	c := newClient(t, fake)
	fake.FailNext(1, http.StatusBadGateway)
	_, err := c.PostMessage(t.Context(), slack.Message{Channel: channel, Text: "x"})
	require.ErrorContains(t, err, "HTTP 502")
	assert.True(t, slack.IsRetryable(err))
	fake.FailNext(1, http.StatusForbidden)
	_, err = c.PostMessage(t.Context(), slack.Message{Channel: channel, Text: "x"})
	assert.True(t, slack.IsPermanent(err))

	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"ok":true,"ts":"`+strings.Repeat("1", 4<<20)+`"}`)
	}))
	t.Cleanup(huge.Close)
	hc, err := slack.New(slack.Options{BaseURL: huge.URL, Token: fakeslack.DefaultBotToken})
	require.NoError(t, err)
	_, err = hc.PostMessage(t.Context(), slack.Message{Channel: channel, Text: "x"})
	require.ErrorContains(t, err, "not the Web API's")

	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	dc, err := slack.New(slack.Options{BaseURL: down.URL, Token: fakeslack.DefaultBotToken})
	require.NoError(t, err)
	_, err = dc.PostMessage(t.Context(), slack.Message{Channel: channel, Text: "x"})
	require.Error(t, err)
	assert.True(t, slack.IsRetryable(err))
	assert.NotContains(t, err.Error(), fakeslack.DefaultBotToken)
}

// What Slack would refuse is not sent.
func TestInvalidMessage(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	c := newClient(t, fake)
	for name, m := range map[string]slack.Message{
		"no channel":       {Text: "x"},
		"nothing":          {Channel: channel},
		"bad thread":       {Channel: channel, Text: "x", ThreadTS: "yesterday"},
		"zero block":       {Channel: channel, Blocks: []slack.Block{{}}},
		"empty section":    {Channel: channel, Blocks: []slack.Block{slack.Section(slack.Mrkdwn(""))}},
		"no buttons":       {Channel: channel, Blocks: []slack.Block{slack.Actions()}},
		"long value":       {Channel: channel, Blocks: []slack.Block{slack.Actions(slack.Button{ActionID: "a", Text: "a", Value: strings.Repeat("v", 2001)})}},
		"bad style":        {Channel: channel, Blocks: []slack.Block{slack.Actions(slack.Button{ActionID: "a", Text: "a", Style: "green"})}},
		"half a confirm":   {Channel: channel, Blocks: []slack.Block{slack.Actions(slack.Button{ActionID: "a", Text: "a", Confirm: &slack.Confirm{Title: "t"}})}},
		"nameless button":  {Channel: channel, Blocks: []slack.Block{slack.Actions(slack.Button{Text: "a"})}},
		"textless button":  {Channel: channel, Blocks: []slack.Block{slack.Actions(slack.Button{ActionID: "a"})}},
		"too many buttons": {Channel: channel, Blocks: []slack.Block{slack.Actions(make([]slack.Button, 26)...)}},
	} {
		_, err := c.PostMessage(t.Context(), m)
		require.ErrorIs(t, err, slack.ErrInvalidMessage, name)
		assert.True(t, slack.IsPermanent(err), name)
	}
	require.ErrorIs(t, c.Update(t.Context(), channel, "", "x", nil), slack.ErrInvalidMessage)
	assert.Empty(t, fake.Requests())
}

// Text past Block Kit's limits is cut, never inside an entity, and the
// fake (which enforces the limits) takes it.
func TestBlockLimits(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	c := newClient(t, fake)
	long := slack.Escape(strings.Repeat("<&> ", 2000))
	fields := make([]slack.Text, 12)
	for i := range fields {
		fields[i] = slack.Mrkdwn(long)
	}
	blocks := []slack.Block{
		slack.Header(strings.Repeat("h", 200)),
		slack.Section(slack.Mrkdwn(long)),
		slack.Fields(fields...),
		slack.Context(slack.Mrkdwn(long)),
		slack.Actions(slack.Button{ActionID: "a", Text: strings.Repeat("b", 100), Value: "v", Confirm: &slack.Confirm{
			Title: strings.Repeat("t", 200), Text: strings.Repeat("x", 400), Confirm: strings.Repeat("y", 40), Deny: strings.Repeat("n", 40),
		}}),
	}
	_, err := c.PostMessage(t.Context(), slack.Message{Channel: channel, Text: strings.Repeat("x", 50000), Blocks: blocks})
	require.NoError(t, err)
	m := fake.Messages()[0]
	assert.Equal(t, strings.Repeat("b", 74)+"…", m.Buttons[0].Text)
	assert.Len(t, []rune(m.Text), slack.MaxTextLength)
	var got []map[string]any
	require.NoError(t, json.Unmarshal(m.Blocks, &got))
	section := got[1]["text"].(map[string]any)["text"].(string)
	assert.LessOrEqual(t, len([]rune(section)), 3000)
	assert.True(t, strings.HasSuffix(section, "&gt; …"), "cut before the entity the limit falls in: %s", section[len(section)-30:])
	assert.Len(t, got[2]["fields"], 10)
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	for name, tt := range map[string]struct {
		opts slack.Options
		want string
	}{
		"ok":         {opts: slack.Options{Token: "xoxb-1-2-abc"}},
		"no token":   {opts: slack.Options{}, want: "Token: missing"},
		"user token": {opts: slack.Options{Token: "xoxp-1-2-abc"}, want: "want a bot token"},
		"newline":    {opts: slack.Options{Token: "xoxb-1-2-abc\n"}, want: "white space"},
		"bad url":    {opts: slack.Options{Token: "xoxb-1", BaseURL: "slack.com/api"}, want: "want an http or https URL"},
	} {
		err := tt.opts.Validate()
		if tt.want == "" {
			require.NoError(t, err, name)
			continue
		}
		require.ErrorContains(t, err, tt.want, name)
		assert.NotContains(t, err.Error(), "abc", name)
	}
}

// No error of either method, nor the client's log lines, quote the bot
// token, whatever went wrong; a rate limit's Retry-After is read for both.
func TestErrorsHideTheToken(t *testing.T) {
	t.Parallel()
	const token = "xoxb-1-2-SecretTokenThatMustNotLeak"
	fake := newFake(t)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	methods := map[string]func(*slack.Client) error{
		"chat.postMessage": func(c *slack.Client) error {
			_, err := c.PostMessage(t.Context(), slack.Message{Channel: channel, Text: "x"})
			return err
		},
		"chat.update": func(c *slack.Client) error {
			return c.Update(t.Context(), channel, "1700000000.000100", "x", nil)
		},
	}
	for method, call := range methods {
		for _, tt := range []struct {
			name, baseURL, token string
			setup                func()
			retryAfter           time.Duration
		}{
			{name: "unreachable", baseURL: down.URL, token: token},
			{name: "wrong token", baseURL: fake.APIURL(), token: token},
			{name: "proxy error", baseURL: fake.APIURL(), token: fake.BotToken(), setup: func() { fake.FailNext(1, http.StatusBadGateway) }},
			{name: "rate limited", baseURL: fake.APIURL(), token: fake.BotToken(), setup: func() { fake.RateLimitNext(1, 30) }, retryAfter: 30 * time.Second},
		} {
			var logs bytes.Buffer
			c, err := slack.New(slack.Options{
				BaseURL: tt.baseURL, Token: tt.token,
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			require.NoError(t, err)
			if tt.setup != nil {
				tt.setup()
			}
			err = call(c)
			require.Error(t, err, "%s: %s", method, tt.name)
			require.Contains(t, err.Error(), method, tt.name)
			require.NotContains(t, err.Error(), "SecretTokenThatMustNotLeak", "%s: %s", method, tt.name)
			require.NotContains(t, err.Error(), tt.token, "%s: %s", method, tt.name)
			require.NotContains(t, logs.String(), tt.token, "%s: %s", method, tt.name)
			require.Equal(t, tt.retryAfter, slack.RetryAfter(err), "%s: %s", method, tt.name)
		}
	}
}

// A message posted with metadata is found again by History, in the
// channel and in its thread, a page at a time; without the history
// scope, History fails with missing_scope.
func TestHistoryFindsMetadata(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	c := newClient(t, fake)
	ctx := t.Context()
	since := time.Now().Add(-time.Second)
	meta := &slack.Metadata{EventType: "vigil_delivery", EventPayload: map[string]string{"delivery_key": "k1"}}
	parent, err := c.PostMessage(ctx, slack.Message{Channel: channel, Text: "parent", Metadata: meta})
	require.NoError(t, err)
	reply, err := c.PostMessage(ctx, slack.Message{
		Channel: channel, Text: "reply", ThreadTS: parent,
		Metadata: &slack.Metadata{EventType: "vigil_delivery", EventPayload: map[string]string{"delivery_key": "k2"}},
	})
	require.NoError(t, err)

	page, err := c.History(ctx, slack.HistoryQuery{Channel: channel, Oldest: since})
	require.NoError(t, err)
	require.Len(t, page.Messages, 1)
	require.Equal(t, parent, page.Messages[0].TS)
	require.Equal(t, meta, page.Messages[0].Metadata)
	require.Empty(t, page.Next)

	page, err = c.History(ctx, slack.HistoryQuery{Channel: channel, Thread: parent, Oldest: since})
	require.NoError(t, err)
	require.Len(t, page.Messages, 2)
	require.Equal(t, reply, page.Messages[1].TS)
	require.Equal(t, "k2", page.Messages[1].Metadata.EventPayload["delivery_key"])

	page, err = c.History(ctx, slack.HistoryQuery{Channel: channel, Oldest: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	require.Empty(t, page.Messages)

	scoped := fakeslack.New(t, fakeslack.Options{Channels: []fakeslack.Channel{{ID: channel}}, Scopes: []string{"chat:write"}})
	_, err = newClient(t, scoped).History(ctx, slack.HistoryQuery{Channel: channel})
	apiErr, ok := errors.AsType[*slack.APIError](err)
	require.True(t, ok, "%v", err)
	require.Equal(t, "missing_scope", apiErr.Code)
	require.True(t, slack.IsPermanent(err))
}

// A 200 whose body is cut short is an unreadable answer: the message may
// well be posted (it is, at the fake), its ts unknown.
func TestGarbledAnswerIsUnreadable(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	fake.GarbleNext(1)
	_, err := newClient(t, fake).PostMessage(t.Context(), slack.Message{Channel: channel, Text: "x"})
	require.ErrorIs(t, err, slack.ErrUnreadableAnswer)
	require.False(t, slack.IsRetryable(err))
	require.Len(t, fake.Messages(), 1)
}
