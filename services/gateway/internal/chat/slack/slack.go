// Package slack receives the slash command of Vigil's Slack app
// ("/vigil") and its interactions (the buttons of repair approval cards),
// verified the way Slack signs its requests: X-Slack-Signature is v0= and
// the hex HMAC-SHA256, keyed with the app's signing secret, of "v0:" +
// X-Slack-Request-Timestamp + ":" + the raw body, and the timestamp must
// be within 5 minutes of now (no replays). It understands "/vigil link
// CODE", and answers ephemerally (only the sender sees it).
//
// A Slack account is "TEAM_ID:USER_ID": member ids are qualified by their
// workspace, so that an app installed in several workspaces cannot mix up
// their people.
package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	slackapi "github.com/vigil-ops/vigil/pkg/chat/slack"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
)

// Linker links the sender's account with a code (chat.Linker).
type Linker interface {
	Link(ctx context.Context, p access.ChatProvider, externalID, code string) string
}

// Commands handles POST /api/v1/webhooks/slack/commands.
type Commands struct {
	// SigningSecret is the Slack app's signing secret.
	SigningSecret string
	Linker        Linker
	MaxBytes      int64
	Log           *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// answer is a slash command's immediate response.
type answer struct {
	ResponseType string `json:"response_type"`
	Text         string `json:"text"`
}

func (h *Commands) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, ok := readSigned(w, r, h.SigningSecret, h.Now, h.MaxBytes, h.Log)
	if !ok {
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		h.Log.InfoContext(ctx, "webhook rejected", "source", "slack", "reason", "invalid", "error", err)
		server.WriteProblem(w, http.StatusBadRequest, "not a slash command: the body is not form-encoded")
		return
	}
	if form.Get("ssl_check") == "1" {
		w.WriteHeader(http.StatusOK)
		return
	}
	command := form.Get("command")
	if command == "" {
		command = "/vigil"
	}
	text := "Usage: " + command + " link CODE, with the code `vigil users link-code --provider slack` gives you."
	if code, ok := linkCommand(form.Get("text")); ok && code != "" {
		text = h.Linker.Link(ctx, access.Slack, form.Get("team_id")+":"+form.Get("user_id"), code)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(answer{ResponseType: "ephemeral", Text: text})
}

// readSigned reads a request's body and checks Slack signed it; when
// not, it answers the request and reports false.
func readSigned(w http.ResponseWriter, r *http.Request, secret string, now func() time.Time, maxBytes int64, log *slog.Logger) ([]byte, bool) {
	ctx := r.Context()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		log.InfoContext(ctx, "webhook rejected", "source", "slack", "reason", "too large", "limit", maxBytes)
		server.WriteProblem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", maxBytes))
		return nil, false
	case err != nil:
		log.InfoContext(ctx, "webhook rejected", "source", "slack", "reason", "unreadable", "error", err)
		server.WriteProblem(w, http.StatusBadRequest, "the body could not be read")
		return nil, false
	}
	if now == nil {
		now = time.Now
	}
	if err := slackapi.Verify(secret, r.Header, body, now()); err != nil {
		log.InfoContext(ctx, "webhook rejected", "source", "slack", "reason", err.Error(), "remote", r.RemoteAddr)
		server.WriteProblem(w, http.StatusUnauthorized, "missing, wrong or stale "+slackapi.SignatureHeader+": sign with the app's signing secret (VIGIL_SLACK_SIGNING_SECRET), within 5 minutes")
		return nil, false
	}
	return body, true
}

// linkCommand reads "link CODE": ok, and the code ("" when none). Any
// other text is not a command for Vigil.
func linkCommand(text string) (code string, ok bool) {
	verb, arg, _ := strings.Cut(strings.TrimSpace(text), " ")
	if !strings.EqualFold(verb, "link") {
		return "", false
	}
	return strings.TrimSpace(arg), true
}
