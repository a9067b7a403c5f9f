package fakeslack_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit/fakeslack"
)

// read calls a read method with a form, as Slack takes them.
func read(t *testing.T, s *fakeslack.Server, method string, form url.Values) map[string]any {
	t.Helper()
	status, _, body := do(t, newRequest(t, http.MethodPost, s.APIURL()+method, "application/x-www-form-urlencoded", s.BotToken(), strings.NewReader(form.Encode())))
	require.Equal(t, http.StatusOK, status)
	return body
}

func tsOf(t *testing.T, body map[string]any) []string {
	t.Helper()
	var out []string
	for _, m := range body["messages"].([]any) {
		out = append(out, m.(obj)["ts"].(string))
	}
	return out
}

// Messages posted with metadata are read back with it, newest first, a
// page at a time; a thread's replies after its parent; a broadcast reply
// in the channel too.
func TestHistoryWithMetadata(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	meta := obj{"event_type": "vigil_delivery", "event_payload": obj{"delivery_key": "e1/slack/C0ALERTS1"}}
	first := post(t, s, obj{"channel": alerts, "text": "first", "metadata": meta})
	reply := post(t, s, obj{"channel": alerts, "text": "reply", "thread_ts": first})
	broadcast := post(t, s, obj{"channel": alerts, "text": "broadcast", "thread_ts": first, "reply_broadcast": true})
	last := post(t, s, obj{"channel": alerts, "text": "last"})
	post(t, s, obj{"channel": ops, "text": "elsewhere"})

	body := read(t, s, "conversations.history", url.Values{"channel": {alerts}, "include_all_metadata": {"true"}})
	requireOK(t, body)
	require.Equal(t, []string{last, broadcast, first}, tsOf(t, body))
	got := body["messages"].([]any)[2].(obj)["metadata"].(obj)
	require.Equal(t, "vigil_delivery", got["event_type"])
	require.Equal(t, obj{"delivery_key": "e1/slack/C0ALERTS1"}, got["event_payload"])

	body = read(t, s, "conversations.history", url.Values{"channel": {alerts}})
	require.NotContains(t, body["messages"].([]any)[2].(obj), "metadata", "only with include_all_metadata")

	body = read(t, s, "conversations.history", url.Values{"channel": {alerts}, "limit": {"2"}, "oldest": {first}})
	require.Equal(t, []string{last, broadcast}, tsOf(t, body), "oldest is exclusive")
	cursor := body["response_metadata"].(obj)["next_cursor"].(string)
	require.Empty(t, cursor)
	body = read(t, s, "conversations.history", url.Values{"channel": {alerts}, "limit": {"2"}})
	require.Equal(t, true, body["has_more"])
	cursor = body["response_metadata"].(obj)["next_cursor"].(string)
	body = read(t, s, "conversations.history", url.Values{"channel": {alerts}, "limit": {"2"}, "cursor": {cursor}})
	require.Equal(t, []string{first}, tsOf(t, body))
	requireError(t, read(t, s, "conversations.history", url.Values{"channel": {alerts}, "cursor": {"bogus"}}), "invalid_cursor")

	body = read(t, s, "conversations.replies", url.Values{"channel": {alerts}, "ts": {first}, "include_all_metadata": {"true"}})
	requireOK(t, body)
	require.Equal(t, []string{first, reply, broadcast}, tsOf(t, body))
	requireError(t, read(t, s, "conversations.replies", url.Values{"channel": {alerts}, "ts": {reply}}), "thread_not_found")
}

// Reading history takes the scope of the channel's kind, and a form: a
// JSON body's arguments are not read.
func TestHistoryNeedsScopeAndForm(t *testing.T) {
	t.Parallel()
	s := fakeslack.New(t, fakeslack.Options{Channels: []fakeslack.Channel{{ID: alerts, Name: "alerts"}}, Scopes: []string{"chat:write"}})
	body := read(t, s, "conversations.history", url.Values{"channel": {alerts}})
	requireError(t, body, "missing_scope")
	require.Equal(t, "channels:history", body["needed"])
	require.Equal(t, "chat:write", body["provided"])

	requireError(t, api(t, newServer(t), "conversations.history", obj{"channel": alerts}), "channel_not_found")
}

// Metadata must be an event_type and an event_payload object: anything
// else is refused, and nothing is posted.
func TestPostMessageMetadataRules(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	for _, tc := range []struct {
		meta any
		code string
	}{
		{obj{"event_payload": obj{}}, "invalid_metadata_format"},
		{obj{"event_type": "has space", "event_payload": obj{}}, "invalid_metadata_format"},
		{obj{"event_type": "vigil_delivery"}, "invalid_metadata_format"},
		{obj{"event_type": "vigil_delivery", "event_payload": "text"}, "invalid_metadata_format"},
		{"not json", "invalid_metadata_format"},
		{obj{"event_type": "vigil_delivery", "event_payload": obj{}, "extra": 1}, "invalid_metadata_schema"},
	} {
		requireError(t, api(t, s, "chat.postMessage", obj{"channel": alerts, "text": "x", "metadata": tc.meta}), tc.code)
	}
	require.Empty(t, s.Messages())
}

// A garbled answer is the call's answer cut short: the message is
// posted all the same.
func TestGarbleNext(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.GarbleNext(1)
	resp, err := http.DefaultClient.Do(newRequest(t, http.MethodPost, s.APIURL()+"chat.postMessage", "application/x-www-form-urlencoded", s.BotToken(),
		strings.NewReader(url.Values{"channel": {alerts}, "text": {"x"}}.Encode())))
	require.NoError(t, err)
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.False(t, json.Valid(raw), "%s", raw)
	require.Len(t, s.Messages(), 1)
	post(t, s, obj{"channel": alerts, "text": "y"})
}
