// Package emailaction answers the action links of Vigil's emails
// (pkg/actionlink): GET /api/v1/actions/{token} shows what the link does
// and a button; POST does it, once, as the user the recipient address
// belongs to, under the same checks as a chat button (chat.Approvals).
//
// GET changes nothing: mail scanners and link previews fetch links, and
// must not acknowledge an incident or approve a repair by doing so.
// There is no cookie and no session: the token is the whole credential,
// so there is no ambient authority for another site to ride (CSRF); a
// page elsewhere that posts to the URL needs the token, and with it could
// act anyway. The POST must still carry the form's confirm field (the
// token's action), so that a scanner posting an empty body does nothing;
// the page may not be framed (clickjacking) and sends no Referer (the
// token is in its URL).
package emailaction

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/vigil-ops/vigil/pkg/actionlink"
	"github.com/vigil-ops/vigil/pkg/approval"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
	"github.com/vigil-ops/vigil/services/gateway/internal/chat"
)

// Links records a link as used while it acts (postgres.Store).
type Links interface {
	UseActionLink(ctx context.Context, l actionlink.Link, now time.Time, act func(context.Context) (keep bool)) (used bool, err error)
	ActionLinkUsed(ctx context.Context, id string) (bool, error)
}

// Handler serves GET and POST /api/v1/actions/{token}.
type Handler struct {
	// Key verifies the tokens (actionlink.Key of the encryption key).
	Key       []byte
	Links     Links
	Approvals *chat.Approvals
	Log       *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// page is what the template shows.
type page struct {
	Title, Text string
	// Confirm is the action a button would do; "" for no button.
	Confirm string
}

var tmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="referrer" content="no-referrer"><title>Vigil: {{.Title}}</title></head>
<body><h1>{{.Title}}</h1><p>{{.Text}}</p>
{{if .Confirm}}<form method="post"><input type="hidden" name="confirm" value="{{.Confirm}}"><button type="submit">{{.Title}}</button></form>{{end}}
</body></html>
`))

var usedPage = page{Title: "This link was used already", Text: "Each link acts once: see the incident or repair in Vigil for what happened."}

// what words an action for the page.
func what(l actionlink.Link) (title, text string) {
	switch l.Action {
	case approval.Acknowledge:
		return "Acknowledge the incident", "Acknowledge incident " + l.Target + ": its escalation stops and it is yours."
	case approval.Escalate:
		return "Escalate the incident", "Take incident " + l.Target + "'s next escalation step now."
	case approval.Snooze:
		return "Snooze the incident", "Hold incident " + l.Target + "'s escalation for a while; acknowledging still stops it."
	case approval.Approve:
		return "Approve the repair", "Approve repair " + l.Target + ": Vigil runs it."
	case approval.Reject:
		return "Reject the repair", "Reject repair " + l.Target + ": it will not run."
	case approval.Later:
		return "Decide later", "Leave repair " + l.Target + " waiting: Vigil asks again before it expires."
	}
	return "Vigil", ""
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l, err := actionlink.Verify(h.Key, r.PathValue("token"), h.now())
	switch {
	case errors.Is(err, actionlink.ErrExpired):
		h.write(w, http.StatusGone, page{Title: "This link has expired", Text: "It worked until " + l.Expires.Format("Jan 2 15:04 UTC") + ": use the CLI or the chat instead."})
		return
	case err != nil:
		h.write(w, http.StatusNotFound, page{Title: "Not a Vigil link", Text: "This link is not one Vigil made, or it was cut short: open it from the email again."})
		return
	}
	title, text := what(l)
	if r.Method != http.MethodPost {
		// Only read: a used link says so rather than offer a button that
		// would be refused.
		if used, err := h.Links.ActionLinkUsed(r.Context(), l.ID); err == nil && used {
			h.write(w, http.StatusConflict, usedPage)
			return
		}
		h.write(w, http.StatusOK, page{Title: title, Text: text + " (for " + l.Recipient + ")", Confirm: string(l.Action)})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<10)
	if err := r.ParseForm(); err != nil || r.PostForm.Get("confirm") != string(l.Action) {
		h.write(w, http.StatusBadRequest, page{Title: title, Text: "Press the button on the page to confirm.", Confirm: string(l.Action)})
		return
	}
	var res responder
	p := chat.Press{Provider: access.Email, Account: l.Recipient}
	p.Aim(l.Action, l.Target)
	used, err := h.Links.UseActionLink(r.Context(), l, h.now(), func(ctx context.Context) bool {
		h.Approvals.Handle(ctx, p, &res)
		return !res.refused && res.failed == ""
	})
	switch {
	case err != nil:
		h.Log.ErrorContext(r.Context(), "action link not recorded", "link", l.ID, "error", err)
		h.write(w, http.StatusServiceUnavailable, page{Title: title, Text: "Vigil could not do this just now; try again in a minute."})
	case used:
		h.write(w, http.StatusConflict, usedPage)
	case res.refused:
		h.write(w, http.StatusForbidden, page{Title: title, Text: res.text})
	case res.failed != "":
		h.write(w, http.StatusServiceUnavailable, page{Title: title, Text: res.failed})
	default:
		h.write(w, http.StatusOK, page{Title: "Done", Text: res.text})
	}
}

func (h *Handler) write(w http.ResponseWriter, code int, p page) {
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if err := tmpl.Execute(w, p); err != nil {
		h.Log.Warn("action page not written", "error", err)
	}
}

// responder keeps a press's answer for the page: the page is the answer,
// written once the action is done.
type responder struct {
	text    string
	refused bool
	failed  string
}

func (r *responder) Answer(_ context.Context, text string, refused bool) error {
	r.text, r.refused = text, refused
	return nil
}

func (r *responder) FollowUp(_ context.Context, text string) error {
	r.failed = text
	return nil
}
