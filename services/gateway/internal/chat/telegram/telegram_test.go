package telegram_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/auth"
	botapi "github.com/vigil-ops/vigil/pkg/chat/telegram"
	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
	"github.com/vigil-ops/vigil/services/gateway/internal/chat"
	"github.com/vigil-ops/vigil/services/gateway/internal/chat/telegram"
	"github.com/vigil-ops/vigil/services/gateway/internal/postgres"
)

func TestMain(m *testing.M) { testkit.Main(m) }

const secret = "tg-webhook_Secret-0123"

type env struct {
	svc   *access.Service
	store *postgres.Store
	h     http.Handler

	mu  sync.Mutex
	now time.Time
}

func (e *env) Now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

// newEnv is the Telegram webhook over the real access service and a fresh
// gateway schema, with users alice (operator of payments) and bob.
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	e := &env{store: newStore(t), now: time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)}
	hasher := access.NewHasher(access.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 2)
	e.svc = access.New(access.Options{ChatProviders: []access.ChatProvider{access.Telegram}, Now: e.Now},
		e.store, auth.NewKeySet(priv), hasher, "", testkit.Logger(t))
	for _, u := range []access.User{{Name: "alice", Role: auth.RoleOperator, Teams: []string{"payments"}}, {Name: "bob", Role: auth.RoleViewer}} {
		_, err := e.svc.CreateUser(ctx, u, "correct horse battery")
		require.NoError(t, err)
	}
	linker := &chat.Linker{Redeemer: e.svc, Audit: func(ctx context.Context, a auth.AuditEntry) {
		require.NoError(t, e.store.Audit(ctx, a))
	}, Log: testkit.Logger(t)}
	e.h = &telegram.Webhook{Secret: secret, Bot: &telegram.Bot{ID: "42", Updates: e.store, Linker: linker, Log: testkit.Logger(t)}, MaxBytes: 4096, Log: testkit.Logger(t)}
	return e
}

// newStore is a fresh gateway schema.
func newStore(t *testing.T) *postgres.Store {
	t.Helper()
	ctx := context.Background()
	pool, err := db.Open(ctx, testkit.Postgres(t), "gateway")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, db.Migrate(ctx, pool, "gateway", db.Sub(postgres.Migrations, "migrations")))
	return postgres.New(pool)
}

func (e *env) code(t *testing.T, user string) string {
	t.Helper()
	c, err := e.svc.CreateChatLinkCode(context.Background(), auth.Principal{Kind: auth.KindUser, Name: user}, access.Telegram)
	require.NoError(t, err)
	return c.Code
}

// lastUpdateID numbers the updates of the tests.
var lastUpdateID atomic.Int64

// update is a Bot API update of a text message from user from in chat,
// with an update_id of its own.
func update(from, chat int64, chatType, text string) string {
	b, _ := json.Marshal(map[string]any{
		"update_id": 1000 + lastUpdateID.Add(1),
		"message": map[string]any{
			"message_id": 7, "date": 1900000000, "text": text,
			"from": map[string]any{"id": from, "is_bot": false, "first_name": "Alice"},
			"chat": map[string]any{"id": chat, "type": chatType},
		},
	})
	return string(b)
}

func (e *env) post(t *testing.T, body, token string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/v1/webhooks/telegram", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set(botapi.SecretHeader, token)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

type sendMessage struct {
	Method string `json:"method"`
	ChatID int64  `json:"chat_id"`
	Text   string `json:"text"`
}

// reply is the Bot API call the webhook answered with.
func reply(t *testing.T, rec *httptest.ResponseRecorder) sendMessage {
	t.Helper()
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var m sendMessage
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &m))
	require.Equal(t, "sendMessage", m.Method)
	return m
}

func (e *env) linkedTo(t *testing.T, id string) string {
	t.Helper()
	p, err := e.svc.ChatPrincipal(context.Background(), access.Telegram, id)
	if err != nil {
		require.ErrorIs(t, err, auth.ErrUnauthenticated)
		return ""
	}
	return p.Name
}

func TestTelegramRefusesWithoutTheSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	code := e.code(t, "alice")
	body := update(42, 42, "private", "/link "+code)
	for name, token := range map[string]string{"no secret": "", "wrong secret": secret + "x", "a prefix": secret[:5]} {
		rec := e.post(t, body, token)
		require.Equal(t, http.StatusUnauthorized, rec.Code, name)
		require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"), name)
		var p server.Problem
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p), name)
		require.Contains(t, p.Detail, botapi.SecretHeader, name)
	}
	require.Empty(t, e.linkedTo(t, "42"))
	// The code is still good.
	require.Equal(t, "Linked to Vigil user alice.", reply(t, e.post(t, body, secret)).Text)
}

func TestTelegramLink(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()

	code := e.code(t, "alice")
	m := reply(t, e.post(t, update(4242, 4242, "private", "/link "+code), secret))
	require.Equal(t, sendMessage{Method: "sendMessage", ChatID: 4242, Text: "Linked to Vigil user alice."}, m)
	p, err := e.svc.ChatPrincipal(ctx, access.Telegram, "4242")
	require.NoError(t, err)
	require.Equal(t, "alice", p.Name)
	require.Equal(t, auth.RoleOperator, p.Role)
	require.Equal(t, []string{"payments"}, p.Teams)

	// Used up: another account sending it learns nothing and links nothing.
	m = reply(t, e.post(t, update(666, 666, "private", "/link "+code), secret))
	require.Equal(t, int64(666), m.ChatID)
	require.Equal(t, "That code is unknown or expired: run `vigil users link-code --provider telegram` for a new one.", m.Text)
	require.Empty(t, e.linkedTo(t, "666"))

	// Expired.
	code = e.code(t, "bob")
	e.advance(access.ChatLinkCodeTTL + time.Second)
	m = reply(t, e.post(t, update(77, 77, "private", "/link "+code), secret))
	require.Contains(t, m.Text, "unknown or expired")
	require.Empty(t, e.linkedTo(t, "77"))

	// A deep link t.me/<bot>?start=CODE, with the bot's name in the
	// command; it relinks bob to another account.
	m = reply(t, e.post(t, update(77, 77, "private", "/start@VigilBot "+e.code(t, "bob")), secret))
	require.Equal(t, "Linked to Vigil user bob.", m.Text)
	m = reply(t, e.post(t, update(78, 78, "private", "/link "+e.code(t, "bob")), secret))
	require.Equal(t, "Linked to Vigil user bob.", m.Text)
	require.Empty(t, e.linkedTo(t, "77"), "a new link replaces the old")
	require.Equal(t, "bob", e.linkedTo(t, "78"))

	// No code: how to get one.
	m = reply(t, e.post(t, update(79, 79, "private", "/link"), secret))
	require.Contains(t, m.Text, "vigil users link-code --provider telegram")

	// Every attempt is in the audit log, as the account that made it.
	evs, err := e.store.AuditEvents(ctx, postgres.AuditQuery{Method: "chat.telegram/Link", Limit: 10})
	require.NoError(t, err)
	var got []string
	for _, ev := range evs {
		got = append(got, fmt.Sprintf("%s %s %s", ev.Actor, ev.Target, ev.Code))
	}
	require.ElementsMatch(t, []string{
		"telegram:4242 user/alice OK", "telegram:666 chat-link-code NotFound", "telegram:77 chat-link-code NotFound",
		"telegram:77 user/bob OK", "telegram:78 user/bob OK",
	}, got)
}

func TestTelegramIgnoresWhatIsNotALinkInAPrivateChat(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	code := e.code(t, "alice")
	for name, body := range map[string]string{
		"group chat":      update(42, -1001234, "group", "/link "+code),
		"supergroup":      update(42, -1001234, "supergroup", "/link@VigilBot "+code),
		"other text":      update(42, 42, "private", "hello /link "+code),
		"another command": update(42, 42, "private", "/restart "+code),
		"edited message":  `{"update_id":2,"edited_message":{"message_id":1,"date":1,"chat":{"id":42,"type":"private"},"from":{"id":42,"is_bot":false,"first_name":"A"},"text":"/link ` + code + `"}}`,
		"channel post":    `{"update_id":3,"channel_post":{"message_id":1,"date":1,"chat":{"id":-100,"type":"channel"},"text":"/link ` + code + `"}}`,
		"from a bot":      strings.Replace(update(42, 42, "private", "/link "+code), `"is_bot":false`, `"is_bot":true`, 1),
	} {
		rec := e.post(t, body, secret)
		require.Equal(t, http.StatusOK, rec.Code, name)
		require.Empty(t, rec.Body.String(), name)
	}
	require.Empty(t, e.linkedTo(t, "42"))
	require.Equal(t, "Linked to Vigil user alice.", reply(t, e.post(t, update(42, 42, "private", "/link "+code), secret)).Text, "the code was not used up")
}

// Without the bot's token a button cannot be answered before Vigil acts:
// it is refused in the webhook's answer, and nothing else happens.
func TestTelegramButtonsNeedTheBotToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := e.post(t, `{"update_id":1,"callback_query":{"id":"77","from":{"id":42,"is_bot":false,"first_name":"A"},`+
		`"chat_instance":"1","data":"v1:a:0190a0a0-0000-7000-8000-000000000001"}}`, secret)
	require.Equal(t, http.StatusOK, rec.Code)
	var got map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	require.Equal(t, "answerCallbackQuery", got["method"])
	require.Equal(t, "77", got["callback_query_id"])
	require.Equal(t, true, got["show_alert"])
	require.Contains(t, got["text"], "bot's token")
}

func TestTelegramRejectsMalformedUpdates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	require.Equal(t, http.StatusBadRequest, e.post(t, `{"update_id":`, secret).Code)
	require.Equal(t, http.StatusBadRequest, e.post(t, `{"message":{"chat":{"id":"x"}}}`, secret).Code)
	big := update(42, 42, "private", "/link "+strings.Repeat("A", 5000))
	require.Equal(t, http.StatusRequestEntityTooLarge, e.post(t, big, secret).Code)
}
