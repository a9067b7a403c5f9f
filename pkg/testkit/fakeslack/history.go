package fakeslack

import (
	"encoding/base64"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Metadata is a message's metadata as the bot posted it.
type Metadata struct {
	EventType    string         `json:"event_type"`
	EventPayload map[string]any `json:"event_payload"`
}

// DefaultScopes are the scopes a bot token of the fake has unless
// Options.Scopes says otherwise.
var DefaultScopes = []string{"chat:write", "channels:history", "groups:history", "im:history", "mpim:history"}

var (
	eventTypePattern = regexp.MustCompile(`^[A-Za-z0-9_.]{1,255}$`)
	oldestPattern    = regexp.MustCompile(`^[0-9]{1,10}(\.[0-9]{1,6})?$`)
)

// micros is a timestamp ("1700000000.000100", "1700000000") in
// microseconds, exactly: a float64 has too few digits for Slack's.
func micros(ts string) int64 {
	sec, frac, _ := strings.Cut(ts, ".")
	s, _ := strconv.ParseInt(sec, 10, 64)
	f, _ := strconv.ParseInt((frac + "000000")[:6], 10, 64)
	return s*1_000_000 + f
}

// readMetadata reads chat.postMessage's metadata: a JSON object, or its
// JSON text in a form, with an event_type and an event_payload object;
// nil when there is none.
func readMetadata(a args) (*Metadata, result, bool) {
	v, ok := a["metadata"]
	if !ok || v == nil {
		return nil, result{}, true
	}
	raw := []byte(a.str("metadata"))
	var m Metadata
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil || json.Unmarshal(raw, &m) != nil ||
		!eventTypePattern.MatchString(m.EventType) || m.EventPayload == nil {
		return nil, failed("invalid_metadata_format", "[ERROR] metadata wants an event_type of letters, digits, '_' and '.' and an event_payload object"), false
	}
	for k := range fields {
		if k != "event_type" && k != "event_payload" {
			return nil, failed("invalid_metadata_schema", "[ERROR] unknown field "+k), false
		}
	}
	return &m, result{}, true
}

// historyScope is the scope reading channel ch's history takes.
func historyScope(ch Channel) string {
	switch ch.ID[0] {
	case 'G':
		return "groups:history"
	case 'D':
		return "im:history"
	}
	return "channels:history"
}

// maxHistoryLimit is the most messages a page holds; a larger limit is
// taken as this.
const maxHistoryLimit = 999

// history serves conversations.history (thread false: the channel's
// top-level messages and broadcast replies, newest first) and
// conversations.replies (thread true: the parent named by ts, then its
// replies, oldest first), each from oldest on (exclusive unless
// inclusive), a page of limit (default 100) at a time; metadata only with
// include_all_metadata.
func (s *Server) history(thread bool) func(args) result {
	return func(a args) result {
		ch, ok := s.channel(a.str("channel"))
		if !ok {
			return failed("channel_not_found")
		}
		if need := historyScope(ch); !slices.Contains(s.opts.Scopes, need) {
			return result{err: "missing_scope", fields: map[string]any{"needed": need, "provided": strings.Join(s.opts.Scopes, ",")}}
		}
		oldest, inclusive := a.str("oldest"), a.bool("inclusive")
		if oldest != "" && !oldestPattern.MatchString(oldest) {
			return failed("invalid_ts_oldest")
		}
		limit := 100
		if l := a.str("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil || n < 1 {
				return failed("invalid_limit")
			}
			limit = min(n, maxHistoryLimit)
		}
		start := 0
		if c := a.str("cursor"); c != "" {
			b, err := base64.StdEncoding.DecodeString(c)
			n, convErr := strconv.Atoi(strings.TrimPrefix(string(b), "next:"))
			if err != nil || convErr != nil || !strings.HasPrefix(string(b), "next:") || n < 0 {
				return failed("invalid_cursor")
			}
			start = n
		}
		metadata := a.bool("include_all_metadata")

		s.mu.Lock()
		defer s.mu.Unlock()
		after := func(m Message) bool {
			o, t := micros(oldest), micros(m.TS)
			return oldest == "" || t > o || inclusive && t == o
		}
		var picked []Message
		if thread {
			ts := a.str("ts")
			parent := s.messageLocked(ch.ID, ts)
			if parent == nil || parent.Deleted || parent.ThreadTS != "" {
				return failed("thread_not_found")
			}
			picked = append(picked, *parent)
			for _, m := range s.messages {
				if m.Channel == ch.ID && m.ThreadTS == ts && !m.Deleted && after(m) {
					picked = append(picked, m)
				}
			}
		} else {
			for i := len(s.messages) - 1; i >= 0; i-- {
				m := s.messages[i]
				if m.Channel == ch.ID && !m.Deleted && (m.ThreadTS == "" || m.Broadcast) && after(m) {
					picked = append(picked, m)
				}
			}
		}
		start = min(start, len(picked))
		end := min(start+limit, len(picked))
		out := make([]map[string]any, 0, end-start)
		for _, m := range picked[start:end] {
			j := s.messageJSON(m)
			if metadata && m.Metadata != nil {
				j["metadata"] = m.Metadata
			}
			out = append(out, j)
		}
		next := ""
		if end < len(picked) {
			next = base64.StdEncoding.EncodeToString([]byte("next:" + strconv.Itoa(end)))
		}
		return result{fields: map[string]any{
			"messages": out, "has_more": next != "", "response_metadata": map[string]any{"next_cursor": next},
		}}
	}
}
