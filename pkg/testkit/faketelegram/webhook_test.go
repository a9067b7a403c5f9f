package faketelegram_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
)

func TestSetWebhookRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		strict     bool
		fields     map[string]any
		wantErr    string // description of a 400; empty for success
		wantExempt bool
	}{
		{name: "https", fields: map[string]any{"url": "https://vigil.example.com/telegram"}},
		{name: "https on 8443", fields: map[string]any{"url": "https://vigil.example.com:8443/telegram"}},
		{name: "bare host is https", fields: map[string]any{"url": "vigil.example.com/telegram"}},
		{name: "http", fields: map[string]any{"url": "http://vigil.example.com/telegram"}, wantErr: "bad webhook: An HTTPS URL must be provided for webhook"},
		{name: "other port", fields: map[string]any{"url": "https://vigil.example.com:8080/telegram"}, wantErr: "bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"},
		{name: "not a URL", fields: map[string]any{"url": "https://"}, wantErr: "invalid webhook URL specified"},
		{name: "other scheme", fields: map[string]any{"url": "ftp://vigil.example.com/"}, wantErr: "invalid webhook URL specified"},
		{name: "loopback http", fields: map[string]any{"url": "http://127.0.0.1:4321/telegram"}, wantExempt: true},
		{name: "localhost http", fields: map[string]any{"url": "http://localhost:4321/telegram"}, wantExempt: true},
		{name: "loopback https on 443", fields: map[string]any{"url": "https://[::1]/telegram"}},
		{name: "strict loopback http", strict: true, fields: map[string]any{"url": "http://127.0.0.1:4321/telegram"}, wantErr: "bad webhook: An HTTPS URL must be provided for webhook"},
		{name: "strict loopback port", strict: true, fields: map[string]any{"url": "https://127.0.0.1:4321/telegram"}, wantErr: "bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"},
		{name: "secret of 256", fields: map[string]any{"url": "https://vigil.example.com/", "secret_token": strings.Repeat("aZ0_-", 51) + "x"}},
		{name: "secret of 257", fields: map[string]any{"url": "https://vigil.example.com/", "secret_token": strings.Repeat("a", 257)}, wantErr: "secret token is too long"},
		{name: "secret with base64 padding", fields: map[string]any{"url": "https://vigil.example.com/", "secret_token": "c2VjcmV0=="}, wantErr: "secret token contains unallowed characters"},
		{name: "secret with a space", fields: map[string]any{"url": "https://vigil.example.com/", "secret_token": "a b"}, wantErr: "secret token contains unallowed characters"},
		{name: "secret checked before the scheme", fields: map[string]any{"url": "http://vigil.example.com/", "secret_token": "a/b"}, wantErr: "secret token contains unallowed characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := faketelegram.New(t, faketelegram.Options{StrictWebhookURL: tt.strict})
			status, body := callMethod(t, s, "setWebhook", tt.fields)
			if tt.wantErr != "" {
				require.Equal(t, 400, status)
				require.Equal(t, errorBody(400, "Bad Request: "+tt.wantErr), body)
				_, set := s.Webhook()
				require.False(t, set)
				return
			}
			require.Equal(t, 200, status, "%v", body)
			require.Equal(t, "Webhook was set", body["description"])
			wh, set := s.Webhook()
			require.True(t, set)
			require.Equal(t, tt.fields["url"], wh.URL)
			require.Equal(t, tt.wantExempt, wh.Exempt)
			require.Equal(t, 40, wh.MaxConnections)
		})
	}
}

func TestWebhookLifecycle(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	set := map[string]any{"url": "https://vigil.example.com/telegram", "secret_token": "s3cret", "max_connections": 500, "allowed_updates": []string{"callback_query", "message"}}

	status, body := callMethod(t, s, "setWebhook", set)
	require.Equal(t, 200, status, "%v", body)
	require.Equal(t, "Webhook was set", body["description"])
	status, body = callMethod(t, s, "setWebhook", set)
	require.Equal(t, 200, status, "%v", body)
	require.Equal(t, "Webhook is already set", body["description"])

	wh, _ := s.Webhook()
	require.Equal(t, faketelegram.Webhook{URL: "https://vigil.example.com/telegram", SecretToken: "s3cret", MaxConnections: 100}, wh)

	status, body = callMethod(t, s, "getWebhookInfo", nil)
	require.Equal(t, 200, status)
	require.Equal(t, map[string]any{
		"url": "https://vigil.example.com/telegram", "has_custom_certificate": false, "pending_update_count": json.Number("0"),
		"max_connections": json.Number("100"), "allowed_updates": []any{"message", "callback_query"},
	}, body["result"], "the secret token is never shown")

	status, body = callMethod(t, s, "deleteWebhook", map[string]any{})
	require.Equal(t, 200, status)
	require.Equal(t, "Webhook was deleted", body["description"])
	status, body = callMethod(t, s, "setWebhook", map[string]any{"url": ""})
	require.Equal(t, 200, status)
	require.Equal(t, "Webhook is already deleted", body["description"])
	_, isSet := s.Webhook()
	require.False(t, isSet)
}

// app is a bot's webhook endpoint: it records what it receives and answers
// with the next status queued (200 when none is).
type app struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	reply    string
	got      []received
}

type received struct {
	secret      string
	contentType string
	update      map[string]any
}

func newApp(t *testing.T) *app {
	t.Helper()
	a := &app{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var update map[string]any
		dec := json.NewDecoder(r.Body)
		dec.UseNumber()
		_ = dec.Decode(&update)
		a.mu.Lock()
		defer a.mu.Unlock()
		a.got = append(a.got, received{r.Header.Get("X-Telegram-Bot-Api-Secret-Token"), r.Header.Get("Content-Type"), update})
		status := http.StatusOK
		if len(a.statuses) > 0 {
			status, a.statuses = a.statuses[0], a.statuses[1:]
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, a.reply)
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *app) received() []received {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]received(nil), a.got...)
}

func (a *app) answerWith(statuses ...int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.statuses = append(a.statuses, statuses...)
}

func (a *app) replyWith(body string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reply = body
}

func setWebhook(t *testing.T, s *faketelegram.Server, fields map[string]any) {
	t.Helper()
	status, body := callMethod(t, s, "setWebhook", fields)
	require.Equal(t, 200, status, "%v", body)
}

func TestPressDeliversToWebhook(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := newApp(t)
	card := sendCard(t, s, chatID)
	setWebhook(t, s, map[string]any{"url": a.URL + "/telegram", "secret_token": "s3cret"})

	q := s.Press(t, card, "approve:7", alice)
	got := a.received()
	require.Len(t, got, 1, "delivered before Press returns")
	require.Equal(t, "s3cret", got[0].secret)
	require.Equal(t, "application/json", got[0].contentType)
	require.Equal(t, json.Number(jsonInt(q.UpdateID)), got[0].update["update_id"])
	cq := got[0].update["callback_query"].(map[string]any)
	require.Equal(t, q.ID, cq["id"])
	require.Equal(t, "approve:7", cq["data"])

	require.Equal(t, []faketelegram.Delivery{{UpdateID: q.UpdateID, URL: a.URL + "/telegram", Statuses: []int{200}}}, s.Deliveries())
	status, body := callMethod(t, s, "getWebhookInfo", nil)
	require.Equal(t, 200, status)
	require.Equal(t, json.Number("0"), body["result"].(map[string]any)["pending_update_count"])
}

func TestWebhookRetriesAndKeepsFailedUpdates(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := newApp(t)
	card := sendCard(t, s, chatID)
	setWebhook(t, s, map[string]any{"url": a.URL})

	a.answerWith(500, 502)
	first := s.Press(t, card, "approve:7", alice)
	require.Equal(t, []faketelegram.Delivery{{UpdateID: first.UpdateID, URL: a.URL, Statuses: []int{500, 502, 200}}}, s.Deliveries())

	a.answerWith(401, 401, 401)
	second := s.Press(t, card, "reject:7", alice)
	d := s.Deliveries()[1]
	require.Equal(t, []int{401, 401, 401}, d.Statuses)
	require.Equal(t, "Wrong response from the webhook: 401 Unauthorized", d.Err)
	status, body := callMethod(t, s, "getWebhookInfo", nil)
	require.Equal(t, 200, status)
	info := body["result"].(map[string]any)
	require.Equal(t, json.Number("1"), info["pending_update_count"])
	require.Equal(t, "Wrong response from the webhook: 401 Unauthorized", info["last_error_message"])
	require.Contains(t, info, "last_error_date")

	third := s.Press(t, card, "approve:7", alice)
	var delivered []int64
	for _, d := range s.Deliveries()[2:] {
		require.Empty(t, d.Err)
		delivered = append(delivered, d.UpdateID)
	}
	require.Equal(t, []int64{second.UpdateID, third.UpdateID}, delivered, "the failed update goes first next time")
}

func TestWebhookAnswerWithMethod(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := newApp(t)
	card := sendCard(t, s, chatID)
	setWebhook(t, s, map[string]any{"url": a.URL})

	// The bot cannot know the id before the press; the fake issues them in
	// order, so the test reads the next one from a first press.
	first := s.Press(t, card, "approve:7", alice)
	require.Nil(t, s.CallbackQueries()[0].Answer)
	a.replyWith(`{"method":"answerCallbackQuery","callback_query_id":"` + nextQueryID(t, first.ID) + `","text":"Rejected"}`)
	second := s.Press(t, card, "reject:7", alice)

	require.Equal(t, "answerCallbackQuery", s.Deliveries()[1].ReplyMethod)
	require.Equal(t, faketelegram.CallbackAnswer{Text: "Rejected"}, *s.CallbackQueries()[1].Answer)
	require.Equal(t, second.ID, s.CallbackQueries()[1].ID)
}

func TestDropPendingUpdates(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	card := sendCard(t, s, chatID)
	s.Press(t, card, "approve:7", alice)
	setWebhook(t, s, map[string]any{"url": "https://vigil.example.com/telegram"})
	status, body := callMethod(t, s, "deleteWebhook", map[string]any{"drop_pending_updates": true})
	require.Equal(t, 200, status, "%v", body)
	require.Empty(t, getUpdates(t, s, map[string]any{}))
}

func nextQueryID(t *testing.T, id string) string {
	t.Helper()
	var n uint64
	require.NoError(t, json.Unmarshal([]byte(id), &n))
	b, err := json.Marshal(n + 1)
	require.NoError(t, err)
	return string(b)
}

// Redeliver sends an update once more, as Telegram does when it did not
// see the bot take it: the same update_id and payload.
func TestRedeliver(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := newApp(t)
	card := sendCard(t, s, chatID)
	setWebhook(t, s, map[string]any{"url": a.URL + "/telegram", "secret_token": "s3cret"})
	q := s.Press(t, card, "approve:7", alice)
	s.Redeliver(t, q.UpdateID)
	got := a.received()
	require.Len(t, got, 2)
	require.Equal(t, got[0].update, got[1].update)
	require.Equal(t, json.Number(jsonInt(q.UpdateID)), got[1].update["update_id"])
	ds := s.Deliveries()
	require.Len(t, ds, 2)
	require.Equal(t, q.UpdateID, ds[1].UpdateID)
}
