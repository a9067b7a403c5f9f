// Package grpcapi is the gateway's own gRPC port (AlertService) and the
// forwarders that serve other services' APIs through the gateway when they
// run in other processes.
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/prometheus/common/model"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ops/vigil/pkg/alertlabel"
	"github.com/vigil-ops/vigil/pkg/bus"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway/internal/ingest"
)

// maxAlerts per IngestAlerts call.
const maxAlerts = 1000

// Ingester stores alerts durably.
type Ingester interface {
	Ingest(ctx context.Context, alerts []*typesv1.Alert) error
}

// AlertServer implements gatewayv1.AlertServiceServer.
type AlertServer struct {
	gatewayv1.UnimplementedAlertServiceServer
	ingester Ingester
}

// NewAlertServer returns the alert ingest API.
func NewAlertServer(i Ingester) *AlertServer { return &AlertServer{ingester: i} }

// IngestAlerts implements the RPC.
func (s *AlertServer) IngestAlerts(ctx context.Context, req *gatewayv1.IngestAlertsRequest) (*gatewayv1.IngestAlertsResponse, error) {
	var bad server.BadRequestError
	switch n := len(req.GetAlerts()); {
	case n == 0:
		bad.Add("alerts", "must not be empty")
	case n > maxAlerts:
		bad.Addf("alerts", "at most %d alerts per call, got %d", maxAlerts, n)
	}
	for i, a := range req.GetAlerts() {
		path := fmt.Sprintf("alerts[%d]", i)
		if len(a.GetLabels()) == 0 {
			bad.Add(path+".labels", "must not be empty")
		}
		for k := range a.GetLabels() {
			if !model.UTF8Validation.IsValidLabelName(k) {
				bad.Addf(path+".labels", "%q is not a valid label name", k)
			}
		}
		if a.GetStartsAt() == nil {
			bad.Add(path+".starts_at", "is required")
		}
		if a.GetStatus() == typesv1.AlertStatus_ALERT_STATUS_RESOLVED && a.GetEndsAt() == nil {
			bad.Add(path+".ends_at", "is required when status is resolved")
		}
		// The fingerprint is the labels' (Alertmanager's hash), or the
		// sender could fire or resolve another alert by its fingerprint.
		if fp := a.GetFingerprint(); fp != "" && len(a.GetLabels()) > 0 && fp != alertlabel.Fingerprint(a.GetLabels()) {
			bad.Addf(path+".fingerprint", "%q is not the fingerprint of the labels (%s); leave it empty and Vigil computes it", fp, alertlabel.Fingerprint(a.GetLabels()))
		}
		a.Source = typesv1.AlertSource_ALERT_SOURCE_GRPC
	}
	if err := bad.Err("invalid alerts"); err != nil {
		return nil, err
	}
	if err := s.ingester.Ingest(ctx, req.GetAlerts()); err != nil {
		if fe, ok := errors.AsType[*ingest.ForeignError](err); ok {
			return nil, foreign(fe)
		}
		if ctx.Err() != nil {
			// The caller gave up (or its deadline passed): not our failure,
			// and the error interceptor answers it so.
			return nil, ctx.Err()
		}
		if errors.Is(err, bus.ErrStreamFull) {
			return nil, server.Unavailable("the alert stream is full (Vigil's monitor is behind, or the stream too small): retry later", ingest.StreamFullRetryAfter)
		}
		return nil, status.Error(codes.Unavailable, "alerts could not be stored; retry")
	}
	resp := &gatewayv1.IngestAlertsResponse{}
	for _, a := range req.GetAlerts() {
		resp.Fingerprints = append(resp.Fingerprints, a.GetFingerprint())
	}
	return resp, nil
}

// IncidentForwarder serves IncidentService by calling monitor in another
// process, as the original caller.
type IncidentForwarder struct {
	monitorv1.UnimplementedIncidentServiceServer
	c monitorv1.IncidentServiceClient
}

// NewIncidentForwarder forwards to monitor over conn.
func NewIncidentForwarder(conn grpc.ClientConnInterface) *IncidentForwarder {
	return &IncidentForwarder{c: monitorv1.NewIncidentServiceClient(conn)}
}

// ListIncidents forwards the RPC.
func (f *IncidentForwarder) ListIncidents(ctx context.Context, r *monitorv1.ListIncidentsRequest) (*monitorv1.ListIncidentsResponse, error) {
	return f.c.ListIncidents(ctx, r)
}

// GetIncident forwards the RPC.
func (f *IncidentForwarder) GetIncident(ctx context.Context, r *monitorv1.GetIncidentRequest) (*monitorv1.GetIncidentResponse, error) {
	return f.c.GetIncident(ctx, r)
}

// AcknowledgeIncident forwards the RPC.
func (f *IncidentForwarder) AcknowledgeIncident(ctx context.Context, r *monitorv1.AcknowledgeIncidentRequest) (*monitorv1.AcknowledgeIncidentResponse, error) {
	return f.c.AcknowledgeIncident(ctx, r)
}

// ResolveIncident forwards the RPC.
func (f *IncidentForwarder) ResolveIncident(ctx context.Context, r *monitorv1.ResolveIncidentRequest) (*monitorv1.ResolveIncidentResponse, error) {
	return f.c.ResolveIncident(ctx, r)
}

// ListAlerts forwards the RPC.
func (f *IncidentForwarder) ListAlerts(ctx context.Context, r *monitorv1.ListAlertsRequest) (*monitorv1.ListAlertsResponse, error) {
	return f.c.ListAlerts(ctx, r)
}

// EscalateIncident forwards the RPC.
func (f *IncidentForwarder) EscalateIncident(ctx context.Context, r *monitorv1.EscalateIncidentRequest) (*monitorv1.EscalateIncidentResponse, error) {
	return f.c.EscalateIncident(ctx, r)
}

// SnoozeIncident forwards the RPC.
func (f *IncidentForwarder) SnoozeIncident(ctx context.Context, r *monitorv1.SnoozeIncidentRequest) (*monitorv1.SnoozeIncidentResponse, error) {
	return f.c.SnoozeIncident(ctx, r)
}

// SetIncidentPriority forwards the RPC.
func (f *IncidentForwarder) SetIncidentPriority(ctx context.Context, r *monitorv1.SetIncidentPriorityRequest) (*monitorv1.SetIncidentPriorityResponse, error) {
	return f.c.SetIncidentPriority(ctx, r)
}

// foreign is the refusal of alerts of another team's subject: nothing of
// the call was stored.
func foreign(fe *ingest.ForeignError) error {
	st := status.New(codes.PermissionDenied, fe.Error())
	if d, err := st.WithDetails(&errdetails.ErrorInfo{
		Reason: "SUBJECT_OF_ANOTHER_TEAM", Domain: "vigil",
		Metadata: map[string]string{
			"alert": strconv.Itoa(fe.Index), "team": fe.Subject.GetTeam(), "namespace": fe.Subject.GetNamespace(), "principal": fe.Sender,
		},
	}); err == nil {
		st = d
	}
	return st.Err()
}
