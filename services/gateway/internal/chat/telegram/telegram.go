// Package telegram receives the updates of Vigil's Telegram bot, by
// webhook (setWebhook with a secret_token, verified by the
// X-Telegram-Bot-Api-Secret-Token header Telegram sends with each update)
// or by long polling getUpdates (Poller), and handles both the same way
// (Bot). It understands "/link CODE" (and "/start CODE", what a
// t.me/<bot>?start=CODE link sends) in a private chat, and the buttons of
// repair approval cards (callback queries).
package telegram

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	botapi "github.com/vigil-ops/vigil/pkg/chat/telegram"
	"github.com/vigil-ops/vigil/pkg/server"
)

// Webhook handles POST /api/v1/webhooks/telegram.
type Webhook struct {
	// Secret is the secret_token of setWebhook; every update carries it.
	Secret   string
	Bot      *Bot
	MaxBytes int64
	Log      *slog.Logger
}

func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !botapi.VerifySecret(r.Header, h.Secret) {
		h.Log.InfoContext(ctx, "webhook rejected", "source", "telegram", "reason", "unauthenticated", "remote", r.RemoteAddr)
		server.WriteProblem(w, http.StatusUnauthorized, "missing or wrong "+botapi.SecretHeader+": give setWebhook the secret_token of VIGIL_TELEGRAM_WEBHOOK_SECRET")
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
	call, err := h.Bot.Handle(ctx, u)
	switch {
	case errors.Is(err, ErrUpdateID):
		h.Log.InfoContext(ctx, "webhook rejected", "source", "telegram", "reason", "invalid", "error", err)
		server.WriteProblem(w, http.StatusBadRequest, "not a Telegram update: no update_id")
		return
	case err != nil:
		// Not handled: Telegram brings it again.
		h.Log.ErrorContext(ctx, "telegram update not handled", "update_id", u.UpdateID, "error", err)
		w.Header().Set("Retry-After", "5")
		server.WriteProblem(w, http.StatusServiceUnavailable, "the update could not be recorded; send it again")
		return
	}
	if call == nil {
		// Nothing to answer: acknowledged, so Telegram moves on.
		w.WriteHeader(http.StatusOK)
		return
	}
	// Telegram makes the call the answer holds.
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(call)
}
