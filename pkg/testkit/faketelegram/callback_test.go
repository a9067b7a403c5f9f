package faketelegram_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
)

var alice = faketelegram.User{ID: 5001, FirstName: "Alice", Username: "alice", LanguageCode: "en"}

// getUpdates calls getUpdates and returns the updates.
func getUpdates(t *testing.T, s *faketelegram.Server, fields map[string]any) []any {
	t.Helper()
	status, body := callMethod(t, s, "getUpdates", fields)
	require.Equal(t, 200, status, "%v", body)
	return body["result"].([]any)
}

func TestPressDeliversToGetUpdates(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	card := sendCard(t, s, chatID)

	q := s.Press(t, card, "approve:7", alice)
	require.NotEmpty(t, q.ID)
	require.NotZero(t, q.UpdateID)
	require.Nil(t, q.Answer)

	updates := getUpdates(t, s, map[string]any{})
	require.Len(t, updates, 1)
	u := updates[0].(map[string]any)
	require.Equal(t, json.Number(jsonInt(q.UpdateID)), u["update_id"])
	cq := u["callback_query"].(map[string]any)
	require.Equal(t, q.ID, cq["id"])
	require.Equal(t, "approve:7", cq["data"])
	require.Equal(t, q.ChatInstance, cq["chat_instance"])
	require.NotEmpty(t, cq["chat_instance"])
	require.Equal(t, map[string]any{"id": json.Number("5001"), "is_bot": false, "first_name": "Alice", "username": "alice", "language_code": "en"}, cq["from"])
	msg := cq["message"].(map[string]any)
	require.Equal(t, json.Number(jsonInt(card.MessageID)), msg["message_id"])
	require.Equal(t, json.Number(chatID), msg["chat"].(map[string]any)["id"])
	require.Equal(t, "Restart api?", msg["text"])
	require.Contains(t, msg, "reply_markup")

	status, body := callMethod(t, s, "answerCallbackQuery", map[string]any{"callback_query_id": q.ID, "text": "Approved", "show_alert": true})
	require.Equal(t, 200, status, "%v", body)
	require.Equal(t, true, body["result"])
	require.Equal(t, faketelegram.CallbackAnswer{Text: "Approved", ShowAlert: true}, s.WaitForAnswer(t, q.ID, time.Second))

	got := s.CallbackQueries()
	require.Len(t, got, 1)
	require.Equal(t, "approve:7", got[0].Data)
	require.Equal(t, alice, got[0].From)
	require.Equal(t, &faketelegram.CallbackAnswer{Text: "Approved", ShowAlert: true}, got[0].Answer)
}

func TestAnswerCallbackQueryRules(t *testing.T) {
	t.Parallel()
	const invalid = "Bad Request: query is too old and response timeout expired or query ID is invalid"
	s := newServer(t)
	card := sendCard(t, s, chatID)
	answer := func(fields map[string]any) (int, string) {
		status, body := callMethod(t, s, "answerCallbackQuery", fields)
		description, _ := body["description"].(string)
		return status, description
	}

	q := s.Press(t, card, "approve:7", alice)
	status, description := answer(map[string]any{"callback_query_id": q.ID, "text": strings.Repeat("é", 201)})
	require.Equal(t, 400, status)
	require.Equal(t, "Bad Request: MESSAGE_TOO_LONG", description)
	require.Nil(t, s.CallbackQueries()[0].Answer, "a refused answer does not use the query up")

	status, description = answer(map[string]any{"callback_query_id": q.ID, "text": strings.Repeat("é", 200)})
	require.Equal(t, 200, status, description)

	status, description = answer(map[string]any{"callback_query_id": q.ID})
	require.Equal(t, 400, status, "answered twice")
	require.Equal(t, invalid, description)

	status, description = answer(map[string]any{"callback_query_id": "123456"})
	require.Equal(t, 400, status, "never issued")
	require.Equal(t, invalid, description)

	status, description = answer(map[string]any{})
	require.Equal(t, 400, status, "no id")
	require.Equal(t, invalid, description)

	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		s := faketelegram.New(t, faketelegram.Options{ChatIDs: []string{chatID}, CallbackQueryTimeout: time.Nanosecond})
		q := s.Press(t, sendCard(t, s, chatID), "reject:7", alice)
		status, body := callMethod(t, s, "answerCallbackQuery", map[string]any{"callback_query_id": q.ID})
		require.Equal(t, 400, status)
		require.Equal(t, invalid, body["description"])
	})
}

func TestPressRefusesImpossiblePresses(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	card := sendCard(t, s, chatID)
	private := sendCard(t, s, "42")
	status, body := sendJSON(t, s, map[string]any{"chat_id": chatID, "text": "no buttons"})
	require.Equal(t, 200, status, "%v", body)
	plain := s.Messages()[2]

	status, body = callMethod(t, s, "editMessageReplyMarkup", map[string]any{
		"chat_id": chatID, "message_id": card.MessageID,
		"reply_markup": `{"inline_keyboard":[[{"text":"Approve","callback_data":"approve:8"}]]}`,
	})
	require.Equal(t, 200, status, "%v", body)

	tests := []struct {
		name string
		msg  faketelegram.Message
		data string
		from faketelegram.User
		want string
	}{
		{name: "button gone after an edit", msg: card, data: "approve:7", from: alice, want: `has no button with callback_data "approve:7"; its keyboard: "Approve"→"approve:8"`},
		{name: "no keyboard", msg: plain, data: "x", from: alice, want: "its keyboard: none"},
		{name: "unknown message", msg: faketelegram.Message{ChatID: chatID, MessageID: 99}, data: "approve:8", from: alice, want: "no message 99"},
		{name: "unknown chat", msg: faketelegram.Message{ChatID: "-5", MessageID: 1}, data: "approve:8", from: alice, want: "no message 1"},
		{name: "someone else's private chat", msg: private, data: "approve:7", from: alice, want: "is private to user 42"},
		{name: "a bot", msg: card, data: "approve:8", from: faketelegram.User{ID: 9, IsBot: true, FirstName: "B"}, want: "must be a person"},
		{name: "no user id", msg: card, data: "approve:8", from: faketelegram.User{FirstName: "Anon"}, want: "must be a person"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := &recordingTB{TB: t}
			s.Press(tb, tt.msg, tt.data, tt.from)
			require.Contains(t, tb.fatal, tt.want)
		})
	}
	require.Empty(t, s.CallbackQueries(), "no refused press made a query")
	require.Empty(t, getUpdates(t, s, map[string]any{}))

	s.Press(t, private, "approve:7", faketelegram.User{ID: 42, FirstName: "Owner"})
	require.Len(t, s.CallbackQueries(), 1, "the owner of a private chat can press")
}

// A bot that leaves callback_query out of allowed_updates never hears of a press.
func TestPressFilteredByAllowedUpdates(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	card := sendCard(t, s, chatID)
	require.Empty(t, getUpdates(t, s, map[string]any{"allowed_updates": []string{"message"}}))

	q := s.Press(t, card, "approve:7", alice)
	require.Zero(t, q.UpdateID)
	require.Empty(t, getUpdates(t, s, map[string]any{}), "allowed_updates is kept between calls")

	require.Empty(t, getUpdates(t, s, map[string]any{"allowed_updates": []string{}}), "an empty list restores the default")
	q = s.Press(t, card, "approve:7", alice)
	require.NotZero(t, q.UpdateID)
	require.Len(t, getUpdates(t, s, map[string]any{}), 1)
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
