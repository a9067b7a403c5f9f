package fakeslack_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit/fakeslack"
)

var alice = fakeslack.User{ID: "U0ALICE01", Username: "alice"}

// slackApp is an app's interactivity endpoint. It verifies requests the
// way Slack tells apps to, computed here independently of the fake:
// HMAC-SHA256 of "v0:<timestamp>:<body>" keyed with the signing secret,
// and a timestamp within five minutes. It answers 200 or 401.
type slackApp struct {
	*httptest.Server
	secret string
	delay  time.Duration
	mu     sync.Mutex
	got    []delivered
}

type delivered struct {
	verified    bool
	contentType string
	payload     obj
}

func newSlackApp(t *testing.T, secret string) *slackApp {
	t.Helper()
	a := &slackApp{secret: secret}
	a.Server = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.Close)
	return a
}

func (a *slackApp) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	d := delivered{verified: verify(a.secret, r.Header, body), contentType: r.Header.Get("Content-Type")}
	if form, err := url.ParseQuery(string(body)); err == nil {
		dec := json.NewDecoder(strings.NewReader(form.Get("payload")))
		dec.UseNumber()
		_ = dec.Decode(&d.payload)
	}
	a.mu.Lock()
	a.got = append(a.got, d)
	delay := a.delay
	a.mu.Unlock()
	time.Sleep(delay)
	if !d.verified {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func verify(secret string, h http.Header, body []byte) bool {
	ts, err := strconv.ParseInt(h.Get("X-Slack-Request-Timestamp"), 10, 64)
	if err != nil || math.Abs(float64(time.Now().Unix()-ts)) > 300 {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + h.Get("X-Slack-Request-Timestamp") + ":"))
	mac.Write(body)
	want := "v0=" + hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(want), []byte(h.Get("X-Slack-Signature")))
}

func (a *slackApp) received() []delivered {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]delivered(nil), a.got...)
}

// postCard posts an approval card and returns it as the fake holds it.
func postCard(t *testing.T, s *fakeslack.Server, threadTS string) fakeslack.Message {
	t.Helper()
	fields := obj{"channel": alerts, "text": "Repair needs approval", "blocks": approvalCard()}
	if threadTS != "" {
		fields["thread_ts"] = threadTS
	}
	m, ok := s.Message(alerts, post(t, s, fields))
	require.True(t, ok)
	return m
}

func TestPress(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	app := newSlackApp(t, s.SigningSecret())
	s.SetInteractivityURL(app.URL + "/slack/interactions")
	parent := post(t, s, obj{"channel": alerts, "text": "incident #7"})
	card := postCard(t, s, parent)

	in := s.Press(t, card, "approve", alice)
	require.True(t, in.Acknowledged(), "%+v", in)
	require.Equal(t, http.StatusOK, in.StatusCode)
	require.Less(t, in.Elapsed, fakeslack.AckTimeout)

	// The signature, computed independently of the fake.
	mac := hmac.New(sha256.New, []byte(fakeslack.DefaultSigningSecret))
	mac.Write([]byte("v0:" + in.Timestamp + ":" + in.Body))
	require.Equal(t, "v0="+hex.EncodeToString(mac.Sum(nil)), in.Signature)
	require.Equal(t, "payload="+url.QueryEscape(string(in.Payload)), in.Body)
	require.InDelta(t, time.Now().Unix(), mustInt(t, in.Timestamp), 5)

	got := app.received()
	require.Len(t, got, 1)
	require.True(t, got[0].verified)
	require.Equal(t, "application/x-www-form-urlencoded", got[0].contentType)
	p := got[0].payload
	require.Equal(t, "block_actions", p["type"])
	require.Equal(t, obj{"id": "U0ALICE01", "username": "alice", "name": "alice", "team_id": fakeslack.DefaultTeamID}, p["user"])
	require.Equal(t, obj{"id": fakeslack.DefaultTeamID, "domain": "vigil-test"}, p["team"])
	require.Equal(t, fakeslack.DefaultAppID, p["api_app_id"])
	require.Equal(t, fakeslack.DefaultVerificationToken, p["token"])
	require.Equal(t, obj{"id": alerts, "name": "alerts"}, p["channel"])
	require.Equal(t, obj{"type": "message", "message_ts": card.TS, "channel_id": alerts, "is_ephemeral": false, "thread_ts": parent}, p["container"])
	require.Equal(t, in.TriggerID, p["trigger_id"])
	require.Equal(t, in.ResponseURL, p["response_url"])
	require.True(t, strings.HasPrefix(in.ResponseURL, s.URL()+"/actions/"+fakeslack.DefaultTeamID+"/"), in.ResponseURL)
	require.Equal(t, []any{obj{
		"type": "button", "action_id": "approve", "block_id": "repair:7", "value": "7", "style": "primary",
		"text": obj{"type": "plain_text", "text": "Approve", "emoji": true}, "action_ts": in.ActionTS,
	}}, p["actions"])
	msg := p["message"].(obj)
	require.Equal(t, card.TS, msg["ts"])
	require.Len(t, msg["blocks"], 5)

	require.Equal(t, []fakeslack.Interaction{in}, s.Interactions())
	require.Equal(t, fakeslack.Button{BlockID: "repair:7", ActionID: "approve", Text: "Approve", Value: "7", Style: "primary"}, in.Button)
}

func TestPressBadSignatures(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	app := newSlackApp(t, s.SigningSecret())
	s.SetInteractivityURL(app.URL)
	card := postCard(t, s, "")

	tests := []struct {
		name string
		opt  fakeslack.PressOption
	}{
		{name: "forged", opt: fakeslack.SignWith("not-the-signing-secret")},
		{name: "stale", opt: fakeslack.SignedAt(time.Now().Add(-6 * time.Minute))},
		{name: "unsigned", opt: fakeslack.Unsigned()},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := s.Press(t, card, "reject", alice, tt.opt)
			require.Equal(t, http.StatusUnauthorized, in.StatusCode, "a refusal is recorded, not a test failure")
			require.False(t, in.Acknowledged())
			require.False(t, app.received()[i].verified)
		})
	}
	require.Empty(t, s.Interactions()[2].Signature)
	require.Empty(t, s.Interactions()[2].Timestamp)
}

func TestPressRefusesImpossiblePresses(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	card := postCard(t, s, "")
	tests := []struct {
		name   string
		setURL bool
		msg    fakeslack.Message
		action string
		user   fakeslack.User
		want   string
	}{
		{name: "no interactivity URL", msg: card, action: "approve", user: alice, want: "no interactivity URL"},
		{name: "unknown button", setURL: true, msg: card, action: "approve_all", user: alice, want: `has no button with action_id "approve_all"; its buttons: ["approve", "reject", "details"]`},
		{name: "unknown message", setURL: true, msg: fakeslack.Message{Channel: alerts, TS: "1500000000.000100"}, action: "approve", user: alice, want: "no message 1500000000.000100"},
		{name: "bad user id", setURL: true, msg: card, action: "approve", user: fakeslack.User{ID: "alice"}, want: `user ID "alice"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setURL {
				s.SetInteractivityURL("http://127.0.0.1:1/never-called")
			}
			tb := &recordingTB{TB: t}
			s.Press(tb, tt.msg, tt.action, tt.user)
			require.Contains(t, tb.fatal, tt.want)
		})
	}
	require.Empty(t, s.Interactions())
}

// Slack gives up on an app that takes longer than 3 s to answer; Press
// reports it as a test error.
func TestPressSlowApp(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	app := newSlackApp(t, s.SigningSecret())
	app.delay = fakeslack.AckTimeout + 500*time.Millisecond
	s.SetInteractivityURL(app.URL)
	card := postCard(t, s, "")

	tb := &recordingTB{TB: t}
	in := s.Press(tb, card, "approve", alice)
	require.Len(t, tb.errors, 1)
	require.Contains(t, tb.errors[0], "did not answer the interaction within 3s")
	require.Zero(t, in.StatusCode)
	require.NotEmpty(t, in.Err)
	require.False(t, in.Acknowledged())
}

// respond posts JSON to a response_url.
func respond(t *testing.T, target string, fields obj) (int, map[string]any) {
	t.Helper()
	b, err := json.Marshal(fields)
	require.NoError(t, err)
	status, _, body := do(t, newRequest(t, http.MethodPost, target, "application/json", "", bytes.NewReader(b)))
	return status, body
}

func TestResponseURL(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	app := newSlackApp(t, s.SigningSecret())
	s.SetInteractivityURL(app.URL)
	card := postCard(t, s, "")
	in := s.Press(t, card, "approve", alice)

	status, body := respond(t, in.ResponseURL, obj{"text": "Only you can see this"})
	require.Equal(t, http.StatusOK, status, "%v", body)
	require.Equal(t, obj{"ok": true}, body)

	status, body = respond(t, in.ResponseURL, obj{"replace_original": "true", "text": "Approved by alice", "blocks": []any{section("*Approved* by <@U0ALICE01>")}})
	require.Equal(t, http.StatusOK, status, "%v", body)
	m, _ := s.Message(alerts, card.TS)
	require.Equal(t, "Approved by alice", m.Text)
	require.Empty(t, m.Buttons)
	require.Equal(t, "response_url", m.Edits[0].Via)

	status, body = respond(t, in.ResponseURL, obj{"response_type": "in_channel", "text": "Restarting api", "thread_ts": card.TS})
	require.Equal(t, http.StatusOK, status, "%v", body)
	posts := s.ResponsePosts()
	require.NotEmpty(t, posts[2].PostedTS)
	reply, ok := s.Message(alerts, posts[2].PostedTS)
	require.True(t, ok)
	require.Equal(t, card.TS, reply.ThreadTS)

	for _, refused := range []struct {
		fields obj
		status int
		code   string
	}{
		{obj{"replace_original": true}, http.StatusBadRequest, "no_text"},
		{obj{"replace_original": true, "blocks": []any{section("")}}, http.StatusBadRequest, "invalid_blocks"},
		{obj{"response_type": "everyone", "text": "x"}, http.StatusBadRequest, "invalid_response_type"},
		{obj{"response_type": "in_channel", "text": "x", "thread_ts": "1500000000.000100"}, http.StatusNotFound, "thread_not_found"},
	} {
		status, body = respond(t, in.ResponseURL, refused.fields)
		require.Equal(t, refused.status, status, "%v", refused.fields)
		requireError(t, body, refused.code)
	}

	status, body = respond(t, in.ResponseURL, obj{"delete_original": true})
	require.Equal(t, http.StatusOK, status, "%v", body)
	m, _ = s.Message(alerts, card.TS)
	require.True(t, m.Deleted)

	status, body = respond(t, in.ResponseURL, obj{"text": "a fifth use"})
	require.Equal(t, http.StatusOK, status, "refusals do not count: %v", body)
	status, body = respond(t, in.ResponseURL, obj{"text": "a sixth use"})
	require.Equal(t, http.StatusNotFound, status)
	requireError(t, body, "expired_url")

	status, body = respond(t, s.URL()+"/actions/"+fakeslack.DefaultTeamID+"/1/nope", obj{"text": "x"})
	require.Equal(t, http.StatusNotFound, status)
	requireError(t, body, "expired_url")

	status, _, body = do(t, newRequest(t, http.MethodPost, in.ResponseURL, "application/x-www-form-urlencoded", "", strings.NewReader("text=x")))
	require.Equal(t, http.StatusBadRequest, status)
	requireError(t, body, "invalid_payload")

	posts = s.ResponsePosts()
	require.Len(t, posts, 12)
	require.True(t, posts[1].ReplaceOriginal)
	require.Equal(t, "ephemeral", posts[0].ResponseType)
	require.Equal(t, card.TS, posts[0].MessageTS)
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return n
}
