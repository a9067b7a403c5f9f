// Package source is the one way a webhook that pushes alerts in its
// sender's own format (Alertmanager, Grafana, Sentry, the sources an admin
// declares) reaches the bus. Every source is read the same way: the body
// bounded, the request verified by the sender's own mechanism (a Vigil key
// in Authorization, a signature with a shared secret), the body parsed by
// the source's Format, the alerts validated and bounded (Validate), then
// ingested; the answer is 202 once every alert is stored on the bus, or
// problem JSON. Each source counts what it accepted and refused.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway/internal/ingest"
)

// Ingester stores alerts durably.
type Ingester interface {
	Ingest(ctx context.Context, alerts []*typesv1.Alert) error
}

// Verifier authenticates a request by its sender's own mechanism.
type Verifier interface {
	// Verify says who sent r; body is r's whole raw body. An error
	// wrapping auth.ErrUnauthenticated is answered 401 (the sender's
	// configuration is wrong: its retries will not help), one wrapping
	// ErrForbidden 403 (a valid credential that may not send to this
	// source); any other error 503 (the check could not be made: a retry
	// may pass).
	Verify(ctx context.Context, r *http.Request, body []byte) (auth.Principal, error)
}

// Format reads one sender's bodies.
type Format interface {
	// Parse returns the alerts body holds. A *server.BadRequestError for
	// what no retry makes valid (answered 400 with its violations); a
	// Batch with no alerts for a request the sender makes that carries
	// none (answered 202 all the same, so the sender does not retry).
	Parse(body []byte, h http.Header) (*Batch, error)
}

// Batch is what one request carries.
type Batch struct {
	Alerts []*typesv1.Alert
	// Truncated is how many alerts the sender says it left out.
	Truncated int
	// Note is logged at info with the request when set ("installation
	// created", "comment ignored"): what the source did with a request
	// that carries no alert.
	Note string
}

// Source is one sender of alerts.
type Source struct {
	// Name labels the source in metrics and logs: "alertmanager",
	// "grafana", "sentry", "generic/<name>".
	Name     string
	Verifier Verifier
	Format   Format
	// Unauthenticated says, in a 401, how the sender should be configured.
	Unauthenticated string
}

// ErrForbidden is what a Verifier answers for a valid credential that may
// not send to its source (a key of another team): 403.
var ErrForbidden = errors.New("forbidden")

// ErrUnknown is what a Lookup answers for a source nobody declared (404).
var ErrUnknown = errors.New("no such source")

// Handler serves one source, or the sources a Lookup finds by request.
type Handler struct {
	// Source is the one source served; or else Lookup finds it.
	Source *Source
	Lookup func(r *http.Request) (*Source, error)

	Ingester Ingester
	// MaxBytes bounds a body.
	MaxBytes int64
	Metrics  *Metrics
	Log      *slog.Logger
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	src := h.Source
	if src == nil {
		var err error
		src, err = h.Lookup(r)
		switch {
		case errors.Is(err, ErrUnknown):
			h.Log.InfoContext(ctx, "webhook rejected", "source", r.PathValue("name"), "reason", "unknown source", "remote", r.RemoteAddr)
			server.WriteProblem(w, http.StatusNotFound, err.Error())
			return
		case err != nil:
			h.Log.WarnContext(ctx, "webhook source not looked up", "source", r.PathValue("name"), "error", err)
			h.unavailable(w, "the source could not be looked up; retry")
			return
		}
	}
	rq := request{h: h, src: src, w: w, r: r}
	rq.serve(ctx)
}

// request is one request to one source.
type request struct {
	h   *Handler
	src *Source
	w   http.ResponseWriter
	r   *http.Request
}

func (q *request) refuse(ctx context.Context, code int, reason, detail string, vs ...server.FieldViolation) {
	q.h.Metrics.refused(q.src.Name, reason)
	q.h.Log.InfoContext(ctx, "webhook rejected", "source", q.src.Name, "reason", reason, "detail", detail, "remote", q.r.RemoteAddr)
	server.WriteProblem(q.w, code, detail, vs...)
}

func (q *request) serve(ctx context.Context) {
	h, src, w := q.h, q.src, q.w
	body, err := io.ReadAll(http.MaxBytesReader(w, q.r.Body, h.MaxBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			q.refuse(ctx, http.StatusRequestEntityTooLarge, "too large", fmt.Sprintf("body is larger than %d bytes", h.MaxBytes))
			return
		}
		q.refuse(ctx, http.StatusBadRequest, "unreadable", "the body could not be read: "+err.Error())
		return
	}
	p, err := src.Verifier.Verify(ctx, q.r, body)
	switch {
	case errors.Is(err, auth.ErrUnauthenticated):
		detail := err.Error()
		if src.Unauthenticated != "" {
			detail += ": " + src.Unauthenticated
		}
		q.refuse(ctx, http.StatusUnauthorized, "unauthenticated", detail)
		return
	case errors.Is(err, ErrForbidden):
		q.refuse(ctx, http.StatusForbidden, "forbidden", err.Error())
		return
	case err != nil:
		h.Log.WarnContext(ctx, "webhook not verified", "source", src.Name, "error", err)
		h.unavailable(w, "the request could not be verified; retry")
		return
	case !p.Has(auth.Ingest):
		q.refuse(ctx, http.StatusForbidden, "forbidden", "sending alerts needs the ingest permission (an API key with scope ingest); "+p.String()+" does not have it")
		return
	}
	batch, err := src.Format.Parse(body, q.r.Header)
	if err == nil {
		err = Validate(batch.Alerts)
	}
	if err != nil {
		if invalid, ok := errors.AsType[*server.BadRequestError](err); ok {
			q.refuse(ctx, http.StatusBadRequest, "invalid", invalid.Error(), invalid.Violations...)
			return
		}
		q.refuse(ctx, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	if len(batch.Alerts) > 0 {
		if err := h.Ingester.Ingest(auth.WithPrincipal(ctx, p), batch.Alerts); err != nil {
			if fe, ok := errors.AsType[*ingest.ForeignError](err); ok {
				q.refuse(ctx, http.StatusForbidden, "subject of another team", fe.Error())
				return
			}
			if errors.Is(err, bus.ErrStreamFull) {
				q.h.Metrics.refused(src.Name, "stream full")
				h.Log.WarnContext(ctx, "webhook refused: the alert stream is full", "source", src.Name, "alerts", len(batch.Alerts), "error", err)
				w.Header().Set("Retry-After", strconv.Itoa(int(ingest.StreamFullRetryAfter.Seconds())))
				server.WriteProblem(w, http.StatusServiceUnavailable, "the alert stream is full (Vigil's monitor is behind, or the stream too small): retry later")
				return
			}
			h.Log.ErrorContext(ctx, "webhook not stored", "source", src.Name, "alerts", len(batch.Alerts), "error", err)
			h.unavailable(w, "alerts could not be stored; retry")
			return
		}
	}
	h.Metrics.accepted(src.Name, len(batch.Alerts))
	if batch.Note != "" {
		h.Log.InfoContext(ctx, "webhook without alerts", "source", src.Name, "note", batch.Note, "principal", p.String())
	}
	if batch.Truncated > 0 {
		h.Log.WarnContext(ctx, "sender truncated alerts", "source", src.Name, "truncated", batch.Truncated)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = fmt.Fprintf(w, "{\"accepted\":%d,\"truncated_alerts\":%d}\n", len(batch.Alerts), batch.Truncated)
}

func (h *Handler) unavailable(w http.ResponseWriter, detail string) {
	w.Header().Set("Retry-After", strconv.Itoa(5))
	server.WriteProblem(w, http.StatusServiceUnavailable, detail)
}

// Keys verifies a Vigil API key (or a user's token) presented as
// Authorization Bearer or as the password of basic auth: what
// Alertmanager's and Grafana's http configurations can send. The key's
// team is the source's (pkg/subject's ownership rules apply in ingest).
type Keys struct {
	Auth auth.Authenticator
}

// Verify implements Verifier.
func (k Keys) Verify(ctx context.Context, r *http.Request, _ []byte) (auth.Principal, error) {
	return k.Auth.Authenticate(ctx, auth.HTTPSecret(r))
}

// Principal is a source verified by its own secret: it may send alerts
// only; those of team when it belongs to one, any subject's when an admin
// configured it for no team.
func Principal(name, team string) auth.Principal {
	p := auth.Principal{Kind: auth.KindSource, Name: name}
	if team == "" {
		p.AllTeams, p.Unowned = true, true
	} else {
		p.Teams = []string{team}
	}
	return p
}
