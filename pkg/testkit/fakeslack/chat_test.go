package fakeslack_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit/fakeslack"
)

var tsFormat = regexp.MustCompile(`^[0-9]{10}\.[0-9]{6}$`)

// post posts a message and returns its ts.
func post(t *testing.T, s *fakeslack.Server, fields obj) string {
	t.Helper()
	body := api(t, s, "chat.postMessage", fields)
	requireOK(t, body)
	return body["ts"].(string)
}

func TestPostMessage(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	body := api(t, s, "chat.postMessage", obj{"channel": "#alerts", "text": "Repair needs approval", "blocks": approvalCard()})
	requireOK(t, body)
	require.Equal(t, alerts, body["channel"], "a channel named by name is answered with its id")
	ts := body["ts"].(string)
	require.Regexp(t, tsFormat, ts)
	msg := body["message"].(obj)
	require.Equal(t, ts, msg["ts"])
	require.Equal(t, "Repair needs approval", msg["text"])
	require.Equal(t, "message", msg["type"])
	require.NotEmpty(t, msg["bot_id"])
	require.Len(t, msg["blocks"], 5)

	second := post(t, s, obj{"channel": "alerts", "text": "second"})
	require.Greater(t, second, ts, "timestamps increase")

	got := s.Messages()
	require.Len(t, got, 2)
	require.Equal(t, alerts, got[0].Channel)
	require.Equal(t, ts, got[0].TS)
	require.Empty(t, got[0].ThreadTS)
	m, ok := s.Message(alerts, second)
	require.True(t, ok)
	require.Equal(t, "second", m.Text)
	require.Nil(t, m.Blocks)
	require.Len(t, s.WaitForMessages(t, 2, time.Second), 2)
}

func TestPostMessageRules(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	parent := post(t, s, obj{"channel": alerts, "text": "parent"})
	reply := post(t, s, obj{"channel": alerts, "text": "reply", "thread_ts": parent})
	elsewhere := post(t, s, obj{"channel": ops, "text": "in ops"})
	tests := []struct {
		name   string
		fields obj
		want   string // error code; empty for success
	}{
		{name: "no channel", fields: obj{"text": "x"}, want: "channel_not_found"},
		{name: "unknown channel", fields: obj{"channel": "C0NOWHERE", "text": "x"}, want: "channel_not_found"},
		{name: "unknown channel name", fields: obj{"channel": "#random", "text": "x"}, want: "channel_not_found"},
		{name: "no text or blocks", fields: obj{"channel": alerts}, want: "no_text"},
		{name: "empty blocks and no text", fields: obj{"channel": alerts, "blocks": []any{}}, want: "no_text"},
		{name: "blocks without text", fields: obj{"channel": alerts, "blocks": []any{obj{"type": "divider"}}}},
		{name: "text of 40000", fields: obj{"channel": alerts, "text": strings.Repeat("x", 40000)}},
		{name: "text of 40001", fields: obj{"channel": alerts, "text": strings.Repeat("x", 40001)}, want: "msg_too_long"},
		{name: "reply", fields: obj{"channel": alerts, "text": "x", "thread_ts": parent}},
		{name: "malformed thread_ts", fields: obj{"channel": alerts, "text": "x", "thread_ts": "1700000000.1"}, want: "invalid_thread_ts"},
		{name: "thread_ts of no message", fields: obj{"channel": alerts, "text": "x", "thread_ts": "1500000000.000100"}, want: "thread_not_found"},
		{name: "thread_ts of a reply", fields: obj{"channel": alerts, "text": "x", "thread_ts": reply}, want: "thread_not_found"},
		{name: "thread_ts of another channel", fields: obj{"channel": alerts, "text": "x", "thread_ts": elsewhere}, want: "thread_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := api(t, s, "chat.postMessage", tt.fields)
			if tt.want == "" {
				requireOK(t, body)
				return
			}
			requireError(t, body, tt.want)
		})
	}
}

func TestThreads(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	parent := post(t, s, obj{"channel": alerts, "text": "incident #7"})
	body := api(t, s, "chat.postMessage", obj{"channel": alerts, "text": "analysis", "thread_ts": parent})
	requireOK(t, body)
	msg := body["message"].(obj)
	require.Equal(t, parent, msg["thread_ts"])
	require.NotEmpty(t, msg["parent_user_id"])

	got := s.Messages()
	require.Empty(t, got[0].ThreadTS)
	require.Equal(t, parent, got[1].ThreadTS)
	require.Equal(t, body["ts"], got[1].TS)
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ts := post(t, s, obj{"channel": alerts, "text": "Repair needs approval", "blocks": approvalCard()})
	approved := []any{section("*Approved* by <@U0ALICE01>")}

	body := api(t, s, "chat.update", obj{"channel": alerts, "ts": ts, "text": "Approved", "blocks": approved})
	requireOK(t, body)
	require.Equal(t, ts, body["ts"])
	require.Equal(t, "Approved", body["text"])

	requireOK(t, api(t, s, "chat.update", obj{"channel": alerts, "ts": ts, "text": "Approved, restarting"}))
	m, _ := s.Message(alerts, ts)
	require.Equal(t, "Approved, restarting", m.Text)
	require.Empty(t, m.Buttons, "the buttons went with the first update")
	require.JSONEq(t, `[{"type":"section","block_id":"fake0","text":{"type":"mrkdwn","text":"*Approved* by <@U0ALICE01>"}}]`, string(m.Blocks), "blocks left out are kept")

	requireOK(t, api(t, s, "chat.update", obj{"channel": alerts, "ts": ts, "blocks": []any{}}))
	m, _ = s.Message(alerts, ts)
	require.Nil(t, m.Blocks, "blocks of [] remove the blocks")
	require.Equal(t, "Approved, restarting", m.Text)

	require.Len(t, m.Edits, 3)
	require.Equal(t, "chat.update", m.Edits[0].Via)
	require.Equal(t, "Approved", m.Edits[0].Text)
	var blocks []obj
	require.NoError(t, json.Unmarshal(m.Edits[0].Blocks, &blocks))
	require.Len(t, blocks, 1)

	requireError(t, api(t, s, "chat.update", obj{"channel": alerts, "ts": "1500000000.000100", "text": "x"}), "message_not_found")
	requireError(t, api(t, s, "chat.update", obj{"channel": alerts, "text": "x"}), "message_not_found")
	requireError(t, api(t, s, "chat.update", obj{"channel": ops, "ts": ts, "text": "x"}), "message_not_found")
	requireError(t, api(t, s, "chat.update", obj{"channel": "C0NOWHERE", "ts": ts, "text": "x"}), "channel_not_found")
	requireError(t, api(t, s, "chat.update", obj{"channel": alerts, "ts": ts, "text": ""}), "no_text")
	requireError(t, api(t, s, "chat.update", obj{"channel": alerts, "ts": ts, "blocks": []any{section("")}}), "invalid_blocks")
	m, _ = s.Message(alerts, ts)
	require.Len(t, m.Edits, 3, "refused updates change nothing")
}
