package notify

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/vigil-ops/vigil/pkg/approval"
	"github.com/vigil-ops/vigil/pkg/chat/telegram"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
)

// telegramChat writes to one Telegram chat in Telegram's HTML; a thread
// is the chain of replies to the incident's message.
type telegramChat struct {
	client *telegram.Client
	chatID string
}

func (*telegramChat) name() string           { return "telegram" }
func (t *telegramChat) target() string       { return t.chatID }
func (*telegramChat) markup() message.Markup { return message.HTML(telegram.EscapeHTML) }

// telegramButtons are the card's buttons, two by two.
var telegramButtons = [][]struct {
	label string
	verb  approval.Verb
}{
	{{"✅ Approve", approval.Approve}, {"❌ Reject", approval.Reject}},
	{{"⏰ Later", approval.Later}, {"🔕 Silence", approval.Silence}},
}

func (t *telegramChat) card(c message.Card, repairID string) content {
	ct := content{text: c.Text(t.markup())}
	if c.Outcome != "" {
		return ct // decided: no buttons
	}
	for _, row := range telegramButtons {
		var buttons []telegram.Button
		for _, b := range row {
			buttons = append(buttons, telegram.Button{Text: b.label, CallbackData: approval.CallbackData(b.verb, repairID)})
		}
		ct.keyboard = append(ct.keyboard, buttons)
	}
	return ct
}

// errRender is our own rendering producing markup Telegram would refuse:
// a bug no retry fixes.
var errRender = errors.New("render message")

func (t *telegramChat) post(ctx context.Context, thread string, c content) (string, error) {
	text, err := telegram.TruncateHTML(c.text, telegram.MaxMessageLength)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errRender, err)
	}
	var replyTo int64
	if thread != "" {
		if replyTo, err = strconv.ParseInt(thread, 10, 64); err != nil {
			return "", fmt.Errorf("telegram: thread %q: not a message id", thread)
		}
	}
	sent, err := t.client.SendMessage(ctx, telegram.Message{
		ChatID: t.chatID, Text: text, ParseMode: telegram.ParseModeHTML, DisablePreview: true, ReplyMarkup: c.keyboard,
		// A message people deleted is no reason to keep the news from them.
		ReplyTo: replyTo, SendWithoutReply: true,
	})
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(sent.MessageID, 10), nil
}

func (t *telegramChat) edit(ctx context.Context, id string, c content) error {
	text, err := telegram.TruncateHTML(c.text, telegram.MaxMessageLength)
	if err != nil {
		return fmt.Errorf("%w: %w", errRender, err)
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return fmt.Errorf("telegram: message %q: not a message id", id)
	}
	return t.client.EditMessageText(ctx, telegram.Edit{
		ChatID: t.chatID, MessageID: n, Text: text, ParseMode: telegram.ParseModeHTML, DisablePreview: true, ReplyMarkup: c.keyboard,
	})
}

func (*telegramChat) judge(err error) verdict {
	if err == nil {
		return verdict{}
	}
	v := verdict{
		retry: telegram.IsRetryable(err), retryAfter: telegram.RetryAfter(err),
		notModified: telegram.IsNotModified(err), gone: telegram.IsMessageNotFound(err),
	}
	if apiErr, ok := errors.AsType[*telegram.APIError](err); ok {
		v.status = apiErr.StatusCode
	}
	return v
}
