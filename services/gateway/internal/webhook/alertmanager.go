// Package webhook receives alerts over HTTP from senders that push their
// own formats (Alertmanager for now), checks their credentials the way the
// sender can present them, and hands the alerts to ingest.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/auth"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway/internal/alertmanager"
	"github.com/vigil-ops/vigil/services/gateway/internal/ingest"
)

// Ingester stores alerts durably.
type Ingester interface {
	Ingest(ctx context.Context, alerts []*typesv1.Alert) error
}

// Alertmanager handles POST /api/v1/webhooks/alertmanager: Alertmanager's
// webhook_configs payload (version 4), authenticated by its http_config
// (authorization Bearer, or basic_auth with the key as password). It answers
// 202 only once every alert is stored on the bus.
type Alertmanager struct {
	Auth     auth.Authenticator
	Ingester Ingester
	MaxBytes int64
	Log      *slog.Logger
}

func (h *Alertmanager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, err := h.Auth.Authenticate(ctx, auth.HTTPSecret(r))
	switch {
	case errors.Is(err, auth.ErrUnauthenticated):
		h.Log.InfoContext(ctx, "webhook rejected", "source", "alertmanager", "reason", "unauthenticated", "remote", r.RemoteAddr)
		server.WriteProblem(w, http.StatusUnauthorized, "missing or invalid credentials: configure http_config.authorization (Bearer) or basic_auth with a Vigil API key (scope ingest) as password")
		return
	case err != nil:
		h.Log.WarnContext(ctx, "webhook credentials not checked", "source", "alertmanager", "error", err)
		w.Header().Set("Retry-After", "5")
		server.WriteProblem(w, http.StatusServiceUnavailable, "credentials could not be checked; Alertmanager will retry")
		return
	case !p.Has(auth.Ingest):
		h.Log.InfoContext(ctx, "webhook rejected", "source", "alertmanager", "reason", "forbidden", "principal", p.String())
		server.WriteProblem(w, http.StatusForbidden, "sending alerts needs the ingest permission (an API key with scope ingest); "+p.String()+" does not have it")
		return
	}
	msg, err := alertmanager.Parse(http.MaxBytesReader(w, r.Body, h.MaxBytes))
	var tooBig *http.MaxBytesError
	var invalid *server.BadRequestError
	switch {
	case errors.As(err, &tooBig):
		h.Log.InfoContext(ctx, "webhook rejected", "source", "alertmanager", "reason", "too large", "limit", h.MaxBytes)
		server.WriteProblem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", h.MaxBytes))
		return
	case errors.As(err, &invalid):
		h.Log.InfoContext(ctx, "webhook rejected", "source", "alertmanager", "reason", "invalid", "error", err)
		server.WriteProblem(w, http.StatusBadRequest, "invalid Alertmanager webhook payload", invalid.Violations...)
		return
	case err != nil:
		h.Log.WarnContext(ctx, "webhook read failed", "source", "alertmanager", "error", err)
		server.WriteProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	alerts := make([]*typesv1.Alert, len(msg.Alerts))
	for i, a := range msg.Alerts {
		alerts[i] = convert(msg, a)
	}
	if err := h.Ingester.Ingest(auth.WithPrincipal(ctx, p), alerts); err != nil {
		if fe, ok := errors.AsType[*ingest.ForeignError](err); ok {
			h.Log.WarnContext(ctx, "webhook rejected", "source", "alertmanager", "reason", "subject of another team",
				"principal", p.String(), "team", fe.Subject.GetTeam(), "namespace", fe.Subject.GetNamespace())
			server.WriteProblem(w, http.StatusForbidden, fe.Error())
			return
		}
		h.Log.ErrorContext(ctx, "webhook not stored", "source", "alertmanager", "alerts", len(alerts), "error", err)
		w.Header().Set("Retry-After", "5")
		server.WriteProblem(w, http.StatusServiceUnavailable, "alerts could not be stored; Alertmanager will retry")
		return
	}
	if msg.TruncatedAlerts > 0 {
		h.Log.WarnContext(ctx, "alertmanager truncated alerts", "truncated", msg.TruncatedAlerts, "hint", "raise max_alerts in webhook_configs")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = fmt.Fprintf(w, "{\"accepted\":%d,\"truncated_alerts\":%d}\n", len(alerts), msg.TruncatedAlerts)
}

func convert(msg *alertmanager.Message, a alertmanager.Alert) *typesv1.Alert {
	out := &typesv1.Alert{
		Fingerprint:  a.Fingerprint,
		Labels:       a.Labels,
		Annotations:  a.Annotations,
		StartsAt:     timestamppb.New(a.StartsAt),
		GeneratorUrl: a.GeneratorURL,
		Source:       typesv1.AlertSource_ALERT_SOURCE_ALERTMANAGER,
		Status:       typesv1.AlertStatus_ALERT_STATUS_FIRING,
		ExternalUrl:  msg.ExternalURL,
	}
	if a.Status == alertmanager.StatusResolved {
		out.Status = typesv1.AlertStatus_ALERT_STATUS_RESOLVED
	}
	if !a.EndsAt.IsZero() && a.Status == alertmanager.StatusResolved {
		out.EndsAt = timestamppb.New(a.EndsAt)
	}
	return out
}
