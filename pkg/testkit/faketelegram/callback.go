package faketelegram

import (
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// CallbackQuery is a press of an inline button, made with Press.
type CallbackQuery struct {
	ID   string
	From User
	// ChatID and MessageID name the pressed message; ChatID as it was sent.
	ChatID       string
	MessageID    int64
	ChatInstance string
	Data         string
	// UpdateID is the update that carries the query to the bot; 0 when the
	// bot's allowed_updates leave callback queries out, so it never hears
	// of the press.
	UpdateID int64
	// Answer is the bot's answerCallbackQuery, nil until it answers.
	Answer *CallbackAnswer
}

// CallbackAnswer is what the bot answered a callback query with.
type CallbackAnswer struct {
	Text      string
	ShowAlert bool
	URL       string
	CacheTime int
}

// maxAnswerText is the most characters answerCallbackQuery shows.
const maxAnswerText = 200

// queryInvalid is Telegram's QUERY_ID_INVALID as the Bot API words it: the
// id was never issued, was answered already, or its time ran out.
const queryInvalid = "query is too old and response timeout expired or query ID is invalid"

// Press simulates from pressing the inline button whose callback_data is
// data on msg (only msg's ChatID and MessageID are read; the button must
// be on the message's current keyboard, after any edits). It creates a
// callback query and delivers it the way the bot asked for updates: posted
// to the webhook if one is set, before Press returns; otherwise queued for
// getUpdates. It fails the test if the press is impossible: no such
// message or button, or a private chat pressed by someone else.
func (s *Server) Press(t testing.TB, msg Message, data string, from User) CallbackQuery {
	t.Helper()
	if from.ID <= 0 || from.IsBot || from.FirstName == "" {
		t.Fatalf("faketelegram: Press: from must be a person, with a positive ID and a FirstName: %+v", from)
		return CallbackQuery{}
	}
	s.mu.Lock()
	c, known := s.chats[chatKey(msg.ChatID)]
	m := s.messageLocked(c, msg.MessageID)
	if !known || m == nil {
		s.mu.Unlock()
		t.Fatalf("faketelegram: Press: no message %d in chat %q", msg.MessageID, msg.ChatID)
		return CallbackQuery{}
	}
	if !hasCallbackButton(m.ReplyMarkup, data) {
		buttons := describeKeyboard(m.ReplyMarkup)
		s.mu.Unlock()
		t.Fatalf("faketelegram: Press: message %d in chat %q has no button with callback_data %q; its keyboard: %s",
			msg.MessageID, msg.ChatID, data, buttons)
		return CallbackQuery{}
	}
	if c.Type == "private" && from.ID != c.ID {
		s.mu.Unlock()
		t.Fatalf("faketelegram: Press: chat %q is private to user %d; user %d can't see it", msg.ChatID, c.ID, from.ID)
		return CallbackQuery{}
	}

	s.lastQuery++
	q := CallbackQuery{
		ID:           strconv.FormatUint(4_000_000_000_000_000_000+uint64(s.lastQuery), 10),
		From:         from,
		ChatID:       m.ChatID,
		MessageID:    m.MessageID,
		ChatInstance: chatInstance(c.ID),
		Data:         data,
	}
	if s.allowedLocked("callback_query") {
		q.UpdateID = s.enqueueLocked("callback_query", map[string]any{
			"id":            q.ID,
			"from":          from,
			"message":       s.messageResult(*m, c),
			"chat_instance": q.ChatInstance,
			"data":          data,
		})
	}
	s.queries = append(s.queries, q)
	s.pressedAt[q.ID] = time.Now()
	s.notifyLocked()
	webhook := s.webhook != nil
	s.mu.Unlock()

	if webhook {
		s.deliver(t.Context())
	}
	return q
}

// answerCallbackQuery records the bot's answer to a press. Each query can
// be answered once, within Options.CallbackQueryTimeout of the press.
func (s *Server) answerCallbackQuery(r *http.Request) reply {
	args, err := requestArgs(r)
	if err != nil {
		return fail(err)
	}
	if err := checkUTF8(args); err != nil {
		return fail(err)
	}
	id := args["callback_query_id"]
	cacheTime, _ := strconv.Atoi(strings.TrimSpace(args["cache_time"]))

	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.queryIndexLocked(id)
	if i < 0 || s.queries[i].Answer != nil || time.Since(s.pressedAt[id]) > s.opts.CallbackQueryTimeout {
		return fail(badRequest(queryInvalid))
	}
	if utf8.RuneCountInString(args["text"]) > maxAnswerText {
		return fail(badRequest("MESSAGE_TOO_LONG"))
	}
	s.queries[i].Answer = &CallbackAnswer{
		Text: args["text"], ShowAlert: boolArg(args["show_alert"]), URL: args["url"], CacheTime: cacheTime,
	}
	s.notifyLocked()
	return reply{status: http.StatusOK, result: true}
}

func (s *Server) queryIndexLocked(id string) int {
	for i, q := range s.queries {
		if q.ID == id {
			return i
		}
	}
	return -1
}

// CallbackQueries returns the presses made so far, oldest first, with the
// bot's answers.
func (s *Server) CallbackQueries() []CallbackQuery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]CallbackQuery, len(s.queries))
	for i, q := range s.queries {
		if q.Answer != nil {
			answer := *q.Answer
			q.Answer = &answer
		}
		out[i] = q
	}
	return out
}

// WaitForAnswer waits until the bot answers the callback query id and
// returns the answer; it fails the test if that takes longer than timeout.
func (s *Server) WaitForAnswer(t testing.TB, id string, timeout time.Duration) CallbackAnswer {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		changed := s.changed
		if i := s.queryIndexLocked(id); i >= 0 && s.queries[i].Answer != nil {
			answer := *s.queries[i].Answer
			s.mu.Unlock()
			return answer
		}
		s.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("faketelegram: callback query %q not answered after %s", id, timeout)
			return CallbackAnswer{}
		}
	}
}

// chatInstance stands for Telegram's opaque per-chat identifier: stable
// for a chat, different between chats.
func chatInstance(chatID int64) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(strconv.FormatInt(chatID, 10)))
	return strconv.FormatInt(-int64(h.Sum64()>>1), 10)
}

// describeKeyboard lists a keyboard's buttons for a failure message.
func describeKeyboard(rows [][]Button) string {
	var parts []string
	for _, row := range rows {
		for _, b := range row {
			switch {
			case b.CallbackData != "":
				parts = append(parts, strconv.Quote(b.Text)+"→"+strconv.Quote(b.CallbackData))
			case b.URL != "":
				parts = append(parts, strconv.Quote(b.Text)+"→"+b.URL)
			default:
				parts = append(parts, strconv.Quote(b.Text))
			}
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
