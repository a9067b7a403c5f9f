package fakeslack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"
	"unicode/utf8"
)

// maxTextLength is the most characters a message's text may hold.
const maxTextLength = 40000

var tsPattern = regexp.MustCompile(`^[0-9]{10}\.[0-9]{6}$`)

// Message is a message the bot posted, in its current state.
type Message struct {
	// Channel is the channel's id, whichever way the bot named it.
	Channel string
	// TS is the message's timestamp, its id within the channel.
	TS string
	// ThreadTS is the parent's ts for a reply in a thread, "" for a
	// top-level message.
	ThreadTS string
	Text     string
	// Blocks are the message's blocks as JSON, with the block_id and
	// action_id Slack fills in where the bot gave none; nil for none.
	Blocks  json.RawMessage
	Buttons []Button
	// Broadcast: a reply shown in the channel too (reply_broadcast).
	Broadcast bool
	// Metadata is what the bot posted it with, nil for none.
	Metadata *Metadata
	// Deleted is set when a response_url deleted the message.
	Deleted bool
	// Edits are the changes made since the message was posted, oldest
	// first; the fields above show the message after the last one.
	Edits []Edit
}

// Edit is one change of a message: how it was made and the message after.
type Edit struct {
	// Via is "chat.update" or "response_url".
	Via    string
	Text   string
	Blocks json.RawMessage
}

// Button returns the button with actionID, and false if the message has
// none.
func (m Message) Button(actionID string) (Button, bool) {
	for _, b := range m.Buttons {
		if b.ActionID == actionID {
			return b, true
		}
	}
	return Button{}, false
}

// content is a message's text and blocks as a call asked for them.
type content struct {
	text      string
	hasText   bool
	blocks    json.RawMessage
	buttons   []Button
	hasBlocks bool
}

// readContent reads and checks text and blocks.
func readContent(a args) (content, result, bool) {
	var c content
	_, c.hasText = a["text"]
	c.text = a.str("text")
	if v, present := a["blocks"]; present && v != nil && a.str("blocks") != "" {
		raw, buttons, res, ok := parseBlocks(v)
		if !ok {
			return content{}, res, false
		}
		c.hasBlocks = true
		if !bytes.Equal(raw, []byte("[]")) {
			c.blocks, c.buttons = raw, buttons
		}
	}
	if utf8.RuneCountInString(c.text) > maxTextLength {
		return content{}, failed("msg_too_long"), false
	}
	return c, result{}, true
}

func (s *Server) postMessage(a args) result {
	ch, ok := s.channel(a.str("channel"))
	if !ok {
		return failed("channel_not_found")
	}
	c, res, ok := readContent(a)
	if !ok {
		return res
	}
	if c.text == "" && c.blocks == nil {
		return failed("no_text")
	}
	threadTS := a.str("thread_ts")
	if threadTS != "" && !tsPattern.MatchString(threadTS) {
		return failed("invalid_thread_ts", fmt.Sprintf("[ERROR] %s is not a valid thread_ts", threadTS))
	}
	metadata, res, ok := readMetadata(a)
	if !ok {
		return res
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if threadTS != "" {
		parent := s.messageLocked(ch.ID, threadTS)
		if parent == nil || parent.Deleted || parent.ThreadTS != "" {
			return failed("thread_not_found")
		}
	}
	m := Message{
		Channel: ch.ID, TS: s.nextTSLocked(), ThreadTS: threadTS, Text: c.text, Blocks: c.blocks, Buttons: c.buttons,
		Broadcast: threadTS != "" && a.bool("reply_broadcast"), Metadata: metadata,
	}
	s.messages = append(s.messages, m)
	s.notifyLocked()
	return result{fields: map[string]any{"channel": ch.ID, "ts": m.TS, "message": s.messageJSON(m)}}
}

// update replaces a message's text and blocks. Either left out keeps what
// the message had; blocks of [] remove the blocks.
func (s *Server) update(a args) result {
	ch, ok := s.channel(a.str("channel"))
	if !ok {
		return failed("channel_not_found")
	}
	c, res, ok := readContent(a)
	if !ok {
		return res
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.messageLocked(ch.ID, a.str("ts"))
	if m == nil || m.Deleted {
		return failed("message_not_found")
	}
	if !c.hasText {
		c.text = m.Text
	}
	if !c.hasBlocks {
		c.blocks, c.buttons = m.Blocks, m.Buttons
	}
	if c.text == "" && c.blocks == nil {
		return failed("no_text")
	}
	s.editLocked(m, "chat.update", c)
	return result{fields: map[string]any{"channel": ch.ID, "ts": m.TS, "text": m.Text, "message": s.messageJSON(*m)}}
}

func (s *Server) editLocked(m *Message, via string, c content) {
	m.Text, m.Blocks, m.Buttons = c.text, c.blocks, c.buttons
	m.Edits = append(m.Edits, Edit{Via: via, Text: c.text, Blocks: c.blocks})
	s.notifyLocked()
}

// messageLocked returns message ts of channel in place, nil if there is
// none. The pointer is only good while s.mu is held.
func (s *Server) messageLocked(channel, ts string) *Message {
	for i := range s.messages {
		if m := &s.messages[i]; m.Channel == channel && m.TS == ts {
			return m
		}
	}
	return nil
}

// nextTSLocked gives out a message timestamp: Unix seconds and six digits
// of microseconds, unique and increasing, as Slack's are.
func (s *Server) nextTSLocked() string {
	now := time.Now().Truncate(time.Microsecond)
	if !now.After(s.lastTS) {
		now = s.lastTS.Add(time.Microsecond)
	}
	s.lastTS = now
	return fmt.Sprintf("%d.%06d", now.Unix(), now.Nanosecond()/1000)
}

// messageJSON is a message as the Web API returns it.
func (s *Server) messageJSON(m Message) map[string]any {
	out := map[string]any{
		"type": "message", "text": m.Text, "ts": m.TS,
		"user": botUserID, "bot_id": botID, "app_id": s.opts.AppID, "team": s.opts.TeamID,
	}
	if m.Blocks != nil {
		out["blocks"] = m.Blocks
	}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
		out["parent_user_id"] = botUserID
	}
	return out
}

// Messages returns the messages posted so far, oldest first, each in its
// current state.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.messages))
	for i, m := range s.messages {
		out[i] = cloneMessage(m)
	}
	return out
}

// Message returns message ts of channel (an id) in its current state, and
// false if there is none.
func (s *Server) Message(channel, ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.messageLocked(channel, ts); m != nil {
		return cloneMessage(*m), true
	}
	return Message{}, false
}

// WaitForMessages waits until at least n messages were posted and returns
// them all; it fails the test if that takes longer than timeout.
func (s *Server) WaitForMessages(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		got, changed := len(s.messages), s.changed
		s.mu.Unlock()
		if got >= n {
			return s.Messages()
		}
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("fakeslack: got %d messages after %s, want %d", got, timeout, n)
			return nil
		}
	}
}

func cloneMessage(m Message) Message {
	m.Blocks = bytes.Clone(m.Blocks)
	m.Buttons = slices.Clone(m.Buttons)
	if m.Edits != nil {
		edits := make([]Edit, len(m.Edits))
		for i, e := range m.Edits {
			e.Blocks = bytes.Clone(e.Blocks)
			edits[i] = e
		}
		m.Edits = edits
	}
	return m
}
