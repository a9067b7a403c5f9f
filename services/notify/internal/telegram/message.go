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

func (m Message) validate() error {
	if m.ChatID == "" {
		return fmt.Errorf("%w: chat id: missing", ErrInvalidMessage)
	}
	if m.Text == "" {
		return fmt.Errorf("%w: text: missing", ErrInvalidMessage)
	}
	switch m.ParseMode {
	case "", ParseModeHTML, "MarkdownV2", "Markdown":
	default:
		return fmt.Errorf("%w: parse mode %q: want %q, \"MarkdownV2\", \"Markdown\" or empty", ErrInvalidMessage, m.ParseMode, ParseModeHTML)
	}
	if m.ReplyTo < 0 {
		return fmt.Errorf("%w: reply to message %d: want a message id", ErrInvalidMessage, m.ReplyTo)
	}
	for i, row := range m.ReplyMarkup {
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
	req := sendMessageRequest{ChatID: m.ChatID, Text: m.Text, ParseMode: m.ParseMode}
	if m.DisablePreview {
		req.LinkPreviewOptions = &linkPreviewOptions{IsDisabled: true}
	}
	if m.ReplyTo != 0 {
		req.ReplyParameters = &replyParameters{MessageID: m.ReplyTo, AllowSendingWithoutReply: m.SendWithoutReply}
	}
	if m.ReplyMarkup != nil {
		rows := make([][]inlineButton, 0, len(m.ReplyMarkup))
		for _, row := range m.ReplyMarkup {
			buttons := make([]inlineButton, 0, len(row))
			for _, b := range row {
				buttons = append(buttons, inlineButton(b))
			}
			rows = append(rows, buttons)
		}
		req.ReplyMarkup = &replyMarkup{InlineKeyboard: rows}
	}
	return req
}

// sentMessage is the part of Telegram's Message object Vigil reads.
type sentMessage struct {
	MessageID int64 `json:"message_id"`
	Date      int64 `json:"date"`
	Chat      struct {
		ID int64 `json:"id"`
	} `json:"chat"`
}
