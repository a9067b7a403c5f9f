// Package telegram receives the updates of Vigil's Telegram bot: its
// webhook (setWebhook with a secret_token), verified by the
// X-Telegram-Bot-Api-Secret-Token header Telegram sends with each update.
// It understands "/link CODE" (and "/start CODE", what a t.me/<bot>?start=CODE
// link sends) in a private chat, and answers in the webhook's response,
// which Telegram runs as a Bot API call (sendMessage).
package telegram

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
)

// SecretHeader carries the secret_token given to setWebhook.
const SecretHeader = "X-Telegram-Bot-Api-Secret-Token"

// Linker links the sender's account with a code (chat.Linker).
type Linker interface {
	Link(ctx context.Context, p access.ChatProvider, externalID, code string) string
}

// Webhook handles POST /api/v1/webhooks/telegram.
type Webhook struct {
	// Secret is the secret_token of setWebhook; every update carries it.
	Secret   string
	Linker   Linker
	MaxBytes int64
	Log      *slog.Logger
}

// Update is the part of a Bot API Update Vigil reads.
type Update struct {
	UpdateID int64    `json:"update_id"`
	Message  *Message `json:"message"`
}

// Message is the part of a Bot API Message Vigil reads.
type Message struct {
	From *struct {
		ID    int64 `json:"id"`
		IsBot bool  `json:"is_bot"`
	} `json:"from"`
	Chat struct {
		ID   int64  `json:"id"`
		Type string `json:"type"`
	} `json:"chat"`
	Text string `json:"text"`
}

// reply is a Bot API call made by answering the webhook.
type reply struct {
	Method string `json:"method"`
	ChatID int64  `json:"chat_id"`
	Text   string `json:"text"`
}

func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	got := r.Header.Get(SecretHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(h.Secret)) != 1 {
		h.Log.InfoContext(ctx, "webhook rejected", "source", "telegram", "reason", "unauthenticated", "remote", r.RemoteAddr)
		server.WriteProblem(w, http.StatusUnauthorized, "missing or wrong "+SecretHeader+": give setWebhook the secret_token of VIGIL_TELEGRAM_WEBHOOK_SECRET")
		return
	}
	var u Update
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, h.MaxBytes)).Decode(&u)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		h.Log.InfoContext(ctx, "webhook rejected", "source", "telegram", "reason", "too large", "limit", h.MaxBytes)
		server.WriteProblem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", h.MaxBytes))
		return
	case err != nil:
		h.Log.InfoContext(ctx, "webhook rejected", "source", "telegram", "reason", "invalid", "error", err)
		server.WriteProblem(w, http.StatusBadRequest, "not a Telegram update: "+err.Error())
		return
	}
	m := u.Message
	if m == nil || m.From == nil || m.From.IsBot || m.Chat.Type != "private" {
		// Not for Vigil (yet): acknowledged, so Telegram moves on.
		w.WriteHeader(http.StatusOK)
		return
	}
	code, ok := linkCommand(m.Text)
	if !ok {
		w.WriteHeader(http.StatusOK)
		return
	}
	text := "Send /link CODE here, with the code `vigil users link-code --provider telegram` gives you."
	if code != "" {
		text = h.Linker.Link(ctx, access.Telegram, strconv.FormatInt(m.From.ID, 10), code)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(reply{Method: "sendMessage", ChatID: m.Chat.ID, Text: text})
}

// linkCommand reads "/link CODE" or "/start CODE" (either may name the
// bot: "/link@VigilBot CODE"): ok, and the code, "" when there is none.
// Any other text is not a command for Vigil.
func linkCommand(text string) (code string, ok bool) {
	cmd, arg, _ := strings.Cut(strings.TrimSpace(text), " ")
	cmd, _, _ = strings.Cut(cmd, "@")
	if cmd != "/link" && cmd != "/start" {
		return "", false
	}
	return strings.TrimSpace(arg), true
}
