package faketelegram_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
)

// callMethod calls a Bot API method with a JSON body.
func callMethod(t *testing.T, s *faketelegram.Server, method string, fields map[string]any) (int, map[string]any) {
	t.Helper()
	body, err := json.Marshal(fields)
	require.NoError(t, err)
	return call(t, http.MethodPost, s.URL()+"/bot"+s.Token()+"/"+method, "application/json", bytes.NewReader(body))
}

const approvalKeyboard = `{"inline_keyboard":[[{"text":"Approve","callback_data":"approve:7"},{"text":"Reject","callback_data":"reject:7"}]]}`

var approvalButtons = [][]faketelegram.Button{{{Text: "Approve", CallbackData: "approve:7"}, {Text: "Reject", CallbackData: "reject:7"}}}

// sendCard sends an approval card to chatID and returns it as recorded.
func sendCard(t *testing.T, s *faketelegram.Server, chatID string) faketelegram.Message {
	t.Helper()
	status, body := sendJSON(t, s, map[string]any{
		"chat_id": chatID, "text": "<b>Restart</b> api?", "parse_mode": "HTML", "reply_markup": approvalKeyboard,
	})
	require.Equal(t, 200, status, "%v", body)
	id, err := body["result"].(map[string]any)["message_id"].(json.Number).Int64()
	require.NoError(t, err)
	m, ok := s.Message(chatID, id)
	require.True(t, ok)
	return m
}

func TestEditMessageText(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	card := sendCard(t, s, chatID)

	status, body := callMethod(t, s, "editMessageText", map[string]any{
		"chat_id": chatID, "message_id": card.MessageID, "text": "<b>Restart</b> api? <i>approved by @alice</i>", "parse_mode": "HTML",
		"reply_markup": `{"inline_keyboard":[[{"text":"Undo","callback_data":"undo:7"}]]}`,
	})
	require.Equal(t, 200, status, "%v", body)
	result := body["result"].(map[string]any)
	require.Equal(t, "Restart api? approved by @alice", result["text"])
	require.Contains(t, result, "edit_date")
	require.Equal(t, map[string]any{"inline_keyboard": []any{[]any{map[string]any{"text": "Undo", "callback_data": "undo:7"}}}}, result["reply_markup"])

	// Without reply_markup, editMessageText drops the keyboard, as Telegram does.
	status, body = callMethod(t, s, "editMessageText", map[string]any{"chat_id": chatID, "message_id": card.MessageID, "text": "Restarted"})
	require.Equal(t, 200, status, "%v", body)
	require.NotContains(t, body["result"], "reply_markup")

	got, ok := s.Message(chatID, card.MessageID)
	require.True(t, ok)
	require.Equal(t, "Restarted", got.Text)
	require.Nil(t, got.ReplyMarkup)
	require.Equal(t, []faketelegram.Edit{
		{
			Method: "editMessageText", Text: "<b>Restart</b> api? <i>approved by @alice</i>", PlainText: "Restart api? approved by @alice",
			ParseMode: "HTML", ReplyMarkup: [][]faketelegram.Button{{{Text: "Undo", CallbackData: "undo:7"}}},
		},
		{Method: "editMessageText", Text: "Restarted", PlainText: "Restarted"},
	}, got.Edits)
	require.Equal(t, got, s.Messages()[0], "Messages shows the current state too")
}

func TestEditMessageTextRules(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	card := sendCard(t, s, chatID)
	id := card.MessageID
	tests := []struct {
		name    string
		fields  map[string]any
		wantErr string // description of a 400; empty for success
	}{
		{name: "same text and keyboard", fields: map[string]any{"chat_id": chatID, "message_id": id, "text": "<b>Restart</b> api?", "parse_mode": "HTML", "reply_markup": approvalKeyboard}, wantErr: "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"},
		{name: "same content, other markup", fields: map[string]any{"chat_id": chatID, "message_id": id, "text": "<strong>Restart</strong> api?\n", "parse_mode": "html", "reply_markup": approvalKeyboard}, wantErr: "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"},
		{name: "unknown message", fields: map[string]any{"chat_id": chatID, "message_id": 99, "text": "x"}, wantErr: "message to edit not found"},
		{name: "message id 0", fields: map[string]any{"chat_id": chatID, "message_id": 0, "text": "x"}, wantErr: "message to edit not found"},
		{name: "message of another chat", fields: map[string]any{"chat_id": "42", "message_id": id, "text": "x"}, wantErr: "message to edit not found"},
		{name: "unknown chat", fields: map[string]any{"chat_id": "-100999", "message_id": id, "text": "x"}, wantErr: "chat not found"},
		{name: "no chat id", fields: map[string]any{"message_id": id, "text": "x"}, wantErr: "chat_id is empty"},
		{name: "no message at all", fields: map[string]any{"text": "x"}, wantErr: "message identifier is not specified"},
		{name: "inline message", fields: map[string]any{"inline_message_id": "AAAA", "text": "x"}, wantErr: "invalid inline message identifier specified"},
		{name: "empty text", fields: map[string]any{"chat_id": chatID, "message_id": id, "text": ""}, wantErr: "message text is empty"},
		{name: "bad HTML", fields: map[string]any{"chat_id": chatID, "message_id": id, "text": "<p>x</p>", "parse_mode": "HTML"}, wantErr: `can't parse entities: Unsupported start tag "p" at byte offset 0`},
		{name: "text checked before the message", fields: map[string]any{"chat_id": chatID, "message_id": 99, "text": "<b>x", "parse_mode": "HTML"}, wantErr: `can't parse entities: Can't find end tag corresponding to start tag "b"`},
		{name: "too long", fields: map[string]any{"chat_id": chatID, "message_id": id, "text": strings.Repeat("x", 4097)}, wantErr: "message is too long"},
		{name: "callback data too long", fields: map[string]any{"chat_id": chatID, "message_id": id, "text": "x", "reply_markup": `{"inline_keyboard":[[{"text":"a","callback_data":"` + strings.Repeat("d", 65) + `"}]]}`}, wantErr: "BUTTON_DATA_INVALID"},
		{name: "markup not JSON", fields: map[string]any{"chat_id": chatID, "message_id": id, "text": "x", "reply_markup": "{"}, wantErr: "can't parse reply keyboard markup JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := callMethod(t, s, "editMessageText", tt.fields)
			require.Equal(t, 400, status, "%v", body)
			require.Equal(t, errorBody(400, "Bad Request: "+tt.wantErr), body)
		})
	}
	got, _ := s.Message(chatID, id)
	require.Empty(t, got.Edits, "refused edits change nothing")
	require.Equal(t, approvalButtons, got.ReplyMarkup)

	t.Run("formatting alone is a change", func(t *testing.T) {
		status, body := callMethod(t, s, "editMessageText", map[string]any{"chat_id": chatID, "message_id": id, "text": "Restart api?", "reply_markup": approvalKeyboard})
		require.Equal(t, 200, status, "%v", body)
	})
}

func TestEditMessageReplyMarkup(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	card := sendCard(t, s, chatID)
	edit := func(fields map[string]any) (int, map[string]any) {
		fields["chat_id"], fields["message_id"] = chatID, card.MessageID
		return callMethod(t, s, "editMessageReplyMarkup", fields)
	}

	status, body := edit(map[string]any{"reply_markup": approvalKeyboard})
	require.Equal(t, 400, status)
	require.Contains(t, body["description"], "message is not modified")

	status, body = edit(map[string]any{"reply_markup": `{"inline_keyboard":[[{"text":"Details","url":"https://vigil.test/r/7"}]]}`})
	require.Equal(t, 200, status, "%v", body)
	require.Equal(t, "Restart api?", body["result"].(map[string]any)["text"], "the text stays")

	status, body = edit(map[string]any{"reply_markup": `{"inline_keyboard":[]}`})
	require.Equal(t, 200, status, "%v", body)
	require.NotContains(t, body["result"], "reply_markup", "an empty keyboard removes the buttons")

	status, body = edit(map[string]any{})
	require.Equal(t, 400, status, "no keyboard is already none: %v", body)

	status, body = edit(map[string]any{"reply_markup": `{"inline_keyboard":[[{"text":"","callback_data":"x"}]]}`})
	require.Equal(t, 400, status)
	require.Equal(t, "Bad Request: BUTTON_TEXT_INVALID", body["description"])

	got, _ := s.Message(chatID, card.MessageID)
	require.Nil(t, got.ReplyMarkup)
	require.Equal(t, "<b>Restart</b> api?", got.Text)
	require.Len(t, got.Edits, 2)
	require.Equal(t, "editMessageReplyMarkup", got.Edits[0].Method)
	require.Equal(t, [][]faketelegram.Button{{{Text: "Details", URL: "https://vigil.test/r/7"}}}, got.Edits[0].ReplyMarkup)
	require.Nil(t, got.Edits[1].ReplyMarkup)

	status, body = callMethod(t, s, "editMessageReplyMarkup", map[string]any{"chat_id": chatID, "message_id": 99})
	require.Equal(t, 400, status)
	require.Equal(t, "Bad Request: message to edit not found", body["description"])
}

func TestInlineKeyboardLimits(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	keyboard := func(button map[string]any) string {
		b, err := json.Marshal(map[string]any{"inline_keyboard": [][]map[string]any{{button}}})
		require.NoError(t, err)
		return string(b)
	}
	tests := []struct {
		name    string
		button  map[string]any
		wantErr string
	}{
		{name: "1 byte of data", button: map[string]any{"text": "a", "callback_data": "x"}},
		{name: "64 bytes of data", button: map[string]any{"text": "a", "callback_data": strings.Repeat("x", 64)}},
		{name: "65 bytes of data", button: map[string]any{"text": "a", "callback_data": strings.Repeat("x", 65)}, wantErr: "BUTTON_DATA_INVALID"},
		{name: "64 characters but 128 bytes", button: map[string]any{"text": "a", "callback_data": strings.Repeat("ü", 64)}, wantErr: "BUTTON_DATA_INVALID"},
		{name: "empty text", button: map[string]any{"text": "", "callback_data": "x"}, wantErr: "BUTTON_TEXT_INVALID"},
		{name: "blank text", button: map[string]any{"text": "  ", "callback_data": "x"}, wantErr: "BUTTON_TEXT_INVALID"},
		{name: "empty data is no action", button: map[string]any{"text": "a", "callback_data": ""}, wantErr: "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, body := sendJSON(t, s, map[string]any{"chat_id": chatID, "text": "x", "reply_markup": keyboard(tt.button)})
			if tt.wantErr == "" {
				require.Equal(t, 200, status, "%v", body)
				return
			}
			require.Equal(t, 400, status)
			require.Equal(t, errorBody(400, "Bad Request: "+tt.wantErr), body)
		})
	}
}
