package fakeline_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit/fakeline"
)

const user = "U4af4980629a0b1c2d3e4f5a6b7c8d9e0"

func post(t *testing.T, s *fakeline.Server, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+"/v2/bot/message/push", bytes.NewReader([]byte(body)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.Token())
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var e struct {
		Message string `json:"message"`
		Details []struct{ Property string }
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	props := make([]string, 0, len(e.Details))
	for _, d := range e.Details {
		props = append(props, d.Property)
	}
	return resp.StatusCode, e.Message + " " + strings.Join(props, ",")
}

// What LINE refuses, the fake refuses, naming the property, and records
// nothing.
func TestPushRules(t *testing.T) {
	t.Parallel()
	s := fakeline.New(t, fakeline.Options{To: []string{user}})
	bubble := `{"type":"bubble","body":{"type":"box","layout":"vertical","contents":[{"type":"text","text":"hi"}]}}`
	for _, tc := range []struct{ name, body, want string }{
		{"unknown to", `{"to":"Uffffffffffffffffffffffffffffffff","messages":[{"type":"text","text":"hi"}]}`, "'to'"},
		{"no messages", `{"to":"` + user + `","messages":[]}`, "messages"},
		{"empty text", `{"to":"` + user + `","messages":[{"type":"text","text":""}]}`, "messages[0].text"},
		{"long text", `{"to":"` + user + `","messages":[{"type":"text","text":"` + strings.Repeat("x", 5001) + `"}]}`, "messages[0].text"},
		{"long altText", `{"to":"` + user + `","messages":[{"type":"flex","altText":"` + strings.Repeat("x", 401) + `","contents":` + bubble + `}]}`, "messages[0].altText"},
		{"not a bubble", `{"to":"` + user + `","messages":[{"type":"flex","altText":"a","contents":{"type":"carousel"}}]}`, "messages[0].contents.type"},
		{"box without layout", `{"to":"` + user + `","messages":[{"type":"flex","altText":"a","contents":{"type":"bubble","body":{"type":"box","contents":[]}}}]}`, "messages[0].contents.body.layout"},
		{"empty text component", `{"to":"` + user + `","messages":[{"type":"flex","altText":"a","contents":{"type":"bubble","body":{"type":"box","layout":"vertical","contents":[{"type":"text","text":""}]}}}]}`, "messages[0].contents.body.contents[0].text"},
	} {
		status, msg := post(t, s, tc.body)
		require.Equal(t, http.StatusBadRequest, status, tc.name)
		require.Contains(t, msg, tc.want, tc.name)
	}
	require.Empty(t, s.Messages())
	status, _ := post(t, s, `{"to":"`+user+`","messages":[{"type":"flex","altText":"a","contents":`+bubble+`}]}`)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, s.Messages(), 1)
}

// A reply token is one of an event the fake made, works once, and only
// within a minute of its event.
func TestReplyTokenRules(t *testing.T) {
	t.Parallel()
	s := fakeline.New(t, fakeline.Options{})
	reply := func(token string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, s.URL()+"/v2/bot/message/reply",
			strings.NewReader(`{"replyToken":"`+token+`","messages":[{"type":"text","text":"hi"}]}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+s.Token())
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		var e struct{ Message string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Message
	}
	first, second := s.Text(user, "a"), s.Postback(user, "b")
	status, _ := reply(first.ReplyToken())
	require.Equal(t, http.StatusOK, status)
	status, msg := reply(first.ReplyToken())
	require.Equal(t, http.StatusBadRequest, status, "once")
	require.Equal(t, "Invalid reply token", msg)
	status, _ = reply("made-up")
	require.Equal(t, http.StatusBadRequest, status)
	s.AgeReplyTokens(fakeline.ReplyTokenTTL + time.Second)
	status, _ = reply(second.ReplyToken())
	require.Equal(t, http.StatusBadRequest, status, "too late")
	replies := s.Replies()
	require.Len(t, replies, 1)
	require.Equal(t, user, replies[0].To)
	require.Equal(t, "hi", replies[0].Messages[0].Text)
	require.Equal(t, first.EventID(), first.Redelivered().EventID())
}
