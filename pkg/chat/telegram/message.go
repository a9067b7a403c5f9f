package telegram

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ParseModeHTML makes Telegram read a message's text as HTML. The empty
// parse mode sends the text as it is.
const ParseModeHTML = "HTML"

// maxCallbackData is the most bytes Telegram takes in callback_data.
const maxCallbackData = 64

// ErrInvalidMessage is returned for a message Telegram would refuse, found
// before sending it. It is permanent.
var ErrInvalidMessage = errors.New("invalid message")

// Message is a text message to send.
type Message struct {
	// ChatID is a numeric chat id ("-1001234567890") or a channel username ("@vigil_alerts").
	ChatID string
	Text   string
	// ParseMode is ParseModeHTML, "MarkdownV2", "Markdown" or empty for plain text.
	ParseMode      string
	DisablePreview bool
	// ReplyMarkup, if not nil, is shown under the message.
	ReplyMarkup InlineKeyboard
	// ReplyTo, if not 0, is the message of the same chat this one answers.
	ReplyTo int64
	// SendWithoutReply sends the message as a plain one when ReplyTo is
	// not found (deleted), instead of failing with "message to be replied
	// not found".
	SendWithoutReply bool
}

// InlineKeyboard is rows of buttons attached to a message.
type InlineKeyboard [][]Button

// Button is an inline keyboard button; pressing it sends CallbackData
// (1-64 bytes) back to the bot.
type Button struct {
	Text         string
	CallbackData string
}

// Sent is what Telegram reports about a message it accepted.
type Sent struct {
	MessageID int64
	ChatID    int64
	Date      time.Time
}

// Edit is a new text, and keyboard, for a message the bot sent.
type Edit struct {
	ChatID    string
	MessageID int64
	Text      string
	// ParseMode is as for Message.
	ParseMode      string
	DisablePreview bool
	// ReplyMarkup is the message's keyboard after the edit; nil removes it.
	ReplyMarkup InlineKeyboard
}

// Call is the sendMessage call of m, for Client.Do or a webhook's answer.
// A message that can be seen to be invalid has none: the error wraps
// ErrInvalidMessage.
func (m Message) Call() (*Call, error) {
	const method = "sendMessage"
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("telegram: %s: %w", method, err)
	}
	return &Call{Method: method, Params: newSendMessageRequest(m)}, nil
}

// Call is the editMessageText call of e; see Message.Call.
func (e Edit) Call() (*Call, error) {
	const method = "editMessageText"
	if err := e.validate(); err != nil {
		return nil, fmt.Errorf("telegram: %s: %w", method, err)
	}
	return &Call{Method: method, Params: newEditMessageTextRequest(e)}, nil
}

// MaxAnswerLength is the most characters an answer to a callback query
// shows.
const MaxAnswerLength = 200

// Answer answers a callback query (a press of an inline button): Telegram
// stops the button's spinner and shows Text, as a notification at the top
// of the chat or, with ShowAlert, as an alert to dismiss.
type Answer struct {
	QueryID string
	// Text is cut to MaxAnswerLength.
	Text      string
	ShowAlert bool
}

type answerCallbackQueryRequest struct {
	CallbackQueryID string `json:"callback_query_id"`
	Text            string `json:"text,omitempty"`
	ShowAlert       bool   `json:"show_alert,omitempty"`
}

// Call is the answerCallbackQuery call of a.
func (a Answer) Call() *Call {
	text := a.Text
	if r := []rune(text); len(r) > MaxAnswerLength {
		text = string(r[:MaxAnswerLength-1]) + ellipsis
	}
	return &Call{Method: "answerCallbackQuery", Params: answerCallbackQueryRequest{CallbackQueryID: a.QueryID, Text: text, ShowAlert: a.ShowAlert}}
}

func (e Edit) validate() error {
	if e.MessageID <= 0 {
		return fmt.Errorf("%w: message id %d: want a message id", ErrInvalidMessage, e.MessageID)
	}
	return validateContent(e.ChatID, e.Text, e.ParseMode, e.ReplyMarkup)
}

func (m Message) validate() error {
	if m.ReplyTo < 0 {
		return fmt.Errorf("%w: reply to message %d: want a message id", ErrInvalidMessage, m.ReplyTo)
	}
	return validateContent(m.ChatID, m.Text, m.ParseMode, m.ReplyMarkup)
}

func validateContent(chatID, text, parseMode string, keyboard InlineKeyboard) error {
	if chatID == "" {
		return fmt.Errorf("%w: chat id: missing", ErrInvalidMessage)
	}
	if text == "" {
		return fmt.Errorf("%w: text: missing", ErrInvalidMessage)
	}
	switch parseMode {
	case "", ParseModeHTML, "MarkdownV2", "Markdown":
	default:
		return fmt.Errorf("%w: parse mode %q: want %q, \"MarkdownV2\", \"Markdown\" or empty", ErrInvalidMessage, parseMode, ParseModeHTML)
	}
	for i, row := range keyboard {
		for j, b := range row {
			if b.Text == "" {
				return fmt.Errorf("%w: button [%d][%d]: text: missing", ErrInvalidMessage, i, j)
			}
			if n := len(b.CallbackData); n < 1 || n > maxCallbackData {
				return fmt.Errorf("%w: button [%d][%d]: callback data is %d bytes, want 1-%d", ErrInvalidMessage, i, j, n, maxCallbackData)
			}
		}
	}
	return nil
}

// sendMessageRequest is the JSON body of sendMessage. Optional fields are
// left out rather than sent as null: Telegram reads a null parse_mode as
// the mode "null" and refuses it.
type sendMessageRequest struct {
	ChatID             chatID              `json:"chat_id"`
	Text               string              `json:"text"`
	ParseMode          string              `json:"parse_mode,omitempty"`
	LinkPreviewOptions *linkPreviewOptions `json:"link_preview_options,omitempty"`
	ReplyMarkup        *replyMarkup        `json:"reply_markup,omitempty"`
	ReplyParameters    *replyParameters    `json:"reply_parameters,omitempty"`
}

// chatID is a chat_id: a chat's number, sent as a JSON number (which is
// what Telegram sends in updates, and what a webhook's answer is read
// against), or a channel's @username, sent as a string.
type chatID string

func (id chatID) MarshalJSON() ([]byte, error) {
	if n, err := strconv.ParseInt(string(id), 10, 64); err == nil && strconv.FormatInt(n, 10) == string(id) {
		return []byte(string(id)), nil
	}
	return json.Marshal(string(id))
}

type replyParameters struct {
	MessageID                int64 `json:"message_id"`
	AllowSendingWithoutReply bool  `json:"allow_sending_without_reply,omitempty"`
}

type linkPreviewOptions struct {
	IsDisabled bool `json:"is_disabled"`
}

type replyMarkup struct {
	InlineKeyboard [][]inlineButton `json:"inline_keyboard"`
}

type inlineButton struct {
	Text         string `json:"text"`
	CallbackData string `json:"callback_data"`
}

func newSendMessageRequest(m Message) sendMessageRequest {
	req := sendMessageRequest{ChatID: chatID(m.ChatID), Text: m.Text, ParseMode: m.ParseMode, ReplyMarkup: newReplyMarkup(m.ReplyMarkup)}
	if m.DisablePreview {
		req.LinkPreviewOptions = &linkPreviewOptions{IsDisabled: true}
	}
	if m.ReplyTo != 0 {
		req.ReplyParameters = &replyParameters{MessageID: m.ReplyTo, AllowSendingWithoutReply: m.SendWithoutReply}
	}
	return req
}

// editMessageTextRequest is the JSON body of editMessageText; without
// reply_markup, Telegram removes the message's keyboard.
type editMessageTextRequest struct {
	ChatID             chatID              `json:"chat_id"`
	MessageID          int64               `json:"message_id"`
	Text               string              `json:"text"`
	ParseMode          string              `json:"parse_mode,omitempty"`
	LinkPreviewOptions *linkPreviewOptions `json:"link_preview_options,omitempty"`
	ReplyMarkup        *replyMarkup        `json:"reply_markup,omitempty"`
}

func newEditMessageTextRequest(e Edit) editMessageTextRequest {
	req := editMessageTextRequest{ChatID: chatID(e.ChatID), MessageID: e.MessageID, Text: e.Text, ParseMode: e.ParseMode, ReplyMarkup: newReplyMarkup(e.ReplyMarkup)}
	if e.DisablePreview {
		req.LinkPreviewOptions = &linkPreviewOptions{IsDisabled: true}
	}
	return req
}

func newReplyMarkup(k InlineKeyboard) *replyMarkup {
	if k == nil {
		return nil
	}
	rows := make([][]inlineButton, 0, len(k))
	for _, row := range k {
		buttons := make([]inlineButton, 0, len(row))
		for _, b := range row {
			buttons = append(buttons, inlineButton(b))
		}
		rows = append(rows, buttons)
	}
	return &replyMarkup{InlineKeyboard: rows}
}

// sentMessage is the part of Telegram's Message object Vigil reads.
type sentMessage struct {
	MessageID int64 `json:"message_id"`
	Date      int64 `json:"date"`
	Chat      struct {
		ID int64 `json:"id"`
	} `json:"chat"`
}
