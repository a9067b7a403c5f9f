package faketelegram

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

const (
	// firstUpdateID is the first update_id the fake gives out; Telegram's
	// start at some large positive number, so clients must not assume 1.
	firstUpdateID = 100000001
	// longPollMaxTimeout is the most seconds getUpdates holds a request.
	longPollMaxTimeout = 50
)

// Conflict descriptions, as the Bot API words them.
const (
	conflictOtherPoll  = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
	conflictSetWebhook = "Conflict: terminated by setWebhook request"
	conflictWebhook    = "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)

// update is one pending update: not yet confirmed through getUpdates, or
// not yet accepted by the webhook.
type update struct {
	id      int64
	kind    string // the Update field that carries it: "callback_query"
	payload map[string]any
}

func (u update) json() map[string]any {
	return map[string]any{"update_id": u.id, u.kind: u.payload}
}

// longPoll is a getUpdates request being held until an update arrives.
type longPoll struct {
	abort chan string // receives the 409 description that ends it early
}

// updateTypes are the Update fields allowed_updates may name.
var updateTypes = []string{
	"message", "edited_message", "channel_post", "edited_channel_post", "business_connection",
	"business_message", "edited_business_message", "deleted_business_messages", "message_reaction",
	"message_reaction_count", "inline_query", "chosen_inline_result", "callback_query", "shipping_query",
	"pre_checkout_query", "purchased_paid_media", "poll", "poll_answer", "my_chat_member", "chat_member",
	"chat_join_request", "chat_boost", "removed_chat_boost",
}

// allowedLocked reports whether updates of kind reach the bot. By default
// all do but chat_member, message_reaction and message_reaction_count.
func (s *Server) allowedLocked(kind string) bool {
	if s.allowed == nil {
		return kind != "chat_member" && kind != "message_reaction" && kind != "message_reaction_count"
	}
	return s.allowed[kind]
}

// setAllowedLocked applies allowed_updates as the Bot API does: absent or
// not a JSON array of strings keeps the previous setting; a list naming no
// known type (an empty one included) restores the default.
func (s *Server) setAllowedLocked(raw string) {
	if raw == "" {
		return
	}
	var names []any
	if json.Unmarshal([]byte(raw), &names) != nil {
		return
	}
	set := make(map[string]bool)
	for _, n := range names {
		name, ok := n.(string)
		if !ok {
			return
		}
		for _, known := range updateTypes {
			if strings.EqualFold(name, known) {
				set[known] = true
			}
		}
	}
	if len(set) == 0 {
		s.allowed = nil
		return
	}
	s.allowed = set
}

// allowedListLocked is the allowed_updates setting for getWebhookInfo,
// nil for the default.
func (s *Server) allowedListLocked() []string {
	if s.allowed == nil {
		return nil
	}
	var out []string
	for _, t := range updateTypes {
		if s.allowed[t] {
			out = append(out, t)
		}
	}
	return out
}

// enqueueLocked adds an update and returns its id.
func (s *Server) enqueueLocked(kind string, payload map[string]any) int64 {
	id := s.nextUpdateID
	s.nextUpdateID++
	u := update{id: id, kind: kind, payload: payload}
	s.updates = append(s.updates, u)
	s.sent[id] = u
	s.notifyLocked()
	return id
}

// Redeliver delivers the update id once more, as Telegram does when it did
// not see the bot take it: a webhook's answer lost on the way, or a poller
// gone before its next getUpdates confirmed it. It goes first to the
// webhook if one is set (before Redeliver returns), otherwise to the next
// getUpdates whose offset does not confirm it. It fails the test for an
// update the fake never made.
func (s *Server) Redeliver(t testing.TB, id int64) {
	t.Helper()
	s.mu.Lock()
	u, ok := s.sent[id]
	if !ok {
		s.mu.Unlock()
		t.Fatalf("faketelegram: Redeliver: no update %d", id)
		return
	}
	s.updates = append([]update{u}, s.updates...)
	s.notifyLocked()
	webhook := s.webhook != nil
	s.mu.Unlock()
	if webhook {
		s.deliver(t.Context())
	}
}

// getUpdates answers with pending updates from offset on, holding the
// request up to timeout seconds while there are none. Updates before a
// valid offset are confirmed and forgotten; a negative offset keeps only
// the last -offset updates. A second held request ends the first with 409.
func (s *Server) getUpdates(r *http.Request) reply {
	args, err := requestArgs(r)
	if err != nil {
		return fail(err)
	}
	offset := int64(intArg(args["offset"], 0))
	limit := clamp(intArg(args["limit"], 100), 1, 100)
	timeout := clamp(intArg(args["timeout"], 0), 0, longPollMaxTimeout)

	s.mu.Lock()
	if s.webhook != nil {
		s.mu.Unlock()
		return reply{status: http.StatusConflict, description: conflictWebhook}
	}
	s.setAllowedLocked(args["allowed_updates"])
	if offset < 0 {
		if keep := int(-offset); keep < len(s.updates) {
			s.updates = s.updates[len(s.updates)-keep:]
		}
		offset = 0
	}
	found := s.takeLocked(offset, limit)
	if len(found) > 0 || timeout == 0 {
		s.mu.Unlock()
		return reply{status: http.StatusOK, result: found}
	}
	if s.poll != nil {
		s.poll.abort <- conflictOtherPoll
	}
	poll := &longPoll{abort: make(chan string, 1)}
	s.poll = poll
	s.mu.Unlock()

	release := func() {
		s.mu.Lock()
		if s.poll == poll {
			s.poll = nil
		}
		s.mu.Unlock()
	}
	timer := time.NewTimer(time.Duration(timeout) * time.Second)
	defer timer.Stop()
	for {
		s.mu.Lock()
		changed := s.changed
		found := s.takeLocked(offset, limit)
		s.mu.Unlock()
		if len(found) > 0 {
			release()
			return reply{status: http.StatusOK, result: found}
		}
		select {
		case description := <-poll.abort:
			return reply{status: http.StatusConflict, description: description}
		case <-changed:
		case <-timer.C:
			release()
			return reply{status: http.StatusOK, result: []map[string]any{}}
		case <-r.Context().Done():
			release()
			return reply{status: http.StatusOK, result: []map[string]any{}}
		case <-s.done:
			release()
			return reply{status: http.StatusOK, result: []map[string]any{}}
		}
	}
}

// takeLocked confirms the updates before offset and returns up to limit
// pending ones from there. An offset of 0, or one past the newest update,
// reads from the oldest pending update and confirms nothing.
func (s *Server) takeLocked(offset int64, limit int) []map[string]any {
	if offset > 0 && offset <= s.nextUpdateID {
		i := 0
		for i < len(s.updates) && s.updates[i].id < offset {
			i++
		}
		s.updates = s.updates[i:]
	}
	out := []map[string]any{}
	for _, u := range s.updates {
		if len(out) == limit {
			break
		}
		out = append(out, u.json())
	}
	return out
}

// intArg reads an integer parameter as the Bot API does: absent is def,
// otherwise the leading decimal number (0 if there is none).
func intArg(v string, def int) int {
	v = strings.TrimSpace(v)
	if v == "" {
		return def
	}
	sign, i := 1, 0
	if v[0] == '-' || v[0] == '+' {
		if v[0] == '-' {
			sign = -1
		}
		i = 1
	}
	n := 0
	for ; i < len(v) && v[i] >= '0' && v[i] <= '9' && n < 1<<31; i++ {
		n = n*10 + int(v[i]-'0')
	}
	return sign * n
}

func clamp(v, lo, hi int) int { return max(lo, min(v, hi)) }
