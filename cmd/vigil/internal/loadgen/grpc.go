package loadgen

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// ingestRequest is req as a gRPC publisher sends it: the gateway computes
// the fingerprints.
func (s *spec) ingestRequest(req request, now time.Time) *gatewayv1.IngestAlertsRequest {
	startsAt, endsAt := timestamppb.New(s.startsAt), timestamppb.New(now)
	out := &gatewayv1.IngestAlertsRequest{Alerts: make([]*typesv1.Alert, len(req.alerts))}
	for i, a := range req.alerts {
		alert := &typesv1.Alert{
			Labels:       s.labels(req.group, a.n),
			Annotations:  map[string]string{"summary": summary},
			StartsAt:     startsAt,
			GeneratorUrl: generatorURL,
			Status:       typesv1.AlertStatus_ALERT_STATUS_FIRING,
		}
		if a.kind == resolve {
			alert.Status, alert.EndsAt = typesv1.AlertStatus_ALERT_STATUS_RESOLVED, endsAt
		}
		out.Alerts[i] = alert
	}
	return out
}

// grpcSender calls gatewayv1.AlertService/IngestAlerts.
type grpcSender struct {
	spec   *spec
	client gatewayv1.AlertServiceClient
}

func (g *grpcSender) send(ctx context.Context, req request) outcome {
	_, err := g.client.IngestAlerts(ctx, g.spec.ingestRequest(req, time.Now()))
	if err == nil {
		return outcome{accepted: true}
	}
	st := status.Convert(err)
	switch st.Code() {
	case codes.DeadlineExceeded:
		return outcome{status: "timeout", detail: st.Message()}
	case codes.Canceled:
		return outcome{status: "cancelled", detail: st.Message()}
	}
	return outcome{status: "gRPC " + st.Code().String(), detail: st.Message()}
}

func (*grpcSender) close() {}

// bearer sends the token on every call. Plaintext is allowed: the gateway
// listens on loopback by default.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }
