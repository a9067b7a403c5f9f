package faketelegram_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
)

const (
	chatID    = "-1001234567890"
	channelID = "@Vigil_Alerts"
)

func newServer(t *testing.T) *faketelegram.Server {
	t.Helper()
	return faketelegram.New(t, faketelegram.Options{ChatIDs: []string{chatID, "42", channelID}})
}

// call sends a request and returns the status and the decoded JSON body.
func call(t *testing.T, method, target, contentType string, body io.Reader) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, target, body)
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out map[string]any
	require.NoError(t, dec.Decode(&out), "body: %s", raw)
	return resp.StatusCode, out
}

func sendJSON(t *testing.T, s *faketelegram.Server, fields map[string]any) (int, map[string]any) {
	t.Helper()
	body, err := json.Marshal(fields)
	require.NoError(t, err)
	return call(t, http.MethodPost, s.URL()+"/bot"+s.Token()+"/sendMessage", "application/json", bytes.NewReader(body))
}

func errorBody(code int, description string) map[string]any {
	return map[string]any{"ok": false, "error_code": json.Number(strconv.Itoa(code)), "description": description}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantBody   map[string]any
	}{
		{name: "wrong token", path: "/bot123:wrong/sendMessage", wantStatus: 401, wantBody: errorBody(401, "Unauthorized")},
		{name: "wrong token and method", path: "/bot123:wrong/nope", wantStatus: 401, wantBody: errorBody(401, "Unauthorized")},
		{name: "unknown method", path: "/bot" + s.Token() + "/sendPhoto", wantStatus: 404, wantBody: errorBody(404, "Not Found")},
		{name: "no method", path: "/bot" + s.Token(), wantStatus: 404, wantBody: errorBody(404, "Not Found")},
		{name: "no bot prefix", path: "/" + s.Token() + "/sendMessage", wantStatus: 404, wantBody: errorBody(404, "Not Found")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, body := call(t, http.MethodPost, s.URL()+tt.path, "application/json", strings.NewReader(`{"chat_id":"42","text":"x"}`))
			require.Equal(t, tt.wantStatus, status)
			require.Equal(t, tt.wantBody, body)
		})
	}

	t.Run("method names are case-insensitive", func(t *testing.T) {
		t.Parallel()
		status, body := call(t, http.MethodGet, s.URL()+"/bot"+s.Token()+"/GETME", "", nil)
		require.Equal(t, 200, status)
		require.Equal(t, true, body["ok"])
		require.Equal(t, json.Number("123456789"), body["result"].(map[string]any)["id"])
	})
}

func TestSendMessageEncodings(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	base := s.URL() + "/bot" + s.Token() + "/sendMessage"

	multipartBody := func() (io.Reader, string) {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		require.NoError(t, w.WriteField("chat_id", "42"))
		require.NoError(t, w.WriteField("text", "<b>multipart</b>"))
		require.NoError(t, w.WriteField("parse_mode", "HTML"))
		require.NoError(t, w.Close())
		return &buf, w.FormDataContentType()
	}
	form := url.Values{"chat_id": {"42"}, "text": {"<b>form</b>"}, "parse_mode": {"HTML"}}
	mpBody, mpType := multipartBody()

	tests := []struct {
		name        string
		method      string
		target      string
		contentType string
		body        io.Reader
		wantText    string
	}{
		{name: "json", method: http.MethodPost, target: base, contentType: "application/json; charset=utf-8", body: strings.NewReader(`{"chat_id":42,"text":"<b>json</b>","parse_mode":"HTML"}`), wantText: "json"},
		{name: "urlencoded", method: http.MethodPost, target: base, contentType: "application/x-www-form-urlencoded", body: strings.NewReader(form.Encode()), wantText: "form"},
		{name: "multipart", method: http.MethodPost, target: base, contentType: mpType, body: mpBody, wantText: "multipart"},
		{name: "query string", method: http.MethodGet, target: base + "?" + url.Values{"chat_id": {"42"}, "text": {"query"}}.Encode(), wantText: "query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, body := call(t, tt.method, tt.target, tt.contentType, tt.body)
			require.Equal(t, 200, status, "%v", body)
			require.Equal(t, tt.wantText, body["result"].(map[string]any)["text"])
		})
	}

	t.Run("unknown body type is ignored", func(t *testing.T) {
		t.Parallel()
		status, body := call(t, http.MethodPost, base, "text/plain", strings.NewReader(`{"chat_id":42,"text":"x"}`))
		require.Equal(t, 400, status)
		require.Equal(t, errorBody(400, "Bad Request: message text is empty"), body)
	})
	t.Run("malformed JSON", func(t *testing.T) {
		t.Parallel()
		status, body := call(t, http.MethodPost, base, "application/json", strings.NewReader(`{"chat_id":`))
		require.Equal(t, 400, status)
		require.Equal(t, errorBody(400, "Bad Request: can't parse JSON object"), body)
	})
}

func TestSendMessageRules(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	keyboard := func(buttons ...any) string {
		b, err := json.Marshal(map[string]any{"inline_keyboard": []any{buttons}})
		require.NoError(t, err)
		return string(b)
	}
	tests := []struct {
		name    string
		fields  map[string]any
		wantErr string // description of a 400; empty for success
	}{
		{name: "ok", fields: map[string]any{"chat_id": chatID, "text": "<b>ok</b>", "parse_mode": "HTML"}},
		{name: "numeric chat id", fields: map[string]any{"chat_id": -1001234567890, "text": "x"}},
		{name: "channel username is case-insensitive", fields: map[string]any{"chat_id": "@vigil_alerts", "text": "x"}},
		{name: "missing chat id", fields: map[string]any{"text": "x"}, wantErr: "chat_id is empty"},
		{name: "unknown chat", fields: map[string]any{"chat_id": "-100999", "text": "x"}, wantErr: "chat not found"},
		{name: "unknown channel", fields: map[string]any{"chat_id": "@nobody", "text": "x"}, wantErr: "chat not found"},
		{name: "non-canonical chat id", fields: map[string]any{"chat_id": "+42", "text": "x"}, wantErr: "chat not found"},
		{name: "missing text", fields: map[string]any{"chat_id": chatID}, wantErr: "message text is empty"},
		{name: "empty text", fields: map[string]any{"chat_id": chatID, "text": ""}, wantErr: "message text is empty"},
		{name: "blank text", fields: map[string]any{"chat_id": chatID, "text": "<i> </i>\n", "parse_mode": "HTML"}, wantErr: "text must be non-empty"},
		{name: "text checked before chat", fields: map[string]any{"chat_id": "-1", "text": ""}, wantErr: "message text is empty"},
		{name: "too long", fields: map[string]any{"chat_id": chatID, "text": strings.Repeat("x", 4097)}, wantErr: "message is too long"},
		{name: "longest", fields: map[string]any{"chat_id": chatID, "text": "<b>" + strings.Repeat("🔥", 4096) + "</b>", "parse_mode": "HTML"}},
		{name: "unsupported parse mode", fields: map[string]any{"chat_id": chatID, "text": "x", "parse_mode": "Textile"}, wantErr: "unsupported parse_mode"},
		{name: "null parse mode", fields: map[string]any{"chat_id": chatID, "text": "x", "parse_mode": nil}, wantErr: "unsupported parse_mode"},
		{name: "MarkdownV2 accepted", fields: map[string]any{"chat_id": chatID, "text": "*x*", "parse_mode": "MarkdownV2"}},
		{name: "unsupported tag", fields: map[string]any{"chat_id": chatID, "text": "<p>x</p>", "parse_mode": "HTML"}, wantErr: `can't parse entities: Unsupported start tag "p" at byte offset 0`},
		{name: "unclosed tag", fields: map[string]any{"chat_id": chatID, "text": "<b>x", "parse_mode": "HTML"}, wantErr: `can't parse entities: Can't find end tag corresponding to start tag "b"`},
		{name: "parse error before chat", fields: map[string]any{"chat_id": "-1", "text": "<p>", "parse_mode": "HTML"}, wantErr: `can't parse entities: Unsupported start tag "p" at byte offset 0`},
		{name: "callback button", fields: map[string]any{"chat_id": chatID, "text": "x", "reply_markup": keyboard(map[string]any{"text": "Approve", "callback_data": "approve:1"})}},
		{name: "keyboard as object", fields: map[string]any{"chat_id": chatID, "text": "x", "reply_markup": map[string]any{"inline_keyboard": [][]map[string]string{{{"text": "a", "url": "https://x.test"}}}}}},
		{name: "callback data of 64 bytes", fields: map[string]any{"chat_id": chatID, "text": "x", "reply_markup": keyboard(map[string]any{"text": "a", "callback_data": strings.Repeat("é", 32)})}},
		{name: "callback data of 65 bytes", fields: map[string]any{"chat_id": chatID, "text": "x", "reply_markup": keyboard(map[string]any{"text": "a", "callback_data": strings.Repeat("é", 32) + "x"})}, wantErr: "BUTTON_DATA_INVALID"},
		{name: "empty callback data", fields: map[string]any{"chat_id": chatID, "text": "x", "reply_markup": keyboard(map[string]any{"text": "a", "callback_data": ""})}, wantErr: "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"},
		{name: "button without action", fields: map[string]any{"chat_id": chatID, "text": "x", "reply_markup": keyboard(map[string]any{"text": "a"})}, wantErr: "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"},
		{name: "button without text", fields: map[string]any{"chat_id": chatID, "text": "x", "reply_markup": keyboard(map[string]any{"callback_data": "a"})}, wantErr: `can't parse inline keyboard button: Can't find field "text"`},
		{name: "button text not a string", fields: map[string]any{"chat_id": chatID, "text": "x", "reply_markup": keyboard(map[string]any{"text": true, "callback_data": "a"})}, wantErr: `can't parse inline keyboard button: Field "text" must be of type String`},
		{name: "button not an object", fields: map[string]any{"chat_id": chatID, "text": "x", "reply_markup": keyboard("a")}, wantErr: "can't parse inline keyboard button: InlineKeyboardButton must be an Object"},
		{name: "row not an array", fields: map[string]any{"chat_id": chatID, "text": "x", "reply_markup": `{"inline_keyboard":[{"text":"a"}]}`}, wantErr: `field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays`},
		{name: "keyboard not an array", fields: map[string]any{"chat_id": chatID, "text": "x", "reply_markup": `{"inline_keyboard":{}}`}, wantErr: `field "inline_keyboard" of the InlineKeyboardMarkup must be an Array`},
		{name: "markup not JSON", fields: map[string]any{"chat_id": chatID, "text": "x", "reply_markup": "{"}, wantErr: "can't parse reply keyboard markup JSON object"},
		{name: "markup not an object", fields: map[string]any{"chat_id": chatID, "text": "x", "reply_markup": "[]"}, wantErr: "object expected as reply markup"},
		{name: "null markup", fields: map[string]any{"chat_id": chatID, "text": "x", "reply_markup": nil}, wantErr: "object expected as reply markup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, body := sendJSON(t, s, tt.fields)
			if tt.wantErr != "" {
				require.Equal(t, 400, status)
				require.Equal(t, errorBody(400, "Bad Request: "+tt.wantErr), body)
				return
			}
			require.Equal(t, 200, status, "%v", body)
			require.Equal(t, true, body["ok"])
		})
	}
}

func TestSendMessageResult(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	markup := `{"inline_keyboard":[[{"text":"Approve","callback_data":"approve:7"},{"text":"Reject","callback_data":"reject:7"}]]}`

	status, body := sendJSON(t, s, map[string]any{
		"chat_id": chatID, "text": "<b>FIRING</b> &amp; co ", "parse_mode": "HTML",
		"link_preview_options": map[string]any{"is_disabled": true}, "reply_markup": markup,
	})
	require.Equal(t, 200, status, "%v", body)
	result := body["result"].(map[string]any)
	require.Equal(t, json.Number("1"), result["message_id"])
	require.Equal(t, "FIRING & co", result["text"])
	require.Equal(t, map[string]any{"id": json.Number("-1001234567890"), "type": "supergroup", "title": "Vigil Test Group"}, result["chat"])
	date, err := result["date"].(json.Number).Int64()
	require.NoError(t, err)
	require.InDelta(t, time.Now().Unix(), date, 5)
	require.Equal(t, map[string]any{"inline_keyboard": []any{[]any{
		map[string]any{"text": "Approve", "callback_data": "approve:7"},
		map[string]any{"text": "Reject", "callback_data": "reject:7"},
	}}}, result["reply_markup"])

	status, body = sendJSON(t, s, map[string]any{"chat_id": chatID, "text": "second", "disable_web_page_preview": true})
	require.Equal(t, 200, status)
	require.Equal(t, json.Number("2"), body["result"].(map[string]any)["message_id"])

	status, body = sendJSON(t, s, map[string]any{"chat_id": channelID, "text": "to the channel"})
	require.Equal(t, 200, status)
	result = body["result"].(map[string]any)
	require.Equal(t, json.Number("1"), result["message_id"], "message ids count per chat")
	require.Equal(t, "channel", result["chat"].(map[string]any)["type"])
	require.Equal(t, "Vigil_Alerts", result["chat"].(map[string]any)["username"])

	require.Equal(t, []faketelegram.Message{
		{
			MessageID: 1, ChatID: chatID, Text: "<b>FIRING</b> &amp; co ", PlainText: "FIRING & co", ParseMode: "HTML",
			DisablePreview: true,
			ReplyMarkup:    [][]faketelegram.Button{{{Text: "Approve", CallbackData: "approve:7"}, {Text: "Reject", CallbackData: "reject:7"}}},
		},
		{MessageID: 2, ChatID: chatID, Text: "second", PlainText: "second", DisablePreview: true},
		{MessageID: 1, ChatID: channelID, Text: "to the channel", PlainText: "to the channel"},
	}, s.Messages())
}

func TestFaults(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	target := s.URL() + "/bot" + s.Token() + "/sendMessage"
	send := func() (int, http.Header, []byte) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, target, strings.NewReader(`{"chat_id":42,"text":"x"}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		return resp.StatusCode, resp.Header, body
	}

	s.RateLimitNext(1, 7)
	s.FailNext(1, 500)
	s.FailNext(1, 502)

	status, _, body := send()
	require.Equal(t, 429, status)
	require.JSONEq(t, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}`, string(body))

	status, _, body = send()
	require.Equal(t, 500, status)
	require.JSONEq(t, `{"ok":false,"error_code":500,"description":"Internal Server Error"}`, string(body))

	status, header, body := send()
	require.Equal(t, 502, status)
	require.Equal(t, "text/html", header.Get("Content-Type"))
	require.Contains(t, string(body), "<title>502 Bad Gateway</title>")

	status, _, _ = send()
	require.Equal(t, 200, status)

	require.Equal(t, []faketelegram.Request{
		{Method: "sendMessage", StatusCode: 429, Description: "Too Many Requests: retry after 7"},
		{Method: "sendMessage", StatusCode: 500, Description: "Internal Server Error"},
		{Method: "sendMessage", StatusCode: 502, Description: "Bad Gateway"},
		{Method: "sendMessage", StatusCode: 200},
	}, s.Requests())
	require.Len(t, s.Messages(), 1, "failed requests deliver nothing")

	require.Panics(t, func() { s.FailNext(1, 200) })
}

func TestWaitForMessages(t *testing.T) {
	t.Parallel()
	s := newServer(t)

	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			status, body := sendJSON(t, s, map[string]any{"chat_id": "42", "text": fmt.Sprintf("alert %d", i)})
			require.Equal(t, 200, status, "%v", body)
		})
	}
	msgs := s.WaitForMessages(t, 10, 5*time.Second)
	require.Len(t, msgs, 10)
	wg.Wait()

	ids := make(map[int64]bool)
	for _, m := range s.Messages() {
		ids[m.MessageID] = true
	}
	require.Len(t, ids, 10, "message ids are unique")

	tb := &recordingTB{TB: t}
	require.Nil(t, s.WaitForMessages(tb, 11, 20*time.Millisecond))
	require.Contains(t, tb.fatal, "got 10 messages after 20ms, want 11")
}

// recordingTB records a fatal failure instead of ending the test.
type recordingTB struct {
	testing.TB
	fatal string
}

func (r *recordingTB) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

func TestMessagesAreCopies(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	status, _ := sendJSON(t, s, map[string]any{"chat_id": "42", "text": "x", "reply_markup": `{"inline_keyboard":[[{"text":"a","callback_data":"b"}]]}`})
	require.Equal(t, 200, status)
	s.Messages()[0].ReplyMarkup[0][0].Text = "changed"
	require.Equal(t, "a", s.Messages()[0].ReplyMarkup[0][0].Text)
}

// A reply must name a message of the chat (its own, or the one
// reply_parameters.chat_id names) that was sent; else the message is refused,
// unless allow_sending_without_reply makes it a plain message.
func TestSendMessageReplies(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	for _, text := range []string{"first", "second"} {
		status, body := sendJSON(t, s, map[string]any{"chat_id": chatID, "text": text})
		require.Equal(t, 200, status, "%v", body)
	}
	status, body := sendJSON(t, s, map[string]any{"chat_id": "42", "text": "in another chat"})
	require.Equal(t, 200, status, "%v", body)

	tests := []struct {
		name     string
		fields   map[string]any
		wantErr  string // description of a 400; empty for success
		wantTo   int64  // the message replied to
		wantChat string // ReplyToChatID
	}{
		{name: "reply parameters", fields: map[string]any{"reply_parameters": map[string]any{"message_id": 2}}, wantTo: 2},
		{name: "reply parameters as a string", fields: map[string]any{"reply_parameters": `{"message_id":"1"}`}, wantTo: 1},
		{name: "reply to a message not sent", fields: map[string]any{"reply_parameters": map[string]any{"message_id": 99}}, wantErr: "message to be replied not found"},
		{name: "reply to message 0", fields: map[string]any{"reply_parameters": map[string]any{"message_id": 0}}, wantErr: "message to be replied not found"},
		{name: "allowed without reply", fields: map[string]any{"reply_parameters": map[string]any{"message_id": 99, "allow_sending_without_reply": true}}},
		{name: "reply to another chat's message", fields: map[string]any{"reply_parameters": map[string]any{"message_id": 1, "chat_id": 42}}, wantTo: 1, wantChat: "42"},
		{name: "reply to a message another chat lacks", fields: map[string]any{"reply_parameters": map[string]any{"message_id": 2, "chat_id": "42"}}, wantErr: "message to be replied not found"},
		{name: "reply in an unknown chat", fields: map[string]any{"reply_parameters": map[string]any{"message_id": 1, "chat_id": "-100999"}}, wantErr: "chat not found"},
		{name: "legacy reply_to_message_id", fields: map[string]any{"reply_to_message_id": 2}, wantTo: 2},
		{name: "legacy reply to a message not sent", fields: map[string]any{"reply_to_message_id": 99}, wantErr: "message to be replied not found"},
		{name: "legacy allowed without reply", fields: map[string]any{"reply_to_message_id": 99, "allow_sending_without_reply": true}},
		{name: "legacy 0 is no reply", fields: map[string]any{"reply_to_message_id": 0}},
		{name: "reply parameters win over legacy", fields: map[string]any{"reply_parameters": map[string]any{"message_id": 1}, "reply_to_message_id": 99}, wantTo: 1},
		{name: "empty reply parameters", fields: map[string]any{"reply_parameters": "", "reply_to_message_id": 99}},
		{name: "not JSON", fields: map[string]any{"reply_parameters": "{"}, wantErr: "can't parse reply parameters JSON object"},
		{name: "not an object", fields: map[string]any{"reply_parameters": 5}, wantErr: "object expected as reply parameters"},
		{name: "null", fields: map[string]any{"reply_parameters": nil}, wantErr: "object expected as reply parameters"},
		{name: "no message id", fields: map[string]any{"reply_parameters": map[string]any{}}, wantErr: `can't find field "message_id"`},
		{name: "message id not a number", fields: map[string]any{"reply_parameters": map[string]any{"message_id": true}}, wantErr: `field "message_id" must be a Number`},
		{name: "text checked first", fields: map[string]any{"text": "", "reply_parameters": map[string]any{"message_id": 99}}, wantErr: "message text is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fields := map[string]any{"chat_id": chatID, "text": tt.name}
			for k, v := range tt.fields {
				fields[k] = v
			}
			before := len(s.Messages())
			status, body := sendJSON(t, s, fields)
			if tt.wantErr != "" {
				require.Equal(t, 400, status)
				require.Equal(t, errorBody(400, "Bad Request: "+tt.wantErr), body)
				require.Len(t, s.Messages(), before, "a refused message is not recorded")
				return
			}
			require.Equal(t, 200, status, "%v", body)
			msgs := s.Messages()
			last := msgs[len(msgs)-1]
			require.Equal(t, tt.wantTo, last.ReplyToMessageID)
			require.Equal(t, tt.wantChat, last.ReplyToChatID)
			replied, hasReply := body["result"].(map[string]any)["reply_to_message"].(map[string]any)
			require.Equal(t, tt.wantTo != 0, hasReply, "result.reply_to_message: %v", body)
			if hasReply {
				require.Equal(t, json.Number(strconv.FormatInt(tt.wantTo, 10)), replied["message_id"])
			}
		})
	}
}
