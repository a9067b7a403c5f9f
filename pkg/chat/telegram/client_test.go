package telegram_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/chat/telegram"
	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
)

const chatID = "-1001234567890"

func newFake(t *testing.T) *faketelegram.Server {
	t.Helper()
	return faketelegram.New(t, faketelegram.Options{ChatIDs: []string{chatID, "@vigil_alerts"}})
}

func newClient(t *testing.T, baseURL, token string, opts ...func(*telegram.Options)) *telegram.Client {
	t.Helper()
	o := telegram.Options{BaseURL: baseURL, Token: token}
	for _, f := range opts {
		f(&o)
	}
	c, err := telegram.New(o)
	require.NoError(t, err)
	return c
}

func TestSendMessage(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	c := newClient(t, fake.URL(), fake.Token())

	msg := telegram.Message{
		ChatID:         chatID,
		Text:           "<b>FIRING</b> " + telegram.EscapeHTML("disk > 90% on <db-1>"),
		ParseMode:      telegram.ParseModeHTML,
		DisablePreview: true,
		ReplyMarkup: telegram.InlineKeyboard{{
			{Text: "Approve", CallbackData: "approve:42"},
			{Text: "Reject", CallbackData: "reject:42"},
		}},
	}
	sent, err := c.SendMessage(t.Context(), msg)
	require.NoError(t, err)
	require.Equal(t, int64(1), sent.MessageID)
	require.Equal(t, int64(-1001234567890), sent.ChatID)
	require.WithinDuration(t, time.Now(), sent.Date, 5*time.Second)

	require.Equal(t, []faketelegram.Message{{
		MessageID:      1,
		ChatID:         chatID,
		Text:           "<b>FIRING</b> disk &gt; 90% on &lt;db-1&gt;",
		PlainText:      "FIRING disk > 90% on <db-1>",
		ParseMode:      "HTML",
		DisablePreview: true,
		ReplyMarkup:    [][]faketelegram.Button{{{Text: "Approve", CallbackData: "approve:42"}, {Text: "Reject", CallbackData: "reject:42"}}},
	}}, fake.Messages())

	sent, err = c.SendMessage(t.Context(), telegram.Message{ChatID: "@vigil_alerts", Text: "plain"})
	require.NoError(t, err)
	require.Equal(t, int64(1), sent.MessageID)
	last := fake.Messages()[1]
	require.Empty(t, last.ParseMode)
	require.False(t, last.DisablePreview)
	require.Nil(t, last.ReplyMarkup)
}

// A reply is sent as reply_parameters: Telegram threads it under the
// message it names, refuses it when that message is gone, and sends it
// plain then if SendWithoutReply says so.
func TestSendMessageReply(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	c := newClient(t, fake.URL(), fake.Token())
	first, err := c.SendMessage(t.Context(), telegram.Message{ChatID: chatID, Text: "incident"})
	require.NoError(t, err)

	_, err = c.SendMessage(t.Context(), telegram.Message{ChatID: chatID, Text: "analysis", ReplyTo: first.MessageID})
	require.NoError(t, err)
	_, err = c.SendMessage(t.Context(), telegram.Message{ChatID: chatID, Text: "gone", ReplyTo: 99})
	var apiErr *telegram.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, "Bad Request: message to be replied not found", apiErr.Description)
	require.True(t, telegram.IsPermanent(err))
	_, err = c.SendMessage(t.Context(), telegram.Message{ChatID: chatID, Text: "plain", ReplyTo: 99, SendWithoutReply: true})
	require.NoError(t, err)

	msgs := fake.Messages()
	require.Len(t, msgs, 3)
	require.Equal(t, first.MessageID, msgs[1].ReplyToMessageID)
	require.Equal(t, "plain", msgs[2].Text)
	require.Zero(t, msgs[2].ReplyToMessageID)
}

func TestSendMessageAPIErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		setup          func(*faketelegram.Server)
		wrongToken     bool
		msg            telegram.Message
		wantStatus     int
		wantCode       int
		wantDesc       string
		wantPermanent  bool
		wantRetryable  bool
		wantRetryAfter time.Duration
	}{
		{
			name: "chat not found", msg: telegram.Message{ChatID: "-100999", Text: "x"},
			wantStatus: 400, wantCode: 400, wantDesc: "Bad Request: chat not found", wantPermanent: true,
		},
		{
			name: "bad markup", msg: telegram.Message{ChatID: chatID, Text: "<b>x", ParseMode: telegram.ParseModeHTML},
			wantStatus: 400, wantCode: 400, wantDesc: `Bad Request: can't parse entities: Can't find end tag corresponding to start tag "b"`, wantPermanent: true,
		},
		{
			name: "too long", msg: telegram.Message{ChatID: chatID, Text: strings.Repeat("x", telegram.MaxMessageLength+1)},
			wantStatus: 400, wantCode: 400, wantDesc: "Bad Request: message is too long", wantPermanent: true,
		},
		{
			name: "wrong token", wrongToken: true, msg: telegram.Message{ChatID: chatID, Text: "x"},
			wantStatus: 401, wantCode: 401, wantDesc: "Unauthorized", wantPermanent: true,
		},
		{
			name: "forbidden", setup: func(s *faketelegram.Server) { s.FailNext(1, 403) }, msg: telegram.Message{ChatID: chatID, Text: "x"},
			wantStatus: 403, wantCode: 403, wantDesc: "Forbidden", wantPermanent: true,
		},
		{
			name: "not found", setup: func(s *faketelegram.Server) { s.FailNext(1, 404) }, msg: telegram.Message{ChatID: chatID, Text: "x"},
			wantStatus: 404, wantCode: 404, wantDesc: "Not Found", wantPermanent: true,
		},
		{
			name: "rate limited", setup: func(s *faketelegram.Server) { s.RateLimitNext(1, 7) }, msg: telegram.Message{ChatID: chatID, Text: "x"},
			wantStatus: 429, wantCode: 429, wantDesc: "Too Many Requests: retry after 7", wantRetryable: true, wantRetryAfter: 7 * time.Second,
		},
		{
			name: "server error", setup: func(s *faketelegram.Server) { s.FailNext(1, 500) }, msg: telegram.Message{ChatID: chatID, Text: "x"},
			wantStatus: 500, wantCode: 500, wantDesc: "Internal Server Error", wantRetryable: true,
		},
		{
			name: "proxy error page", setup: func(s *faketelegram.Server) { s.FailNext(1, 502) }, msg: telegram.Message{ChatID: chatID, Text: "x"},
			wantStatus: 502, wantCode: 0, wantDesc: "Bad Gateway", wantRetryable: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := newFake(t)
			if tt.setup != nil {
				tt.setup(fake)
			}
			token := fake.Token()
			if tt.wrongToken {
				token = "987654321:AAOtherToken"
			}
			c := newClient(t, fake.URL(), token)

			_, err := c.SendMessage(t.Context(), tt.msg)
			apiErr, ok := errors.AsType[*telegram.APIError](err)
			require.True(t, ok, "%v", err)
			require.Equal(t, &telegram.APIError{
				Method: "sendMessage", StatusCode: tt.wantStatus, Code: tt.wantCode, Description: tt.wantDesc,
				RetryAfter: tt.wantRetryAfter,
			}, apiErr)
			require.Equal(t, tt.wantPermanent, telegram.IsPermanent(err))
			require.Equal(t, tt.wantRetryable, telegram.IsRetryable(err))
			require.Equal(t, tt.wantRetryAfter, telegram.RetryAfter(err))
			require.NotContains(t, err.Error(), token)
			require.Empty(t, fake.Messages())
		})
	}
}

func TestSendMessageErrorText(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	c := newClient(t, fake.URL(), fake.Token())
	_, err := c.SendMessage(t.Context(), telegram.Message{ChatID: "-1", Text: "x"})
	require.EqualError(t, err, "telegram: sendMessage: 400 Bad Request: chat not found")
}

func TestSendMessageRetryAfterRateLimit(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	fake.RateLimitNext(2, 1)
	c := newClient(t, fake.URL(), fake.Token())
	msg := telegram.Message{ChatID: chatID, Text: "x"}

	var err error
	for range 3 {
		if _, err = c.SendMessage(t.Context(), msg); err == nil || !telegram.IsRetryable(err) {
			break
		}
		require.Equal(t, time.Second, telegram.RetryAfter(err))
	}
	require.NoError(t, err)
	require.Len(t, fake.Requests(), 3)
	require.Len(t, fake.Messages(), 1)
}

func TestSendMessageInvalid(t *testing.T) {
	t.Parallel()
	button := func(text, data string) telegram.InlineKeyboard {
		return telegram.InlineKeyboard{{{Text: "ok", CallbackData: "ok"}}, {{Text: text, CallbackData: data}}}
	}
	tests := []struct {
		name    string
		msg     telegram.Message
		wantErr string
	}{
		{name: "no chat", msg: telegram.Message{Text: "x"}, wantErr: "chat id: missing"},
		{name: "no text", msg: telegram.Message{ChatID: chatID}, wantErr: "text: missing"},
		{name: "unknown parse mode", msg: telegram.Message{ChatID: chatID, Text: "x", ParseMode: "html5"}, wantErr: `parse mode "html5": want "HTML", "MarkdownV2", "Markdown" or empty`},
		{name: "button without text", msg: telegram.Message{ChatID: chatID, Text: "x", ReplyMarkup: button("", "a")}, wantErr: "button [1][0]: text: missing"},
		{name: "empty callback data", msg: telegram.Message{ChatID: chatID, Text: "x", ReplyMarkup: button("a", "")}, wantErr: "button [1][0]: callback data is 0 bytes, want 1-64"},
		{name: "callback data over 64 bytes", msg: telegram.Message{ChatID: chatID, Text: "x", ReplyMarkup: button("a", strings.Repeat("é", 32)+"x")}, wantErr: "button [1][0]: callback data is 65 bytes, want 1-64"},
		{name: "negative reply", msg: telegram.Message{ChatID: chatID, Text: "x", ReplyTo: -1}, wantErr: "reply to message -1: want a message id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := newFake(t)
			c := newClient(t, fake.URL(), fake.Token())
			_, err := c.SendMessage(t.Context(), tt.msg)
			require.EqualError(t, err, "telegram: sendMessage: invalid message: "+tt.wantErr)
			require.ErrorIs(t, err, telegram.ErrInvalidMessage)
			require.True(t, telegram.IsPermanent(err))
			require.False(t, telegram.IsRetryable(err))
			require.Empty(t, fake.Requests(), "nothing is sent")
		})
	}

	t.Run("64 bytes of callback data pass", func(t *testing.T) {
		t.Parallel()
		fake := newFake(t)
		c := newClient(t, fake.URL(), fake.Token())
		_, err := c.SendMessage(t.Context(), telegram.Message{ChatID: chatID, Text: "x", ReplyMarkup: button("a", strings.Repeat("é", 32))})
		require.NoError(t, err)
	})
}

// roundTripFunc makes a transport out of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestSendMessageTransportErrors(t *testing.T) {
	t.Parallel()
	const token = "123456789:AASecretTokenThatMustNotLeak_xyz"

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	stop := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so that the server notices the client leave
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(hanging.Close)
	t.Cleanup(func() { close(stop) }) // runs first

	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("<html>hello</html>"))
	}))
	t.Cleanup(garbage.Close)

	tests := []struct {
		name          string
		baseURL       string
		client        *http.Client
		ctx           func(context.Context) (context.Context, context.CancelFunc)
		wantRetryable bool
		wantPermanent bool
		wantIs        error
	}{
		{name: "connection refused", baseURL: closed.URL, wantRetryable: true},
		{name: "client timeout", baseURL: hanging.URL, client: &http.Client{Timeout: 50 * time.Millisecond}, wantRetryable: true},
		{
			name: "deadline", baseURL: hanging.URL, wantRetryable: true, wantIs: context.DeadlineExceeded,
			ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
				return context.WithTimeout(ctx, 50*time.Millisecond)
			},
		},
		{
			name: "cancelled", baseURL: hanging.URL, wantIs: context.Canceled,
			ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(ctx)
				time.AfterFunc(50*time.Millisecond, cancel)
				return ctx, cancel
			},
		},
		{
			name: "transport quoting the URL", baseURL: "https://api.telegram.test", wantRetryable: true,
			client: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				return nil, errors.New("proxy refused " + r.URL.String())
			})},
		},
		{name: "2xx that is not the Bot API", baseURL: garbage.URL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			c := newClient(t, tt.baseURL, token, func(o *telegram.Options) {
				o.HTTPClient = tt.client
				o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			})
			ctx := t.Context()
			if tt.ctx != nil {
				var cancel context.CancelFunc
				ctx, cancel = tt.ctx(ctx)
				defer cancel()
			}

			_, err := c.SendMessage(ctx, telegram.Message{ChatID: chatID, Text: "x"})
			require.Error(t, err)
			require.Equal(t, tt.wantRetryable, telegram.IsRetryable(err), "%v", err)
			require.Equal(t, tt.wantPermanent, telegram.IsPermanent(err), "%v", err)
			if tt.wantIs != nil {
				require.ErrorIs(t, err, tt.wantIs)
			}
			require.NotContains(t, err.Error(), token)
			require.NotContains(t, logs.String(), token)
			if urlErr, ok := errors.AsType[*url.Error](err); ok {
				require.NotContains(t, urlErr.URL, token)
				require.Contains(t, urlErr.URL, "/bot<redacted>/sendMessage")
			}
		})
	}
}

func TestLogging(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	var logs bytes.Buffer
	c := newClient(t, fake.URL(), fake.Token(), func(o *telegram.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	_, err := c.SendMessage(t.Context(), telegram.Message{ChatID: chatID, Text: "x"})
	require.NoError(t, err)
	require.Contains(t, logs.String(), "component=telegram")
	require.Contains(t, logs.String(), "method=sendMessage status=200")
	require.NotContains(t, logs.String(), fake.Token())
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	const token = "123456789:AAE-bx_valid"
	tests := []struct {
		name    string
		opts    telegram.Options
		wantErr string
	}{
		{name: "minimal", opts: telegram.Options{Token: token}},
		{name: "own server", opts: telegram.Options{BaseURL: "http://localhost:8081/", Token: token}},
		{name: "no token", opts: telegram.Options{}, wantErr: "telegram: Token: missing"},
		{name: "token with a slash", opts: telegram.Options{Token: "123/secret"}, wantErr: "telegram: Token: has characters other than letters, digits, ':', '_' and '-'"},
		{name: "base URL without scheme", opts: telegram.Options{BaseURL: "api.telegram.org", Token: token}, wantErr: `telegram: BaseURL "api.telegram.org": want an http or https URL`},
		{name: "base URL of another scheme", opts: telegram.Options{BaseURL: "ftp://x", Token: token}, wantErr: `telegram: BaseURL "ftp://x": want an http or https URL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.opts.Validate()
			_, newErr := telegram.New(tt.opts)
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.NoError(t, newErr)
				return
			}
			require.EqualError(t, err, tt.wantErr)
			require.EqualError(t, newErr, tt.wantErr)
			require.NotContains(t, err.Error(), "secret")
		})
	}
}

func TestSendTruncatedMessage(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	c := newClient(t, fake.URL(), fake.Token())
	text, err := telegram.TruncateHTML("<b>Logs</b>\n<pre>"+telegram.EscapeHTML(strings.Repeat("😀 <tag> & ", 1000))+"</pre>", telegram.MaxMessageLength)
	require.NoError(t, err)
	_, err = c.SendMessage(t.Context(), telegram.Message{ChatID: chatID, Text: text, ParseMode: telegram.ParseModeHTML})
	require.NoError(t, err)
	msgs := fake.WaitForMessages(t, 1, time.Second)
	require.Len(t, []rune(msgs[0].PlainText), telegram.MaxMessageLength)
}

// An edit replaces the text and, without a keyboard, takes the buttons
// away; an edit that changes nothing, or of a message that is gone, is
// told apart.
func TestEditMessageText(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	c := newClient(t, fake.URL(), fake.Token())
	sent, err := c.SendMessage(t.Context(), telegram.Message{
		ChatID: chatID, Text: "<b>Approve?</b>", ParseMode: telegram.ParseModeHTML,
		ReplyMarkup: telegram.InlineKeyboard{{{Text: "Approve", CallbackData: "v1:a:1"}}},
	})
	require.NoError(t, err)

	edit := telegram.Edit{ChatID: chatID, MessageID: sent.MessageID, Text: "<b>Approved</b> by " + telegram.EscapeHTML("<alice>"), ParseMode: telegram.ParseModeHTML, DisablePreview: true}
	require.NoError(t, c.EditMessageText(t.Context(), edit))
	m, ok := fake.Message(chatID, sent.MessageID)
	require.True(t, ok)
	require.Equal(t, "Approved by <alice>", m.PlainText)
	require.Nil(t, m.ReplyMarkup)
	require.Len(t, m.Edits, 1)

	err = c.EditMessageText(t.Context(), edit)
	require.True(t, telegram.IsNotModified(err), "%v", err)
	require.True(t, telegram.IsPermanent(err))
	require.False(t, telegram.IsMessageNotFound(err))

	edit.MessageID = 99
	err = c.EditMessageText(t.Context(), edit)
	require.True(t, telegram.IsMessageNotFound(err), "%v", err)
	require.False(t, telegram.IsNotModified(err))

	edit.MessageID = 0
	require.ErrorIs(t, c.EditMessageText(t.Context(), edit), telegram.ErrInvalidMessage)
}

// Every method's errors, and the client's log lines, leave the token out:
// Telegram unreachable, a transport that quotes the URL, an error answer,
// a rate limit (whose retry_after is read whatever the method).
func TestEveryMethodHidesTheToken(t *testing.T) {
	t.Parallel()
	const token = "123456789:AASecretTokenThatMustNotLeak_xyz"
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	limited := newFake(t)
	quoting := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, errors.New("proxy refused " + r.URL.String())
	})}
	methods := map[string]func(context.Context, *telegram.Client) error{
		"sendMessage": func(ctx context.Context, c *telegram.Client) error {
			_, err := c.SendMessage(ctx, telegram.Message{ChatID: chatID, Text: "x"})
			return err
		},
		"editMessageText": func(ctx context.Context, c *telegram.Client) error {
			return c.EditMessageText(ctx, telegram.Edit{ChatID: chatID, MessageID: 1, Text: "x"})
		},
		"answerCallbackQuery": func(ctx context.Context, c *telegram.Client) error {
			return c.AnswerCallbackQuery(ctx, telegram.Answer{QueryID: "1", Text: "x"})
		},
		"getUpdates": func(ctx context.Context, c *telegram.Client) error {
			_, err := c.GetUpdates(ctx, telegram.Poll{})
			return err
		},
		"setWebhook": func(ctx context.Context, c *telegram.Client) error {
			return c.SetWebhook(ctx, "https://vigil.example.com/hook", "s", nil)
		},
		"getWebhookInfo": func(ctx context.Context, c *telegram.Client) error {
			_, err := c.WebhookInfo(ctx)
			return err
		},
		"deleteWebhook": func(ctx context.Context, c *telegram.Client) error { return c.DeleteWebhook(ctx) },
	}
	for method, call := range methods {
		for _, tt := range []struct {
			name    string
			baseURL string
			client  *http.Client
			token   string
			setup   func()
			retry   time.Duration
		}{
			{name: "unreachable", baseURL: closed.URL, token: token},
			{name: "transport quoting the URL", baseURL: "https://api.telegram.test", client: quoting, token: token},
			{name: "wrong token", baseURL: limited.URL(), token: token},
			{name: "rate limited", baseURL: limited.URL(), token: limited.Token(), setup: func() { limited.RateLimitNext(1, 3) }, retry: 3 * time.Second},
		} {
			var logs bytes.Buffer
			c := newClient(t, tt.baseURL, tt.token, func(o *telegram.Options) {
				o.HTTPClient = tt.client
				o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			})
			if tt.setup != nil {
				tt.setup()
			}
			err := call(t.Context(), c)
			require.Error(t, err, "%s: %s", method, tt.name)
			require.Contains(t, err.Error(), method, tt.name)
			require.NotContains(t, err.Error(), tt.token, "%s: %s", method, tt.name)
			require.NotContains(t, err.Error(), strings.SplitN(tt.token, ":", 2)[1], "%s: %s", method, tt.name)
			require.NotContains(t, logs.String(), strings.SplitN(tt.token, ":", 2)[1], "%s: %s", method, tt.name)
			require.Equal(t, tt.retry, telegram.RetryAfter(err), "%s: %s", method, tt.name)
			if tt.retry > 0 {
				require.True(t, telegram.IsRetryable(err), "%s: %s", method, tt.name)
			}
		}
	}
}

// A 200 whose body is cut short is an unreadable answer: Telegram may
// well have the message (the fake has), its id unknown; not retryable.
func TestSendMessageGarbledAnswer(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	fake.GarbleNext(1)
	c := newClient(t, fake.URL(), fake.Token())
	_, err := c.SendMessage(t.Context(), telegram.Message{ChatID: chatID, Text: "hello"})
	require.ErrorIs(t, err, telegram.ErrUnreadableAnswer)
	require.False(t, telegram.IsRetryable(err))
	require.Len(t, fake.Messages(), 1)
}
