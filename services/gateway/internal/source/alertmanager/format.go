package alertmanager

import (
	"net/http"

	"google.golang.org/protobuf/types/known/timestamppb"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/gateway/internal/source"
)

// Format is Alertmanager's webhook as a source.Format.
type Format struct{}

// Parse implements source.Format.
func (Format) Parse(body []byte, _ http.Header) (*source.Batch, error) {
	msg, err := ParseBytes(body)
	if err != nil {
		return nil, err
	}
	alerts := make([]*typesv1.Alert, len(msg.Alerts))
	for i, a := range msg.Alerts {
		alerts[i] = convert(msg, a)
	}
	return &source.Batch{Alerts: alerts, Truncated: int(min(msg.TruncatedAlerts, uint64(source.MaxAlerts)))}, nil
}

func convert(msg *Message, a Alert) *typesv1.Alert {
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
	if a.Status == StatusResolved {
		out.Status = typesv1.AlertStatus_ALERT_STATUS_RESOLVED
	}
	if !a.EndsAt.IsZero() && a.Status == StatusResolved {
		out.EndsAt = timestamppb.New(a.EndsAt)
	}
	return out
}

// Source is Alertmanager's webhook, verified by a Vigil key in its
// http_config.
func Source(keys source.Keys) *source.Source {
	return &source.Source{
		Name: "alertmanager", Verifier: keys, Format: Format{},
		Unauthenticated: "configure http_config.authorization (Bearer) or basic_auth with a Vigil API key (scope ingest) as password",
	}
}
