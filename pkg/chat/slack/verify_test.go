package slack_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/chat/slack"
)

// Slack's own example of a signed slash command (api.slack.com,
// "Verifying requests from Slack").
const (
	exampleSecret    = "8f742231b10e8888abcd99yyyzzz85a5"
	exampleTimestamp = "1531420618"
	exampleBody      = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	exampleSignature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
)

func TestSign(t *testing.T) {
	t.Parallel()
	require.Equal(t, exampleSignature, slack.Sign(exampleSecret, exampleTimestamp, []byte(exampleBody)))
}

func headers(ts, sig string) http.Header {
	h := http.Header{}
	if ts != "" {
		h.Set(slack.TimestampHeader, ts)
	}
	if sig != "" {
		h.Set(slack.SignatureHeader, sig)
	}
	return h
}

func TestVerify(t *testing.T) {
	t.Parallel()
	signedAt := time.Unix(1531420618, 0)
	tampered := strings.Replace(exampleBody, "U2CERLKJA", "U0EVIL666", 1)
	for _, tt := range []struct {
		name         string
		secret, body string
		h            http.Header
		now          time.Time
		want         error
	}{
		{name: "Slack's example", secret: exampleSecret, body: exampleBody, h: headers(exampleTimestamp, exampleSignature), now: signedAt},
		{name: "4 minutes later", secret: exampleSecret, body: exampleBody, h: headers(exampleTimestamp, exampleSignature), now: signedAt.Add(4 * time.Minute)},
		{name: "4 minutes earlier", secret: exampleSecret, body: exampleBody, h: headers(exampleTimestamp, exampleSignature), now: signedAt.Add(-4 * time.Minute)},
		{name: "unsigned", secret: exampleSecret, body: exampleBody, h: headers("", ""), now: signedAt, want: slack.ErrUnsigned},
		{name: "no timestamp", secret: exampleSecret, body: exampleBody, h: headers("", exampleSignature), now: signedAt, want: slack.ErrUnsigned},
		{name: "no signature", secret: exampleSecret, body: exampleBody, h: headers(exampleTimestamp, ""), now: signedAt, want: slack.ErrUnsigned},
		{name: "not a timestamp", secret: exampleSecret, body: exampleBody, h: headers("yesterday", exampleSignature), now: signedAt, want: slack.ErrBadTimestamp},
		{name: "6 minutes later: a replay", secret: exampleSecret, body: exampleBody, h: headers(exampleTimestamp, exampleSignature), now: signedAt.Add(6 * time.Minute), want: slack.ErrStale},
		{name: "6 minutes earlier", secret: exampleSecret, body: exampleBody, h: headers(exampleTimestamp, exampleSignature), now: signedAt.Add(-6 * time.Minute), want: slack.ErrStale},
		{name: "another app's secret", secret: "another-apps-signing-secret", body: exampleBody, h: headers(exampleTimestamp, exampleSignature), now: signedAt, want: slack.ErrBadSignature},
		{name: "tampered body", secret: exampleSecret, body: tampered, h: headers(exampleTimestamp, exampleSignature), now: signedAt, want: slack.ErrBadSignature},
		{
			name: "old signature, fresh timestamp", secret: exampleSecret, body: exampleBody,
			h: headers(strconv.FormatInt(signedAt.Unix()+600, 10), exampleSignature), now: signedAt.Add(10 * time.Minute), want: slack.ErrBadSignature,
		},
		{name: "upper-case hex", secret: exampleSecret, body: exampleBody, h: headers(exampleTimestamp, "v0="+strings.ToUpper(exampleSignature[3:])), now: signedAt, want: slack.ErrBadSignature},
		{name: "no secret verifies nothing", secret: "", body: exampleBody, h: headers(exampleTimestamp, slack.Sign("", exampleTimestamp, []byte(exampleBody))), now: signedAt, want: slack.ErrBadSignature},
	} {
		err := slack.Verify(tt.secret, tt.h, []byte(tt.body), tt.now)
		if tt.want == nil {
			require.NoError(t, err, tt.name)
			continue
		}
		require.ErrorIs(t, err, tt.want, tt.name)
	}
}

// FuzzVerify: whatever the headers and body, Verify accepts only Slack's
// signature of that body, made with the secret, within the window.
func FuzzVerify(f *testing.F) {
	f.Add(exampleTimestamp, exampleSignature, exampleBody, int64(0))
	f.Add(exampleTimestamp, exampleSignature, exampleBody, int64(301))
	f.Add("+1531420618", exampleSignature, exampleBody, int64(0))
	f.Add("", "v0=", "", int64(0))
	f.Fuzz(func(t *testing.T, ts, sig, body string, skew int64) {
		now := time.Unix(1531420618+skew, 0)
		err := slack.Verify(exampleSecret, headers(ts, sig), []byte(body), now)
		if err != nil {
			return
		}
		require.Equal(t, slack.Sign(exampleSecret, ts, []byte(body)), sig)
		sec, perr := strconv.ParseInt(ts, 10, 64)
		require.NoError(t, perr)
		d := now.Sub(time.Unix(sec, 0))
		require.LessOrEqual(t, d, slack.MaxSkew)
		require.GreaterOrEqual(t, d, -slack.MaxSkew)
	})
}
