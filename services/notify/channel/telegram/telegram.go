// Package telegram is notify's Telegram channel: one chat, written in
// Telegram's HTML, where a thread is the chain of replies to the
// incident's message and an approval card carries its buttons as an
// inline keyboard.
package telegram

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/vigil-ops/vigil/pkg/approval"
	tgapi "github.com/vigil-ops/vigil/pkg/chat/telegram"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
)

// Name is the channel's name in the delivery log.
const Name = "telegram"

// Options configure the Telegram channel; it is off without a token.
type Options struct {
	BotToken string
	ChatID   string
	// APIURL is the Bot API's base URL (default https://api.telegram.org).
	APIURL string
}

// Validate reports options a user must fix.
func (o Options) Validate() error {
	switch {
	case o.BotToken != "" && o.ChatID == "":
		return errors.New("VIGIL_TELEGRAM_CHAT_ID: missing (VIGIL_TELEGRAM_BOT_TOKEN is set)")
	case o.BotToken == "" && o.ChatID != "":
		return errors.New("VIGIL_TELEGRAM_BOT_TOKEN: missing (VIGIL_TELEGRAM_CHAT_ID is set)")
	}
	return nil
}

// Open builds the channel; nil without a token.
func (o Options) Open(deps channel.Deps) (*channel.Endpoint, error) {
	if o.BotToken == "" {
		return nil, nil
	}
	c, err := tgapi.New(tgapi.Options{BaseURL: o.APIURL, Token: o.BotToken, HTTPClient: deps.HTTPClient, Logger: deps.Logger})
	if err != nil {
		return nil, fmt.Errorf("telegram: %w", err)
	}
	return &channel.Endpoint{Name: Name, Target: o.ChatID, Channel: &Channel{client: c, chatID: o.ChatID}}, nil
}

// Channel writes to one Telegram chat.
type Channel struct {
	client *tgapi.Client
	chatID string
}

// Send posts m, as a reply to message parent when that is set.
func (c *Channel) Send(ctx context.Context, m message.Message, parent string) (string, error) {
	text, keyboard, err := draw(m)
	if err != nil {
		return "", err
	}
	var replyTo int64
	if parent != "" {
		if replyTo, err = strconv.ParseInt(parent, 10, 64); err != nil {
			return "", fmt.Errorf("telegram: parent %q: not a message id", parent)
		}
	}
	sent, err := c.client.SendMessage(ctx, tgapi.Message{
		ChatID: c.chatID, Text: text, ParseMode: tgapi.ParseModeHTML, DisablePreview: true, ReplyMarkup: keyboard,
		// A message people deleted is no reason to keep the news from them.
		ReplyTo: replyTo, SendWithoutReply: true,
	})
	if err != nil {
		return "", judge(err)
	}
	return strconv.FormatInt(sent.MessageID, 10), nil
}

// Edit redraws message id as m; its keyboard goes when m has none.
func (c *Channel) Edit(ctx context.Context, id string, m message.Message) error {
	text, keyboard, err := draw(m)
	if err != nil {
		return err
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return fmt.Errorf("telegram: message %q: not a message id", id)
	}
	err = c.client.EditMessageText(ctx, tgapi.Edit{
		ChatID: c.chatID, MessageID: n, Text: text, ParseMode: tgapi.ParseModeHTML, DisablePreview: true, ReplyMarkup: keyboard,
	})
	if tgapi.IsNotModified(err) {
		return nil // an edit before this one did it, unrecorded
	}
	if err != nil {
		return judge(err)
	}
	return nil
}

// draw is m as Telegram shows it: HTML within Telegram's length, an
// approval card's buttons while it waits, and a message's own buttons (an
// incident's Acknowledge).
func draw(m message.Message) (string, tgapi.InlineKeyboard, error) {
	var keyboard tgapi.InlineKeyboard
	text, card, ok := m.TextAndCard(HTML)
	if ok {
		if card.Outcome == "" {
			keyboard = buttons(card)
		}
	} else if bs := m.Buttons(); len(bs) > 0 {
		keyboard = actionButtons(bs)
	}
	text, err := tgapi.TruncateHTML(text, tgapi.MaxMessageLength)
	if err != nil {
		// Our own rendering made markup Telegram would refuse: a bug no
		// retry fixes.
		return "", nil, fmt.Errorf("telegram: render message: %w", err)
	}
	return text, keyboard, nil
}

// buttons are an approval card's buttons, two by two, in its language.
func buttons(c message.Card) tgapi.InlineKeyboard {
	w := c.Words
	rows := [][]struct {
		label string
		verb  approval.Verb
	}{
		{{"✅ " + w.Approve, approval.Approve}, {"❌ " + w.Reject, approval.Reject}},
		{{"⏰ " + w.Later, approval.Later}, {"🔕 " + w.Silence, approval.Silence}},
	}
	var k tgapi.InlineKeyboard
	for _, row := range rows {
		var bs []tgapi.Button
		for _, b := range row {
			bs = append(bs, tgapi.Button{Text: b.label, CallbackData: approval.CallbackData(b.verb, c.RepairID)})
		}
		k = append(k, bs)
	}
	return k
}

// actionButtons are a message's buttons, in one row.
func actionButtons(as []message.Button) tgapi.InlineKeyboard {
	row := make([]tgapi.Button, 0, len(as))
	for _, a := range as {
		row = append(row, tgapi.Button{Text: a.Label, CallbackData: approval.CallbackData(a.Verb, a.ID)})
	}
	return tgapi.InlineKeyboard{row}
}

func judge(err error) error {
	e := &channel.Error{
		Err: err, Retry: tgapi.IsRetryable(err), RetryAfter: tgapi.RetryAfter(err), Gone: tgapi.IsMessageNotFound(err),
		Taken: errors.Is(err, tgapi.ErrUnreadableAnswer),
	}
	if apiErr, ok := errors.AsType[*tgapi.APIError](err); ok {
		e.Status = apiErr.StatusCode
	}
	return e
}

// Link is message id's t.me link. Telegram links only messages of
// supergroups and channels, by their id (-100XXXXXXXXXX: t.me/c/XXXXXXXXXX,
// for their members) or, when public, by their username (@name:
// t.me/name); a private chat or a basic group has no link. Derived from
// the chat id alone, so no call to Telegram.
func (c *Channel) Link(_ context.Context, id string) string {
	if _, err := strconv.ParseInt(id, 10, 64); err != nil {
		return ""
	}
	if name, ok := strings.CutPrefix(c.chatID, "@"); ok && name != "" {
		return "https://t.me/" + url.PathEscape(name) + "/" + id
	}
	if n, ok := strings.CutPrefix(c.chatID, "-100"); ok && n != "" {
		if _, err := strconv.ParseUint(n, 10, 64); err == nil {
			return "https://t.me/c/" + n + "/" + id
		}
	}
	return ""
}
