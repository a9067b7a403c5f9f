package line_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/chat/line"
	"github.com/vigil-ops/vigil/pkg/testkit/fakeline"
)

const user = "U4af4980629a0b1c2d3e4f5a6b7c8d9e0"

func newClient(t *testing.T, fake *fakeline.Server, token string) *line.Client {
	t.Helper()
	c, err := line.New(line.Options{BaseURL: fake.URL(), Token: token})
	require.NoError(t, err)
	return c
}

func card() line.Message {
	return line.NewFlex("🔥 Incident opened: DiskFull", line.Bubble{
		Header: line.VBox(line.Text("🔥 critical · shop")),
		Body:   line.VBox(line.Text("Pod: checkout-1"), line.Separator(), *line.HBox(line.Text("Cause"), line.Text(""))),
	})
}

func TestPush(t *testing.T) {
	t.Parallel()
	fake := fakeline.New(t, fakeline.Options{To: []string{user}})
	c := newClient(t, fake, fake.Token())
	sent, err := c.Push(context.Background(), line.Push{To: user, Messages: []line.Message{line.NewText("hello <b>&"), card()}})
	require.NoError(t, err)
	require.Len(t, sent.MessageIDs, 2)
	require.False(t, sent.Repeat)
	msgs := fake.Messages()
	require.Len(t, msgs, 2)
	require.Equal(t, "hello <b>&", msgs[0].Text, "text is sent as it is: LINE has no markup")
	require.Equal(t, "flex", msgs[1].Type)
	require.Equal(t, "🔥 Incident opened: DiskFull", msgs[1].AltText)
	require.Contains(t, string(msgs[1].Contents), `"text":" "`, "an empty text is a space")
	require.Equal(t, []string{msgs[0].ID, msgs[1].ID}, sent.MessageIDs)
}

// The cut to LINE's limits counts as LINE does, in UTF-16: a message at
// the limit passes the fake, and one over it is refused before sending.
func TestPushLimits(t *testing.T) {
	t.Parallel()
	fake := fakeline.New(t, fakeline.Options{To: []string{user}})
	c := newClient(t, fake, fake.Token())
	long, emoji := strings.Repeat("a", 2*line.MaxTextLength), strings.Repeat("😀", line.MaxTextLength)
	_, err := c.Push(context.Background(), line.Push{To: user, Messages: []line.Message{
		line.NewText(long), line.NewFlex(emoji, line.Bubble{Body: line.VBox(line.Text(emoji))}),
	}})
	require.NoError(t, err)
	msgs := fake.Messages()
	require.Equal(t, line.MaxTextLength, line.Length(msgs[0].Text))
	require.True(t, strings.HasSuffix(msgs[0].Text, "…"))
	require.Equal(t, line.MaxAltTextLength-1, line.Length(msgs[1].AltText), "an emoji does not fit beside the ellipsis")

	for name, p := range map[string]line.Push{
		"text too long": {To: user, Messages: []line.Message{{Type: "text", Text: strings.Repeat("a", line.MaxTextLength+1)}}},
		"six messages":  {To: user, Messages: []line.Message{line.NewText("1"), line.NewText("2"), line.NewText("3"), line.NewText("4"), line.NewText("5"), line.NewText("6")}},
		"no messages":   {To: user},
		"no recipient":  {Messages: []line.Message{line.NewText("hi")}},
		"flex no alt":   {To: user, Messages: []line.Message{{Type: "flex", Contents: &line.Bubble{Type: "bubble"}}}},
		"bad retry key": {To: user, Messages: []line.Message{line.NewText("hi")}, RetryKey: "not-a-uuid"},
	} {
		_, err := c.Push(context.Background(), p)
		require.ErrorIs(t, err, line.ErrInvalidMessage, name)
		require.True(t, line.IsPermanent(err), name)
	}
	require.Len(t, fake.Requests(), 1, "nothing invalid was sent")
	require.Len(t, fake.Messages(), 2)
}

func TestPushErrors(t *testing.T) {
	t.Parallel()
	fake := fakeline.New(t, fakeline.Options{To: []string{user}})
	good := newClient(t, fake, fake.Token())
	push := line.Push{To: user, Messages: []line.Message{line.NewText("hi")}}
	ctx := context.Background()

	for _, tc := range []struct {
		name      string
		inject    func()
		client    *line.Client
		push      line.Push
		status    int
		retryable bool
		wait      bool
	}{
		{name: "bad token", client: newClient(t, fake, "WrongToken0123456789abcdef"), push: push, status: http.StatusUnauthorized},
		{name: "unknown recipient", client: good, push: line.Push{To: "Uffffffffffffffffffffffffffffffff", Messages: push.Messages}, status: http.StatusBadRequest},
		{name: "rate limited", inject: func() { fake.RateLimitNext(1) }, client: good, push: push, status: http.StatusTooManyRequests, retryable: true, wait: true},
		{name: "monthly quota", inject: func() { fake.QuotaExceededNext(1) }, client: good, push: push, status: http.StatusTooManyRequests},
		{name: "server error", inject: func() { fake.FailNext(1, http.StatusBadGateway) }, client: good, push: push, status: http.StatusBadGateway, retryable: true},
	} {
		if tc.inject != nil {
			tc.inject()
		}
		_, err := tc.client.Push(ctx, tc.push)
		require.Error(t, err, tc.name)
		apiErr, ok := errors.AsType[*line.APIError](err)
		require.True(t, ok, tc.name)
		require.Equal(t, tc.status, apiErr.StatusCode, tc.name)
		require.Equal(t, tc.retryable, line.IsRetryable(err), tc.name)
		require.Equal(t, !tc.retryable, line.IsPermanent(err), tc.name)
		if tc.wait {
			require.Equal(t, line.RateLimitBackoff, line.RetryAfter(err), tc.name)
		} else {
			require.Zero(t, line.RetryAfter(err), tc.name)
		}
		require.NotContains(t, err.Error(), fake.Token(), tc.name)
		require.NotContains(t, err.Error(), "WrongToken", tc.name)
	}
	require.Empty(t, fake.Messages(), "nothing was sent")
}

// A push sent again with its retry key (the answer was lost, the event
// redelivered) is not sent twice: LINE's 409 is taken as sent.
func TestPushRetryKey(t *testing.T) {
	t.Parallel()
	fake := fakeline.New(t, fakeline.Options{To: []string{user}})
	c := newClient(t, fake, fake.Token())
	p := line.Push{To: user, Messages: []line.Message{line.NewText("once")}, RetryKey: uuid.NewString()}
	first, err := c.Push(context.Background(), p)
	require.NoError(t, err)
	again, err := c.Push(context.Background(), p)
	require.NoError(t, err)
	require.True(t, again.Repeat)
	require.Empty(t, again.MessageIDs)
	require.Equal(t, first.RequestID, again.RequestID)
	require.Len(t, fake.Messages(), 1)
	require.Equal(t, http.StatusConflict, fake.Requests()[1].StatusCode)

	// A 429 accepted nothing: the same key goes through afterwards.
	fake.RateLimitNext(1)
	p.RetryKey = uuid.NewString()
	_, err = c.Push(context.Background(), p)
	require.True(t, line.IsRetryable(err))
	_, err = c.Push(context.Background(), p)
	require.NoError(t, err)
	require.Len(t, fake.Messages(), 2)
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	for name, o := range map[string]line.Options{
		"no token":       {},
		"space in token": {Token: "abc def"},
		"bad URL":        {Token: "abc", BaseURL: "ftp://x"},
	} {
		err := o.Validate()
		require.Error(t, err, name)
		require.NotContains(t, err.Error(), "abc", name)
	}
	require.NoError(t, line.Options{Token: "abc+/="}.Validate())
}
