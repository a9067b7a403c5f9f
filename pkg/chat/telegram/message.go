package telegram

import (
	"errors"
	"fmt"
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
	ChatID             string              `json:"chat_id"`
	Text               string              `json:"text"`
	ParseMode          string              `json:"parse_mode,omitempty"`
	LinkPreviewOptions *linkPreviewOptions `json:"link_preview_options,omitempty"`
	ReplyMarkup        *replyMarkup        `json:"reply_markup,omitempty"`
	ReplyParameters    *replyParameters    `json:"reply_parameters,omitempty"`
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
	req := sendMessageRequest{ChatID: m.ChatID, Text: m.Text, ParseMode: m.ParseMode, ReplyMarkup: newReplyMarkup(m.ReplyMarkup)}
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
	ChatID             string              `json:"chat_id"`
	MessageID          int64               `json:"message_id"`
	Text               string              `json:"text"`
	ParseMode          string              `json:"parse_mode,omitempty"`
	LinkPreviewOptions *linkPreviewOptions `json:"link_preview_options,omitempty"`
	ReplyMarkup        *replyMarkup        `json:"reply_markup,omitempty"`
}

func newEditMessageTextRequest(e Edit) editMessageTextRequest {
	req := editMessageTextRequest{ChatID: e.ChatID, MessageID: e.MessageID, Text: e.Text, ParseMode: e.ParseMode, ReplyMarkup: newReplyMarkup(e.ReplyMarkup)}
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
