package slack

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/vigil-ops/vigil/pkg/approval"
	slackapi "github.com/vigil-ops/vigil/pkg/chat/slack"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
	"github.com/vigil-ops/vigil/services/gateway/internal/chat"
)

// Approvals decides on a pressed approval button (chat.Approvals).
type Approvals interface {
	Handle(ctx context.Context, p chat.Press, r chat.Responder)
}

// Runner runs work after the request that brought it is answered
// (chat.Background); false: not now.
type Runner interface {
	Go(ctx context.Context, work func(context.Context)) bool
}

// Interactions handles POST /api/v1/webhooks/slack/interactions, the
// app's Interactivity Request URL: a button pressed on an approval card.
// Slack wants a 200 within 3 s, so the press is acknowledged at once and
// decided after (Runner); the person hears the answer through the
// payload's response_url, ephemerally.
type Interactions struct {
	// SigningSecret is the Slack app's signing secret.
	SigningSecret string
	Approvals     Approvals
	Runner        Runner
	// ResponseURLBase is where Slack's response_urls are
	// (https://hooks.slack.com/, slackapi.DefaultResponseURLBase): an interaction
	// whose response_url is elsewhere is refused, so that Vigil never
	// posts where a payload points it, even a signed one.
	ResponseURLBase string
	// HTTP posts to response_urls; each post is bounded by its context.
	HTTP     *http.Client
	MaxBytes int64
	Log      *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// interaction is the part of an interaction payload Vigil reads.
type interaction struct {
	Type string `json:"type"`
	User struct {
		ID     string `json:"id"`
		TeamID string `json:"team_id"`
	} `json:"user"`
	Team *struct {
		ID string `json:"id"`
	} `json:"team"`
	ResponseURL string `json:"response_url"`
	Actions     []struct {
		ActionID string `json:"action_id"`
		Value    string `json:"value"`
	} `json:"actions"`
}

func (h *Interactions) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, ok := readSigned(w, r, h.SigningSecret, h.Now, h.MaxBytes, h.Log)
	if !ok {
		return
	}
	form, err := url.ParseQuery(string(body))
	var in interaction
	if err == nil {
		err = json.Unmarshal([]byte(form.Get("payload")), &in)
	}
	if err != nil {
		h.Log.InfoContext(ctx, "webhook rejected", "source", "slack", "reason", "invalid", "error", err)
		server.WriteProblem(w, http.StatusBadRequest, "not a Slack interaction: want a form with payload=<JSON>")
		return
	}
	if in.Type != "block_actions" || len(in.Actions) == 0 {
		// Not for Vigil: acknowledged, so Slack shows no error.
		w.WriteHeader(http.StatusOK)
		return
	}
	if !slackapi.IsResponseURL(in.ResponseURL, h.ResponseURLBase) {
		h.Log.WarnContext(ctx, "webhook rejected", "source", "slack", "reason", "response_url is not Slack's",
			"response_url_host", hostOf(in.ResponseURL), "allowed", h.responseURLBase())
		server.WriteProblem(w, http.StatusBadRequest, "response_url is not Slack's: want one under "+h.responseURLBase())
		return
	}
	team := in.User.TeamID
	if in.Team != nil && in.Team.ID != "" {
		// The workspace it happened in, as a slash command's team_id.
		team = in.Team.ID
	}
	p := chat.Press{Provider: access.Slack, Account: team + ":" + in.User.ID}
	a := in.Actions[0]
	if v, id, err := approval.ParseSlackAction(a.ActionID, a.Value); err == nil {
		p.Aim(v, id)
	}
	resp := &responder{client: h.HTTP, url: in.ResponseURL}
	if !h.Runner.Go(ctx, func(ctx context.Context) { h.Approvals.Handle(ctx, p, resp) }) {
		h.Log.WarnContext(ctx, "slack interaction refused: too many at once, or shutting down")
		w.Header().Set("Retry-After", "5")
		server.WriteProblem(w, http.StatusServiceUnavailable, "Vigil is busy; press again")
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *Interactions) responseURLBase() string {
	if h.ResponseURLBase == "" {
		return slackapi.DefaultResponseURLBase
	}
	return h.ResponseURLBase
}

// hostOf is raw's host, for a log line (the rest of a response_url is a
// capability).
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// responder answers through an interaction's response_url: a message only
// the person who pressed sees, next to the card (not replacing it).
type responder struct {
	client *http.Client
	url    string
}

func (r *responder) Answer(ctx context.Context, text string, _ bool) error {
	return slackapi.Respond(ctx, r.client, r.url, text)
}

func (r *responder) FollowUp(ctx context.Context, text string) error {
	return slackapi.Respond(ctx, r.client, r.url, text)
}
