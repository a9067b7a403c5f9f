package telegram_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/chat/telegram"
	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
)

const secret = "tg-webhook_Secret-0123456789abcdef"

func TestVerifySecret(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, header, secret string
		ok                   bool
	}{
		{name: "the secret", header: secret, secret: secret, ok: true},
		{name: "no header", header: "", secret: secret},
		{name: "another secret", header: secret + "x", secret: secret},
		{name: "a prefix", header: secret[:5], secret: secret},
		{name: "other case", header: strings.ToUpper(secret), secret: secret},
		{name: "no secret verifies nothing", header: "", secret: ""},
	} {
		h := http.Header{}
		if tt.header != "" {
			h.Set(telegram.SecretHeader, tt.header)
		}
		require.Equal(t, tt.ok, telegram.VerifySecret(h, tt.secret), tt.name)
	}
}

// webhook is a bot's webhook: it takes updates that carry its secret,
// and answers a callback query in its response, with a Call.
type webhook struct {
	secret string

	mu      sync.Mutex
	updates []json.RawMessage
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if !telegram.VerifySecret(r.Header, w.secret) {
		rw.WriteHeader(http.StatusUnauthorized)
		return
	}
	var u struct {
		CallbackQuery struct {
			ID string `json:"id"`
		} `json:"callback_query"`
	}
	var raw json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&raw); err != nil || json.Unmarshal(raw, &u) != nil {
		rw.WriteHeader(http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	w.updates = append(w.updates, raw)
	w.mu.Unlock()
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(telegram.Answer{QueryID: u.CallbackQuery.ID, Text: "noted"}.Call())
}

func (w *webhook) received() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.updates)
}

// card sends a message with one button, to press.
func card(t *testing.T, fake *faketelegram.Server, c *telegram.Client) faketelegram.Message {
	t.Helper()
	sent, err := c.SendMessage(t.Context(), telegram.Message{
		ChatID: chatID, Text: "Approve?", ReplyMarkup: telegram.InlineKeyboard{{{Text: "Approve", CallbackData: "v1:a:1"}}},
	})
	require.NoError(t, err)
	m, ok := fake.Message(chatID, sent.MessageID)
	require.True(t, ok)
	return m
}

// Telegram posts an update to the webhook with its secret; the webhook
// answers with a call, which Telegram makes. With another secret the
// update is refused, and nothing is answered.
func TestWebhook(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	c := newClient(t, fake.URL(), fake.Token())
	m := card(t, fake, c)
	wh := &webhook{secret: secret}
	srv := httptest.NewServer(wh)
	t.Cleanup(srv.Close)

	require.NoError(t, c.SetWebhook(t.Context(), srv.URL+"/hook", "another-secret_0123456789abcdef", []string{"callback_query"}))
	q := fake.Press(t, m, "v1:a:1", faketelegram.User{ID: 7, FirstName: "Alice"})
	d := fake.Deliveries()
	require.NotEmpty(t, d)
	require.Equal(t, http.StatusUnauthorized, d[len(d)-1].Statuses[0])
	require.Zero(t, wh.received())
	info, err := c.WebhookInfo(t.Context())
	require.NoError(t, err)
	require.Equal(t, srv.URL+"/hook", info.URL)
	require.Equal(t, 1, info.PendingUpdateCount, "refused: still pending")
	for _, got := range fake.CallbackQueries() {
		require.Nil(t, got.Answer)
	}

	require.NoError(t, c.SetWebhook(t.Context(), srv.URL+"/hook", secret, []string{"callback_query"}))
	fake.Press(t, m, "v1:a:1", faketelegram.User{ID: 8, FirstName: "Bob"})
	require.Equal(t, 2, wh.received(), "the pending update, then the new one")
	require.Equal(t, "noted", fake.WaitForAnswer(t, q.ID, 5*time.Second).Text)

	require.NoError(t, c.DeleteWebhook(t.Context()))
	info, err = c.WebhookInfo(t.Context())
	require.NoError(t, err)
	require.Empty(t, info.URL)
}

// A poll returns the presses; the next poll's offset confirms them.
// getUpdates is refused while a webhook is set.
func TestGetUpdates(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	c := newClient(t, fake.URL(), fake.Token())
	m := card(t, fake, c)

	require.NoError(t, c.SetWebhook(t.Context(), "https://vigil.example.com/hook", secret, nil))
	_, err := c.GetUpdates(t.Context(), telegram.Poll{})
	apiErr, ok := errors.AsType[*telegram.APIError](err)
	require.True(t, ok, "%v", err)
	require.Equal(t, http.StatusConflict, apiErr.Code)
	require.NoError(t, c.DeleteWebhook(t.Context()))

	q := fake.Press(t, m, "v1:a:1", faketelegram.User{ID: 7, FirstName: "Alice"})
	updates, err := c.GetUpdates(t.Context(), telegram.Poll{Timeout: time.Second, AllowedUpdates: []string{"callback_query"}})
	require.NoError(t, err)
	require.Len(t, updates, 1)
	var u struct {
		UpdateID      int64 `json:"update_id"`
		CallbackQuery struct {
			ID   string `json:"id"`
			Data string `json:"data"`
		} `json:"callback_query"`
	}
	require.NoError(t, json.Unmarshal(updates[0], &u))
	require.Equal(t, q.ID, u.CallbackQuery.ID)
	require.Equal(t, "v1:a:1", u.CallbackQuery.Data)
	require.NoError(t, c.AnswerCallbackQuery(t.Context(), telegram.Answer{QueryID: q.ID, Text: strings.Repeat("é", 300), ShowAlert: true}))
	a := fake.WaitForAnswer(t, q.ID, 5*time.Second)
	require.True(t, a.ShowAlert)
	require.Equal(t, strings.Repeat("é", telegram.MaxAnswerLength-1)+"…", a.Text, "cut to what Telegram shows")

	_, err = c.GetUpdates(t.Context(), telegram.Poll{Offset: u.UpdateID + 1, Limit: 1})
	require.NoError(t, err)
	info, err := c.WebhookInfo(t.Context())
	require.NoError(t, err)
	require.Zero(t, info.PendingUpdateCount, "confirmed")
}

// A call in a webhook's answer is its parameters and "method"; a chat's
// number goes as a JSON number, as Telegram sends it, a channel's name as
// a string.
func TestCallAsWebhookAnswer(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		chatID, want string
	}{
		{"42", `{"method":"sendMessage","chat_id":42,"text":"hi"}`},
		{"-1001234567890", `{"method":"sendMessage","chat_id":-1001234567890,"text":"hi"}`},
		{"@vigil_alerts", `{"method":"sendMessage","chat_id":"@vigil_alerts","text":"hi"}`},
		{"007", `{"method":"sendMessage","chat_id":"007","text":"hi"}`},
	} {
		call, err := telegram.Message{ChatID: tt.chatID, Text: "hi"}.Call()
		require.NoError(t, err)
		b, err := json.Marshal(call)
		require.NoError(t, err)
		require.JSONEq(t, tt.want, string(b), tt.chatID)
	}
	b, err := json.Marshal(&telegram.Call{Method: "deleteWebhook"})
	require.NoError(t, err)
	require.JSONEq(t, `{"method":"deleteWebhook"}`, string(b))
	_, err = json.Marshal(&telegram.Call{Method: "x", Params: []int{1}})
	require.Error(t, err, "parameters are an object")
}
