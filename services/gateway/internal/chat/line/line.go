// Package line receives the webhook of Vigil's LINE channel (POST
// /api/v1/webhooks/line), verified by X-Line-Signature (the channel
// secret's HMAC-SHA256 of the raw body) before anything in it is read.
// It understands "/link CODE" sent in a 1:1 chat with the bot, and the
// postback buttons of Vigil's messages (approval cards, Acknowledge on
// an incident), pressed as the LINE account that pressed them; it answers
// each through the event's reply token, once.
//
// LINE sends an event again when it did not see the webhook answered
// (deliveryContext.isRedelivery, the same webhookEventId): each event id
// is recorded before it is handled, so a redelivery is dropped, on
// whichever replica it lands.
package line

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/vigil-ops/vigil/pkg/approval"
	lineapi "github.com/vigil-ops/vigil/pkg/chat/line"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
	"github.com/vigil-ops/vigil/services/gateway/internal/chat"
)

// Linker links the sender's account with a code (chat.Linker).
type Linker interface {
	Link(ctx context.Context, p access.ChatProvider, externalID, code string) string
}

// Approvals decides on a pressed button (chat.Approvals).
type Approvals interface {
	Handle(ctx context.Context, p chat.Press, r chat.Responder)
}

// Events records the events handled (postgres.Store).
type Events interface {
	FirstLineEvent(ctx context.Context, id string, now time.Time) (bool, error)
}

// API answers and pushes (lineapi.Client).
type API interface {
	Reply(ctx context.Context, replyToken string, messages ...lineapi.Message) error
	Push(ctx context.Context, p lineapi.Push) (lineapi.Sent, error)
}

// Webhook handles POST /api/v1/webhooks/line.
type Webhook struct {
	// Secret is the channel secret (LINE Developers Console, Basic
	// settings): every request is signed with it.
	Secret    string
	API       API
	Events    Events
	Linker    Linker
	Approvals Approvals
	MaxBytes  int64
	Log       *slog.Logger
}

// body is a webhook request's body.
type body struct {
	Events []Event `json:"events"`
}

// Event is the part of a webhook event Vigil reads.
type Event struct {
	Type           string `json:"type"`
	Mode           string `json:"mode"`
	WebhookEventID string `json:"webhookEventId"`
	ReplyToken     string `json:"replyToken"`
	Source         Source `json:"source"`
	Message        *struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"message"`
	Postback *struct {
		Data string `json:"data"`
	} `json:"postback"`
}

// Source is where an event happened and who made it.
type Source struct {
	// Type is "user" (a 1:1 chat), "group" or "room".
	Type    string `json:"type"`
	UserID  string `json:"userId"`
	GroupID string `json:"groupId"`
	RoomID  string `json:"roomId"`
}

// chatID is the chat the event happened in, to push to.
func (s Source) chatID() string {
	switch s.Type {
	case "group":
		return s.GroupID
	case "room":
		return s.RoomID
	}
	return s.UserID
}

// pressTimeout bounds a press: the checks, the answer, the action. It
// does not end with the request, so that LINE giving up on the answer
// does not leave a press half done.
const pressTimeout = 20 * time.Second

func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.MaxBytes))
	if tooBig, ok := errors.AsType[*http.MaxBytesError](err); ok {
		h.Log.InfoContext(ctx, "webhook rejected", "source", "line", "reason", "too large", "limit", tooBig.Limit)
		server.WriteProblem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", h.MaxBytes))
		return
	}
	if err != nil {
		server.WriteProblem(w, http.StatusBadRequest, "the body could not be read")
		return
	}
	// Nothing of the body is read before it is known to be LINE's.
	if err := lineapi.Verify(h.Secret, r.Header.Get(lineapi.SignatureHeader), raw); err != nil {
		h.Log.InfoContext(ctx, "webhook rejected", "source", "line", "reason", err.Error(), "remote", r.RemoteAddr)
		server.WriteProblem(w, http.StatusUnauthorized, "missing or wrong "+lineapi.SignatureHeader+": the channel secret of VIGIL_LINE_CHANNEL_SECRET signs LINE's requests")
		return
	}
	var b body
	if err := json.Unmarshal(raw, &b); err != nil {
		h.Log.InfoContext(ctx, "webhook rejected", "source", "line", "reason", "invalid", "error", err)
		server.WriteProblem(w, http.StatusBadRequest, "not a LINE webhook: "+err.Error())
		return
	}
	for _, e := range b.Events {
		if err := h.handle(ctx, e); err != nil {
			// Not handled (nor recorded): LINE brings it again, with the
			// events after it, which were not handled either.
			h.Log.ErrorContext(ctx, "line event not handled", "webhook_event_id", e.WebhookEventID, "error", err)
			w.Header().Set("Retry-After", "5")
			server.WriteProblem(w, http.StatusServiceUnavailable, "the event could not be recorded; send it again")
			return
		}
	}
	// LINE's "Verify" in the console sends no events: a 200 tells it the
	// URL works.
	w.WriteHeader(http.StatusOK)
}

// handle handles one event once; an error means it could not be recorded
// and was not handled.
func (h *Webhook) handle(ctx context.Context, e Event) error {
	if e.Mode == "standby" || e.WebhookEventID == "" {
		// Standby: another module of the channel answers this chat.
		return nil
	}
	first, err := h.Events.FirstLineEvent(ctx, e.WebhookEventID, time.Now())
	if err != nil {
		return fmt.Errorf("record line event %s: %w", e.WebhookEventID, err)
	}
	if !first {
		h.Log.InfoContext(ctx, "line event dropped: handled already", "webhook_event_id", e.WebhookEventID)
		return nil
	}
	switch {
	case e.Type == "message" && e.Message != nil && e.Message.Type == "text":
		h.message(ctx, e)
	case e.Type == "postback" && e.Postback != nil:
		h.press(ctx, e)
	}
	return nil
}

func (h *Webhook) message(ctx context.Context, e Event) {
	if e.Source.Type != "user" || e.Source.UserID == "" {
		// A code sent in a group is seen by all its members: not taken.
		return
	}
	code, ok := chat.LinkCommand(e.Message.Text)
	if !ok {
		return
	}
	text := "Send /link CODE here, with the code `vigil users link-code --provider line` gives you."
	if code != "" {
		text = h.Linker.Link(ctx, access.Line, e.Source.UserID, code)
	}
	if err := h.API.Reply(ctx, e.ReplyToken, lineapi.NewText(text)); err != nil {
		h.Log.WarnContext(ctx, "line reply not sent", "webhook_event_id", e.WebhookEventID, "error", err)
	}
}

func (h *Webhook) press(ctx context.Context, e Event) {
	resp := &responder{api: h.API, token: e.ReplyToken, chat: e.Source.chatID()}
	if e.Source.UserID == "" {
		// LINE names no presser (a group member who never consented):
		// nobody to act as.
		if err := resp.Answer(ctx, "Vigil cannot tell who pressed: press it in a 1:1 chat with the bot.", true); err != nil {
			h.Log.WarnContext(ctx, "line reply not sent", "webhook_event_id", e.WebhookEventID, "error", err)
		}
		return
	}
	p := chat.Press{Provider: access.Line, Account: e.Source.UserID}
	if v, id, err := approval.ParseCallbackData(e.Postback.Data); err == nil {
		p.Aim(v, id)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pressTimeout)
	defer cancel()
	h.Approvals.Handle(ctx, p, resp)
}

// responder answers a postback with its reply token (once, within a
// minute: a failed reply is a press not acted on), and follows up by a
// push to the chat it came from.
type responder struct {
	api   API
	token string
	chat  string
}

func (r *responder) Answer(ctx context.Context, text string, _ bool) error {
	return r.api.Reply(ctx, r.token, lineapi.NewText(text))
}

func (r *responder) FollowUp(ctx context.Context, text string) error {
	_, err := r.api.Push(ctx, lineapi.Push{To: r.chat, Messages: []lineapi.Message{lineapi.NewText(text)}})
	return err
}
