package slack_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
	"github.com/vigil-ops/vigil/services/gateway/internal/chat"
	"github.com/vigil-ops/vigil/services/gateway/internal/chat/slack"
	"github.com/vigil-ops/vigil/services/gateway/internal/postgres"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// signingSecret looks like a Slack app's: 32 hex characters.
const signingSecret = "8f742231b10e8888abcd99yyyzzz85a5"

type env struct {
	svc   *access.Service
	store *postgres.Store
	h     http.Handler
}

// newEnv is the slash command handler over the real access service and a
// fresh gateway schema, with user alice (operator of payments).
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	pool, err := db.Open(ctx, testkit.Postgres(t), "gateway")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, db.Migrate(ctx, pool, "gateway", db.Sub(postgres.Migrations, "migrations")))
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	e := &env{store: postgres.New(pool)}
	hasher := access.NewHasher(access.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 2)
	e.svc = access.New(access.Options{ChatProviders: []access.ChatProvider{access.Slack}},
		e.store, auth.NewKeySet(priv), hasher, "", testkit.Logger(t))
	_, err = e.svc.CreateUser(ctx, access.User{Name: "alice", Role: auth.RoleOperator, Teams: []string{"payments"}}, "correct horse battery")
	require.NoError(t, err)
	linker := &chat.Linker{Redeemer: e.svc, Audit: func(ctx context.Context, a auth.AuditEntry) {
		require.NoError(t, e.store.Audit(ctx, a))
	}, Log: testkit.Logger(t)}
	e.h = &slack.Commands{SigningSecret: signingSecret, Linker: linker, MaxBytes: 4096, Log: testkit.Logger(t)}
	return e
}

func (e *env) code(t *testing.T) string {
	t.Helper()
	c, err := e.svc.CreateChatLinkCode(context.Background(), auth.Principal{Kind: auth.KindUser, Name: "alice"}, access.Slack)
	require.NoError(t, err)
	return c.Code
}

// command is a slash command's body, as Slack posts it.
func command(text string) string {
	return url.Values{
		"token": {"gIkuvaNzQIHg97ATvDxqgjtO"}, "team_id": {"T0001"}, "team_domain": {"example"},
		"enterprise_id": {"E0001"}, "channel_id": {"C2147483705"}, "channel_name": {"test"},
		"user_id": {"U2147483697"}, "user_name": {"alice"}, "command": {"/vigil"}, "text": {text},
		"response_url": {"https://hooks.slack.com/commands/1234/5678"}, "trigger_id": {"13345224609.738474920.8088930838d88f008e0"},
		"api_app_id": {"A123456"},
	}.Encode()
}

// sign is what Slack does: v0= and the hex HMAC-SHA256 of
// "v0:<timestamp>:<body>" keyed with the signing secret.
func sign(secret string, at time.Time, body string) (ts, sig string) {
	ts = strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":" + body))
	return ts, "v0=" + hex.EncodeToString(mac.Sum(nil))
}

func (e *env) post(t *testing.T, body, ts, sig string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/v1/webhooks/slack/commands", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if ts != "" {
		req.Header.Set("X-Slack-Request-Timestamp", ts)
	}
	if sig != "" {
		req.Header.Set("X-Slack-Signature", sig)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

func (e *env) signed(t *testing.T, body string) *httptest.ResponseRecorder {
	t.Helper()
	ts, sig := sign(signingSecret, time.Now(), body)
	return e.post(t, body, ts, sig)
}

type ephemeral struct {
	ResponseType string `json:"response_type"`
	Text         string `json:"text"`
}

func answer(t *testing.T, rec *httptest.ResponseRecorder) ephemeral {
	t.Helper()
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var a ephemeral
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &a))
	require.Equal(t, "ephemeral", a.ResponseType, "only the sender sees it")
	return a
}

func (e *env) linkedTo(t *testing.T, id string) string {
	t.Helper()
	p, err := e.svc.ChatPrincipal(context.Background(), access.Slack, id)
	if err != nil {
		require.ErrorIs(t, err, auth.ErrUnauthenticated)
		return ""
	}
	return p.Name
}

func TestSlackLink(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	code := e.code(t)
	require.Equal(t, "Linked to Vigil user alice.", answer(t, e.signed(t, command("link "+code))).Text)
	p, err := e.svc.ChatPrincipal(context.Background(), access.Slack, "T0001:U2147483697")
	require.NoError(t, err, "the account is workspace-qualified")
	require.Equal(t, "alice", p.Name)
	require.Equal(t, []string{"payments"}, p.Teams)

	require.Contains(t, answer(t, e.signed(t, command("link "+code))).Text, "unknown or expired", "a code works once")
	require.Contains(t, answer(t, e.signed(t, command("LINK nonsense"))).Text, "unknown or expired")
	require.Contains(t, answer(t, e.signed(t, command(""))).Text, "/vigil link CODE")
	require.Contains(t, answer(t, e.signed(t, command("approve everything"))).Text, "/vigil link CODE", "anything else is no command")

	// Slack checks the URL's certificate now and then.
	rec := e.signed(t, "ssl_check=1&token=x")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Empty(t, rec.Body.String())

	evs, err := e.store.AuditEvents(context.Background(), postgres.AuditQuery{Actor: "slack:T0001:U2147483697", Limit: 10})
	require.NoError(t, err)
	require.Len(t, evs, 3)
	require.Equal(t, "user/alice", evs[2].Target)
	require.Equal(t, "OK", evs[2].Code)
}

func TestSlackRefusesWhatSlackDidNotSign(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	code := e.code(t)
	body := command("link " + code)
	now := time.Now()
	tsOld, sigOld := sign(signingSecret, now.Add(-6*time.Minute), body)
	tsNew, sigNew := sign(signingSecret, now.Add(6*time.Minute), body)
	ts, sig := sign(signingSecret, now, body)
	_, sigOther := sign("another-apps-signing-secret", now, body)
	tampered := strings.Replace(body, "U2147483697", "U0000000666", 1)
	for _, tt := range []struct {
		name, body, ts, sig string
	}{
		{"unsigned", body, "", ""},
		{"no timestamp", body, "", sig},
		{"another secret", body, ts, sigOther},
		{"timestamp 6 minutes old", body, tsOld, sigOld},
		{"timestamp 6 minutes ahead", body, tsNew, sigNew},
		{"old signature, fresh timestamp", body, ts, sigOld},
		{"tampered body", tampered, ts, sig},
		{"upper-case hex", body, ts, "v0=" + strings.ToUpper(strings.TrimPrefix(sig, "v0="))},
		{"not a timestamp", body, "yesterday", sig},
	} {
		rec := e.post(t, tt.body, tt.ts, tt.sig)
		require.Equal(t, http.StatusUnauthorized, rec.Code, tt.name)
		require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"), tt.name)
	}
	require.Empty(t, e.linkedTo(t, "T0001:U2147483697"))
	require.Empty(t, e.linkedTo(t, "T0001:U0000000666"))

	// Within the window either way, it is Slack's; the code was not used up.
	ts, sig = sign(signingSecret, now.Add(-4*time.Minute), body)
	require.Equal(t, "Linked to Vigil user alice.", answer(t, e.post(t, body, ts, sig)).Text)

	big := command("link " + strings.Repeat("A", 5000))
	ts, sig = sign(signingSecret, now, big)
	require.Equal(t, http.StatusRequestEntityTooLarge, e.post(t, big, ts, sig).Code)
}
