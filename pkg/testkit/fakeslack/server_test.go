package fakeslack_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit/fakeslack"
)

const (
	alerts = "C0ALERTS1"
	ops    = "C0OPS0001"
)

func newServer(t *testing.T) *fakeslack.Server {
	t.Helper()
	return fakeslack.New(t, fakeslack.Options{Channels: []fakeslack.Channel{{ID: alerts, Name: "alerts"}, {ID: ops, Name: "ops"}}})
}

// do sends a request and returns the status, headers and decoded JSON body.
func do(t *testing.T, req *http.Request) (int, http.Header, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	var body map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		require.NoError(t, dec.Decode(&body), "body: %s", raw)
	}
	return resp.StatusCode, resp.Header, body
}

func newRequest(t *testing.T, method, target, contentType, token string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, target, body)
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// api calls a Web API method with a JSON body and the bot token, as Slack's
// SDKs do, and returns the decoded answer (always HTTP 200 unless a fault
// was injected).
func api(t *testing.T, s *fakeslack.Server, method string, fields map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(fields)
	require.NoError(t, err)
	status, _, body := do(t, newRequest(t, http.MethodPost, s.APIURL()+method, "application/json; charset=utf-8", s.BotToken(), bytes.NewReader(b)))
	require.Equal(t, http.StatusOK, status)
	return body
}

// requireError asserts an ok:false answer with the error code.
func requireError(t *testing.T, body map[string]any, code string) {
	t.Helper()
	require.Equal(t, false, body["ok"], "%v", body)
	require.Equal(t, code, body["error"], "%v", body)
}

func requireOK(t *testing.T, body map[string]any) {
	t.Helper()
	require.Equal(t, true, body["ok"], "%v", body)
}

func TestAuth(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	target := s.APIURL() + "chat.postMessage"
	fields := `{"channel":"C0ALERTS1","text":"x"}`
	form := url.Values{"channel": {alerts}, "text": {"x"}}
	tests := []struct {
		name        string
		contentType string
		token       string
		body        string
		want        string // error code; empty for success
	}{
		{name: "bearer token", contentType: "application/json; charset=utf-8", token: s.BotToken(), body: fields},
		{name: "no token", contentType: "application/json; charset=utf-8", body: fields, want: "not_authed"},
		{name: "wrong token", contentType: "application/json; charset=utf-8", token: "xoxb-1-2-wrong", body: fields, want: "invalid_auth"},
		{name: "user token", contentType: "application/json; charset=utf-8", token: "xoxp-1-2-3", body: fields, want: "invalid_auth"},
		{name: "token in a JSON body is not read", contentType: "application/json; charset=utf-8", body: `{"token":"` + s.BotToken() + `","channel":"C0ALERTS1","text":"x"}`, want: "not_authed"},
		{name: "token as a form field", contentType: "application/x-www-form-urlencoded", body: form.Encode() + "&token=" + url.QueryEscape(s.BotToken())},
		{name: "bearer token with a form", contentType: "application/x-www-form-urlencoded", token: s.BotToken(), body: form.Encode()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, _, body := do(t, newRequest(t, http.MethodPost, target, tt.contentType, tt.token, strings.NewReader(tt.body)))
			require.Equal(t, http.StatusOK, status, "Slack answers errors with 200")
			if tt.want != "" {
				requireError(t, body, tt.want)
				return
			}
			requireOK(t, body)
		})
	}

	t.Run("unknown method", func(t *testing.T) {
		t.Parallel()
		status, _, body := do(t, newRequest(t, http.MethodPost, s.APIURL()+"chat.postMesage", "application/json; charset=utf-8", s.BotToken(), strings.NewReader(fields)))
		require.Equal(t, http.StatusNotFound, status)
		requireError(t, body, "unknown_method")
	})

	t.Run("auth.test", func(t *testing.T) {
		t.Parallel()
		body := api(t, s, "auth.test", map[string]any{})
		requireOK(t, body)
		require.Equal(t, fakeslack.DefaultTeamID, body["team_id"])
		require.NotEmpty(t, body["bot_id"])
	})
}

func TestBodies(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	target := s.APIURL() + "chat.postMessage"
	blocks := `[{"type":"section","text":{"type":"mrkdwn","text":"*form*"}}]`

	multipartBody := func() (io.Reader, string) {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		require.NoError(t, w.WriteField("channel", alerts))
		require.NoError(t, w.WriteField("text", "multipart"))
		require.NoError(t, w.Close())
		return &buf, w.FormDataContentType()
	}
	mpBody, mpType := multipartBody()

	tests := []struct {
		name        string
		contentType string
		body        io.Reader
		wantErr     string
		wantWarning string
	}{
		{name: "JSON with charset", contentType: "application/json; charset=utf-8", body: strings.NewReader(`{"channel":"C0ALERTS1","text":"x"}`)},
		{name: "JSON without charset", contentType: "application/json", body: strings.NewReader(`{"channel":"C0ALERTS1","text":"x"}`), wantWarning: "missing_charset"},
		{name: "JSON in another charset", contentType: "application/json; charset=iso-8859-1", body: strings.NewReader(`{"channel":"C0ALERTS1","text":"x"}`), wantErr: "invalid_charset"},
		{name: "malformed JSON", contentType: "application/json; charset=utf-8", body: strings.NewReader(`{"channel":`), wantErr: "invalid_json"},
		{name: "JSON array", contentType: "application/json; charset=utf-8", body: strings.NewReader(`[]`), wantErr: "json_not_object"},
		{name: "form with blocks as a string", contentType: "application/x-www-form-urlencoded", body: strings.NewReader(url.Values{"channel": {alerts}, "blocks": {blocks}}.Encode())},
		{name: "multipart", contentType: mpType, body: mpBody},
		{name: "XML", contentType: "application/xml", body: strings.NewReader(`<x/>`), wantErr: "invalid_post_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, header, body := do(t, newRequest(t, http.MethodPost, target, tt.contentType, s.BotToken(), tt.body))
			require.Equal(t, http.StatusOK, status)
			require.Equal(t, "application/json; charset=utf-8", header.Get("Content-Type"))
			if tt.wantErr != "" {
				requireError(t, body, tt.wantErr)
				return
			}
			requireOK(t, body)
			if tt.wantWarning != "" {
				require.Equal(t, tt.wantWarning, body["warning"])
				require.Equal(t, map[string]any{"warnings": []any{tt.wantWarning}}, body["response_metadata"])
			} else {
				require.NotContains(t, body, "warning")
			}
		})
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	send := func() (int, http.Header, map[string]any) {
		return do(t, newRequest(t, http.MethodPost, s.APIURL()+"chat.postMessage", "application/json; charset=utf-8", s.BotToken(),
			strings.NewReader(`{"channel":"C0ALERTS1","text":"x"}`)))
	}

	s.RateLimitNext(1, 30)
	s.FailNext(1, http.StatusServiceUnavailable)

	status, header, body := send()
	require.Equal(t, http.StatusTooManyRequests, status)
	require.Equal(t, "30", header.Get("Retry-After"))
	requireError(t, body, "ratelimited")

	status, header, _ = send()
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "text/plain; charset=utf-8", header.Get("Content-Type"))

	status, _, body = send()
	require.Equal(t, http.StatusOK, status)
	requireOK(t, body)

	require.Equal(t, []fakeslack.Request{
		{Method: "chat.postMessage", StatusCode: 429, Error: "ratelimited"},
		{Method: "chat.postMessage", StatusCode: 503, Error: "Service Unavailable"},
		{Method: "chat.postMessage", StatusCode: 200},
	}, s.Requests())
	require.Len(t, s.Messages(), 1, "failed calls post nothing")
	require.Panics(t, func() { s.FailNext(1, 200) })
}

func TestNewChecksOptions(t *testing.T) {
	t.Parallel()
	for _, opts := range []fakeslack.Options{
		{BotToken: "xoxp-1-2-3"},
		{Channels: []fakeslack.Channel{{ID: "#alerts"}}},
		{Channels: []fakeslack.Channel{{ID: "c0lower"}}},
	} {
		t.Run(fmt.Sprintf("%+v", opts), func(t *testing.T) {
			t.Parallel()
			tb := &recordingTB{TB: t}
			require.Nil(t, fakeslack.New(tb, opts))
			require.NotEmpty(t, tb.fatal)
		})
	}
}

// recordingTB records failures instead of ending the test.
type recordingTB struct {
	testing.TB
	fatal  string
	errors []string
}

func (r *recordingTB) Fatal(args ...any) { r.fatal = fmt.Sprint(args...) }

func (r *recordingTB) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

func (r *recordingTB) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
