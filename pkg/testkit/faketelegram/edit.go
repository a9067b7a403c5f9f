package faketelegram

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Edit is one accepted edit of a message: the method that made it and the
// message as it left it.
type Edit struct {
	// Method is "editMessageText" or "editMessageReplyMarkup".
	Method         string
	Text           string
	PlainText      string
	ParseMode      string
	DisablePreview bool
	ReplyMarkup    [][]Button
}

// notModified is Telegram's MESSAGE_NOT_MODIFIED as the Bot API words it.
const notModified = "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"

// editMessageText replaces a message's text and keyboard. As with
// Telegram, a call without reply_markup removes the keyboard. Checks come
// in the Bot API's order: text, reply markup, then the message.
func (s *Server) editMessageText(r *http.Request) reply {
	args, err := requestArgs(r)
	if err != nil {
		return fail(err)
	}
	if err := checkUTF8(args); err != nil {
		return fail(err)
	}
	text, parseMode := args["text"], args["parse_mode"]
	plain, entities, err := parseText(text, parseMode)
	if err != nil {
		return fail(err)
	}
	keyboard, err := parseReplyMarkup(args["reply_markup"])
	if err != nil {
		return fail(err)
	}
	disablePreview, err := previewDisabled(args)
	if err != nil {
		return fail(err)
	}
	c, id, err := s.editTarget(args)
	if err != nil {
		return fail(err)
	}
	if plain, err = finishText(plain, entities); err != nil {
		return fail(err)
	}
	if err := checkInlineKeyboard(keyboard); err != nil {
		return fail(err)
	}
	return s.applyEdit(c, id, Edit{
		Method: "editMessageText", Text: text, PlainText: plain, ParseMode: parseMode,
		DisablePreview: disablePreview, ReplyMarkup: keyboard,
	})
}

// editMessageReplyMarkup replaces a message's keyboard; an absent or empty
// reply_markup removes it.
func (s *Server) editMessageReplyMarkup(r *http.Request) reply {
	args, err := requestArgs(r)
	if err != nil {
		return fail(err)
	}
	if err := checkUTF8(args); err != nil {
		return fail(err)
	}
	keyboard, err := parseReplyMarkup(args["reply_markup"])
	if err != nil {
		return fail(err)
	}
	c, id, err := s.editTarget(args)
	if err != nil {
		return fail(err)
	}
	if err := checkInlineKeyboard(keyboard); err != nil {
		return fail(err)
	}
	return s.applyEdit(c, id, Edit{Method: "editMessageReplyMarkup", ReplyMarkup: keyboard})
}

// editTarget resolves chat_id and message_id. Without both, the Bot API
// looks for inline_message_id; the fake sends no inline messages, so any
// given is unknown.
func (s *Server) editTarget(args map[string]string) (chat, int64, error) {
	chatID := args["chat_id"]
	id, _ := strconv.ParseInt(strings.TrimSpace(args["message_id"]), 10, 32)
	if chatID == "" && id == 0 {
		if args["inline_message_id"] == "" {
			return chat{}, 0, badRequest("message identifier is not specified")
		}
		return chat{}, 0, badRequest("invalid inline message identifier specified")
	}
	if chatID == "" {
		return chat{}, 0, badRequest("chat_id is empty")
	}
	c, ok := s.chats[chatKey(chatID)]
	if !ok {
		return chat{}, 0, badRequest("chat not found")
	}
	if id <= 0 {
		return chat{}, 0, badRequest("message to edit not found")
	}
	return c, id, nil
}

// applyEdit records e on message id of chat c. An editMessageReplyMarkup
// edit carries only the keyboard; the text stays.
func (s *Server) applyEdit(c chat, id int64, e Edit) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.messageLocked(c, id)
	if m == nil {
		return fail(badRequest("message to edit not found"))
	}
	if len(e.ReplyMarkup) == 0 {
		e.ReplyMarkup = nil // an empty keyboard is none
	}
	if e.Method == "editMessageReplyMarkup" {
		e.Text, e.PlainText, e.ParseMode, e.DisablePreview = m.Text, m.PlainText, m.ParseMode, m.DisablePreview
	}
	if contentKey(m.Text, m.ParseMode) == contentKey(e.Text, e.ParseMode) && sameKeyboard(m.ReplyMarkup, e.ReplyMarkup) {
		return fail(badRequest(notModified))
	}
	m.Text, m.PlainText, m.ParseMode, m.DisablePreview = e.Text, e.PlainText, e.ParseMode, e.DisablePreview
	m.ReplyMarkup = cloneKeyboard(e.ReplyMarkup)
	m.Edits = append(m.Edits, e)
	s.editDates[msgKey{c.ID, id}] = time.Now().Unix()
	s.notifyLocked()
	return reply{status: http.StatusOK, result: s.messageResult(*m, c)}
}

// contentKey is what Telegram compares to decide whether an edit changes
// anything: the text recipients see and its formatting, not the markup
// that produced it (<b> and <strong> are the same bold).
func contentKey(text, parseMode string) string {
	plain, entities, err := parseText(text, parseMode)
	if err != nil {
		return text // not reached: stored texts were parsed when accepted
	}
	if plain, err = finishText(plain, entities); err != nil {
		return text
	}
	var b strings.Builder
	b.WriteString(plain)
	for _, e := range entities {
		fmt.Fprintf(&b, "\x00%s:%s:%d:%d", canonicalTag(e.tag), e.arg, e.offset, e.length)
	}
	return b.String()
}

// canonicalTag maps HTML synonyms to the entity type they produce.
func canonicalTag(tag string) string {
	switch tag {
	case "strong":
		return "b"
	case "em":
		return "i"
	case "ins":
		return "u"
	case "strike", "del":
		return "s"
	case "span":
		return "tg-spoiler"
	}
	return tag
}

func sameKeyboard(a, b [][]Button) bool {
	return slices.EqualFunc(a, b, func(x, y []Button) bool { return slices.Equal(x, y) })
}
