// Package chat is what Vigil's chat bots understand from people: the verb
// "link CODE", which links the chat account that sends it to the Vigil
// user who made the code (`vigil users link-code`), so that a button
// pressed in a chat can be traced to that user, their role and their
// teams (Linker); and the buttons of repair approval cards (Approvals).
// Everything else people write is data, never a command.
//
// Each chat service has a package of its own (chat/telegram, chat/slack)
// that verifies its webhooks, reads what arrived and words the answer the
// way the service wants it; what they share is here.
package chat

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
)

// Redeemer redeems link codes (access.Service).
type Redeemer interface {
	RedeemChatLinkCode(ctx context.Context, p access.ChatProvider, code, externalID string) (access.User, error)
}

// Linker links chat accounts with the codes their people send, and writes
// every attempt to the audit log.
type Linker struct {
	Redeemer Redeemer
	// Audit records an attempt (gateway.Service.Audit); nil: none.
	Audit func(context.Context, auth.AuditEntry)
	Log   *slog.Logger
}

// Link redeems code for the account externalID of provider p and returns
// the answer for its sender.
func (l *Linker) Link(ctx context.Context, p access.ChatProvider, externalID, code string) string {
	u, err := l.Redeemer.RedeemChatLinkCode(ctx, p, code, externalID)
	e := auth.AuditEntry{
		Time: time.Now(), Actor: string(p) + ":" + externalID, Method: "chat." + string(p) + "/Link",
		Target: "chat-link-code", Code: codes.OK,
	}
	var (
		answer string
		bad    *server.BadRequestError
	)
	switch {
	case err == nil:
		e.Target = "user/" + u.Name
		answer = "Linked to Vigil user " + u.Name + "."
	case errors.Is(err, access.ErrLinkCode):
		e.Code, e.Message = codes.NotFound, err.Error()
		answer = "That code is unknown or expired: run `vigil users link-code --provider " + string(p) + "` for a new one."
	case errors.As(err, &bad):
		e.Code, e.Message = codes.InvalidArgument, err.Error()
		answer = "Vigil cannot link this account: " + bad.Violations[0].Description + "."
	default:
		l.Log.ErrorContext(ctx, "chat account not linked", "provider", string(p), "external_id", externalID, "error", err)
		e.Code, e.Message = codes.Unavailable, "link failed"
		answer = "Vigil could not link your account just now; try again in a minute."
	}
	if l.Audit != nil {
		l.Audit(ctx, e)
	}
	return answer
}
