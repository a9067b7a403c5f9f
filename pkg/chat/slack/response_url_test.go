package slack_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/chat/slack"
	"github.com/vigil-ops/vigil/pkg/testkit/fakeslack"
)

// app is a Slack app's interactivity URL: it takes what Slack signed
// within the window, and answers each press through its response_url.
type app struct {
	secret string
	base   string
	// answered are the errors of Respond, one per press taken.
	answered chan error
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if err := slack.Verify(a.secret, r.Header, body, time.Now()); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	form, err := url.ParseQuery(string(body))
	var in struct {
		ResponseURL string `json:"response_url"`
	}
	if err != nil || json.Unmarshal([]byte(form.Get("payload")), &in) != nil || !slack.IsResponseURL(in.ResponseURL, a.base) {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	a.answered <- slack.Respond(r.Context(), http.DefaultClient, in.ResponseURL, "*Noted*, <@U1ALICE>")
}

// Presses signed with the app's secret, now, are taken and answered
// through their response_url; forged, stale and unsigned ones are refused
// and answered nothing.
func TestInteractionsAgainstTheFake(t *testing.T) {
	t.Parallel()
	fake := fakeslack.New(t, fakeslack.Options{Channels: []fakeslack.Channel{{ID: channel, Name: "alerts"}}})
	a := &app{secret: fake.SigningSecret(), base: fake.ResponseURLBase(), answered: make(chan error, 10)}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	fake.SetInteractivityURL(srv.URL)
	c := newClient(t, fake)
	ts, err := c.PostMessage(t.Context(), slack.Message{Channel: channel, Text: "Approve?", Blocks: card("r-1")})
	require.NoError(t, err)
	m, ok := fake.Message(channel, ts)
	require.True(t, ok)
	alice := fakeslack.User{ID: "U1ALICE", Username: "alice"}

	for name, opt := range map[string]fakeslack.PressOption{
		"another secret": fakeslack.SignWith("another-apps-signing-secret"),
		"stale":          fakeslack.SignedAt(time.Now().Add(-6 * time.Minute)),
		"from ahead":     fakeslack.SignedAt(time.Now().Add(6 * time.Minute)),
		"unsigned":       fakeslack.Unsigned(),
	} {
		in := fake.Press(t, m, "vigil_repair_approve", alice, opt)
		require.Equal(t, http.StatusUnauthorized, in.StatusCode, name)
	}
	require.Empty(t, fake.ResponsePosts(), "refused: answered nothing")
	require.Empty(t, a.answered)

	// Signed, but pointing elsewhere: not posted to.
	in := fake.Press(t, m, "vigil_repair_approve", alice, fakeslack.ResponseURLAt("https://attacker.example/"))
	require.Equal(t, http.StatusBadRequest, in.StatusCode)
	require.Empty(t, fake.ResponsePosts())

	in = fake.Press(t, m, "vigil_repair_approve", alice)
	require.True(t, in.Acknowledged(), "%+v", in)
	require.NoError(t, <-a.answered)
	posts := fake.ResponsePosts()
	require.Len(t, posts, 1)
	require.Equal(t, "ephemeral", posts[0].ResponseType)
	require.False(t, posts[0].ReplaceOriginal)
	require.Equal(t, ts, posts[0].MessageTS)
	require.Equal(t, "*Noted*, <@U1ALICE>", posts[0].Text)
}

// A response_url's refusals are APIErrors; its rate limit carries the
// wait; no error quotes the URL, which is a capability.
func TestRespondErrors(t *testing.T) {
	t.Parallel()
	const path = "/actions/T0WORK/1/SecretCapabilityPart"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("case") {
		case "expired":
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, "expired_url")
		case "json":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"ok":false,"error":"no_text"}`)
		case "limited":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
		case "page":
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "<html>bad gateway</html>")
		default:
			_, _ = io.WriteString(w, "ok")
		}
	}))
	t.Cleanup(srv.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	for _, tt := range []struct {
		name, url, code string
		status          int
		retryAfter      time.Duration
		retryable       bool
	}{
		{name: "taken", url: srv.URL + path},
		{name: "expired", url: srv.URL + path + "?case=expired", status: 404, code: "expired_url"},
		{name: "refused", url: srv.URL + path + "?case=json", status: 400, code: "no_text"},
		{name: "rate limited", url: srv.URL + path + "?case=limited", status: 429, retryAfter: 7 * time.Second, retryable: true},
		{name: "error page", url: srv.URL + path + "?case=page", status: 502, retryable: true},
		{name: "unreachable", url: closed.URL + path, retryable: true},
	} {
		err := slack.Respond(t.Context(), http.DefaultClient, tt.url, "x")
		if tt.name == "taken" {
			require.NoError(t, err)
			continue
		}
		require.Error(t, err, tt.name)
		require.NotContains(t, err.Error(), "SecretCapabilityPart", tt.name)
		require.Equal(t, tt.retryable, slack.IsRetryable(err), "%s: %v", tt.name, err)
		require.Equal(t, tt.retryAfter, slack.RetryAfter(err), tt.name)
		if apiErr, ok := errors.AsType[*slack.APIError](err); ok {
			require.Equal(t, tt.status, apiErr.StatusCode, tt.name)
			require.Equal(t, tt.code, apiErr.Code, tt.name)
		} else {
			require.Zero(t, tt.status, "%s: %v", tt.name, err)
		}
	}
	for _, bad := range []string{"", "not a url", "ftp://hooks.slack.com/x", "https:///actions"} {
		err := slack.Respond(t.Context(), http.DefaultClient, bad, "x")
		require.ErrorIs(t, err, slack.ErrInvalidMessage, bad)
	}
}

// Only a response_url under Slack's base is Slack's: same scheme and
// host, below its path, no user info or look-alike host.
func TestIsResponseURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		url, base string
		ok        bool
	}{
		{"https://hooks.slack.com/actions/T0WORK/1/x", "", true},
		{"https://HOOKS.slack.com/commands/T0WORK/1/x", "", true},
		{"http://hooks.slack.com/actions/T0WORK/1/x", "", false},
		{"https://hooks.slack.com.evil.example/actions/T/1/x", "", false},
		{"https://evil.example/hooks.slack.com/actions/T/1/x", "", false},
		{"https://user@hooks.slack.com/actions/T/1/x", "", false},
		{"https://hooks.slack.com:8443/actions/T/1/x", "", false},
		{"", "", false},
		{"not a url", "", false},
		{"http://127.0.0.1:4000/actions/T/1/x", "http://127.0.0.1:4000/", true},
		{"http://127.0.0.1:4001/actions/T/1/x", "http://127.0.0.1:4000/", false},
		{"https://hooks.example/actions/T/1/x", "https://hooks.example/actions", true},
		{"https://hooks.example/actionsx/T", "https://hooks.example/actions", false},
		{"https://hooks.example/actions/../api/x", "https://hooks.example/actions/", false},
	} {
		require.Equal(t, tt.ok, slack.IsResponseURL(tt.url, tt.base), "%s under %q", tt.url, tt.base)
	}
}
