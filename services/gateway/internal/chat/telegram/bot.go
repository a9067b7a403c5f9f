package telegram

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/vigil-ops/vigil/pkg/approval"
	botapi "github.com/vigil-ops/vigil/pkg/chat/telegram"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
	"github.com/vigil-ops/vigil/services/gateway/internal/chat"
)

// Linker links the sender's account with a code (chat.Linker).
type Linker interface {
	Link(ctx context.Context, p access.ChatProvider, externalID, code string) string
}

// Approvals decides on a pressed approval button (chat.Approvals).
type Approvals interface {
	Handle(ctx context.Context, p chat.Press, r chat.Responder)
}

// Updates records the updates handled (postgres.Store).
type Updates interface {
	FirstTelegramUpdate(ctx context.Context, bot string, id int64, now time.Time) (bool, error)
}

// Bot handles the updates of Vigil's bot, wherever they come from, each
// once.
type Bot struct {
	// ID is the bot's id (the token's digits; "" without a token): update
	// ids count per bot.
	ID string
	// Updates drops an update that was handled already: Telegram sends
	// one again when it did not see it acknowledged, to whichever
	// replica, by webhook or to getUpdates. It is the database, not the
	// process, so that a replica's restart or a switch between webhook
	// and polling does not forget.
	Updates   Updates
	Linker    Linker
	Approvals Approvals
	// API calls the Bot API; nil without a bot token, when a button
	// cannot be answered before Vigil acts and so is refused.
	API *botapi.Client
	Log *slog.Logger
}

// Update is the part of a Bot API Update Vigil reads.
type Update struct {
	UpdateID      int64          `json:"update_id"`
	Message       *Message       `json:"message"`
	CallbackQuery *CallbackQuery `json:"callback_query"`
}

// Message is the part of a Bot API Message Vigil reads.
type Message struct {
	MessageID int64 `json:"message_id"`
	From      *User `json:"from"`
	Chat      struct {
		ID   int64  `json:"id"`
		Type string `json:"type"`
	} `json:"chat"`
	Text string `json:"text"`
}

// User is the part of a Bot API User Vigil reads.
type User struct {
	ID    int64 `json:"id"`
	IsBot bool  `json:"is_bot"`
}

// CallbackQuery is a press of an inline button.
type CallbackQuery struct {
	ID   string `json:"id"`
	From User   `json:"from"`
	// Message is the message with the button; nil when it is too old
	// for Telegram to send.
	Message *Message `json:"message"`
	Data    string   `json:"data"`
}

// pressTimeout bounds the work a press is: the checks, the answer, the
// event. It does not end with the request or the poll that brought it,
// so a shutdown finishes the press in hand.
const pressTimeout = 20 * time.Second

// ErrUpdateID is an update without a positive update_id.
var ErrUpdateID = errors.New("no update_id")

// Handle handles an update and returns the Bot API call that answers it,
// nil for none: the webhook puts it in its response, the poller makes it.
// An update seen before is not handled again (nil). An error means the
// update could not be recorded, and was not handled: Telegram should
// bring it again.
func (b *Bot) Handle(ctx context.Context, u Update) (*botapi.Call, error) {
	if u.UpdateID <= 0 {
		return nil, ErrUpdateID
	}
	first, err := b.Updates.FirstTelegramUpdate(ctx, b.ID, u.UpdateID, time.Now())
	if err != nil {
		return nil, fmt.Errorf("record telegram update %d: %w", u.UpdateID, err)
	}
	if !first {
		b.Log.InfoContext(ctx, "telegram update dropped: handled already", "update_id", u.UpdateID)
		return nil, nil
	}
	return b.handle(ctx, u), nil
}

func (b *Bot) handle(ctx context.Context, u Update) *botapi.Call {
	switch {
	case u.CallbackQuery != nil:
		return b.press(ctx, u.CallbackQuery)
	case u.Message != nil:
		return b.message(ctx, u.Message)
	}
	// Not for Vigil: acknowledged, so Telegram moves on.
	return nil
}

// updateTypes are the updates Vigil's bot asks for.
var updateTypes = []string{"message", "callback_query"}

// SetWebhook has Telegram post the bot's updates to url, each with secret
// in botapi.SecretHeader.
func (b *Bot) SetWebhook(ctx context.Context, url, secret string) error {
	return b.API.SetWebhook(ctx, url, secret, updateTypes)
}

func (b *Bot) message(ctx context.Context, m *Message) *botapi.Call {
	if m.From == nil || m.From.IsBot || m.Chat.Type != "private" {
		return nil
	}
	code, ok := chat.LinkCommand(m.Text)
	if !ok {
		return nil
	}
	text := "Send /link CODE here, with the code `vigil users link-code --provider telegram` gives you."
	if code != "" {
		text = b.Linker.Link(ctx, access.Telegram, strconv.FormatInt(m.From.ID, 10), code)
	}
	call, err := botapi.Message{ChatID: strconv.FormatInt(m.Chat.ID, 10), Text: text}.Call()
	if err != nil {
		b.Log.ErrorContext(ctx, "telegram reply not made", "update", "message", "error", err)
		return nil
	}
	return call
}

func (b *Bot) press(ctx context.Context, q *CallbackQuery) *botapi.Call {
	if q.From.IsBot || q.From.ID <= 0 {
		return nil
	}
	if b.API == nil || b.Approvals == nil {
		// Without a token there is no answering before acting: refuse.
		b.Log.WarnContext(ctx, "approval button refused: the gateway has no Telegram bot token (VIGIL_TELEGRAM_BOT_TOKEN)")
		return botapi.Answer{
			QueryID: q.ID, ShowAlert: true,
			Text: "Vigil cannot take answers in Telegram yet: ask your Vigil admin to give the gateway the bot's token.",
		}.Call()
	}
	p := chat.Press{Provider: access.Telegram, Account: strconv.FormatInt(q.From.ID, 10)}
	if v, id, err := approval.ParseCallbackData(q.Data); err == nil {
		p.Aim(v, id)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pressTimeout)
	defer cancel()
	b.Approvals.Handle(ctx, p, &responder{api: b.API, query: q})
	return nil
}

// responder answers a callback query, and follows up in its chat.
type responder struct {
	api   *botapi.Client
	query *CallbackQuery
}

func (r *responder) Answer(ctx context.Context, text string, refused bool) error {
	return r.api.AnswerCallbackQuery(ctx, botapi.Answer{QueryID: r.query.ID, Text: text, ShowAlert: refused})
}

func (r *responder) FollowUp(ctx context.Context, text string) error {
	m := r.query.Message
	if m == nil {
		return errors.New("the pressed message is not known")
	}
	_, err := r.api.SendMessage(ctx, botapi.Message{
		ChatID: strconv.FormatInt(m.Chat.ID, 10), Text: text, ReplyTo: m.MessageID, SendWithoutReply: true,
	})
	return err
}
