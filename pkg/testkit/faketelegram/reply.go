package faketelegram

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// replyTo is the message a new message answers, as reply_parameters, or
// the older reply_to_message_id and allow_sending_without_reply, ask.
type replyTo struct {
	asked bool
	// chatID is the replied message's chat as the client wrote it; empty
	// for the new message's own chat.
	chatID    string
	messageID int64
	// withoutReply: if the message is not found, send the new one as a
	// plain message instead of refusing it.
	withoutReply bool
}

// parseReplyParameters reads a call's reply arguments the way the Bot API
// server does before it sends anything: reply_parameters wins when
// present, even when it is empty (no reply); otherwise the deprecated flat
// arguments, where a reply_to_message_id of 0 asks for no reply.
func parseReplyParameters(args map[string]string) (replyTo, error) {
	raw, ok := args["reply_parameters"]
	if !ok {
		id, _ := strconv.ParseInt(strings.TrimSpace(args["reply_to_message_id"]), 10, 64)
		return replyTo{asked: id != 0, messageID: id, withoutReply: boolArg(args["allow_sending_without_reply"])}, nil
	}
	if raw == "" {
		return replyTo{}, nil
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return replyTo{}, badRequest("can't parse reply parameters JSON object")
	}
	fields, ok := v.(map[string]any)
	if !ok {
		return replyTo{}, badRequest("object expected as reply parameters")
	}
	r := replyTo{asked: true}
	var err error
	if r.messageID, err = intField(fields, "message_id"); err != nil {
		return replyTo{}, err
	}
	chat, err := stringField(fields, "chat_id", false)
	if err != nil {
		return replyTo{}, badRequest(lowerFirst(err.Error()))
	}
	r.chatID = chat
	switch w := fields["allow_sending_without_reply"].(type) {
	case nil:
	case bool:
		r.withoutReply = w
	default:
		return replyTo{}, badRequest(`field "allow_sending_without_reply" must be of type Boolean`)
	}
	return r, nil
}

// intField reads a required integer field as tdlib's JsonObject does:
// numbers and strings holding one are taken.
func intField(fields map[string]any, name string) (int64, error) {
	v, ok := fields[name]
	if !ok {
		return 0, badRequest(`can't find field "` + name + `"`)
	}
	var s string
	switch v := v.(type) {
	case json.Number:
		s = v.String()
	case string:
		s = v
	default:
		return 0, badRequest(`field "` + name + `" must be a Number`)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > math.MaxInt32 || n < math.MinInt32 {
		return 0, badRequest(`field "` + name + `" must be a valid Number`)
	}
	return n, nil
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// resolveReply finds the message r answers, in the new message's own chat
// unless r names another. It returns ok false for no reply: none was
// asked, or the replied message is not there and the client allowed
// sending without it. Called with s.mu held.
func (s *Server) resolveReply(r replyTo, own chat) (in chat, id int64, ok bool, err error) {
	if !r.asked {
		return chat{}, 0, false, nil
	}
	in = own
	if r.chatID != "" {
		c, known := s.chats[chatKey(r.chatID)]
		if !known {
			return chat{}, 0, false, badRequest("chat not found")
		}
		in = c
	}
	// Message ids are given out per chat from 1, and the fake deletes
	// nothing: a message exists if its id has been given out.
	if r.messageID > 0 && r.messageID <= s.lastID[in.ID] {
		return in, r.messageID, true, nil
	}
	if r.withoutReply {
		return chat{}, 0, false, nil
	}
	return chat{}, 0, false, badRequest("message to be replied not found")
}
