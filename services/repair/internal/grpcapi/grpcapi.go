// Package grpcapi is the repair service's gRPC port, with its errors
// mapped to status codes in one place.
package grpcapi

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ops/vigil/pkg/auth"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/repair/internal/postgres"
)

// Service is what the API asks the repair service to do. Its refusals
// carry their gRPC status (FailedPrecondition).
type Service interface {
	Answer(ctx context.Context, id string, approve bool, actor, channel, reason string) (*repairv1.Repair, error)
	Postpone(ctx context.Context, id string, d time.Duration, actor, channel string) (*repairv1.Repair, error)
	Guardrails(ctx context.Context, scope string) (set, effective *repairv1.Guardrails, err error)
	SetGuardrails(ctx context.Context, g *repairv1.Guardrails, clearFields []string, by string) (set, effective *repairv1.Guardrails, err error)
}

// Server implements repairv1.RepairServiceServer.
type Server struct {
	repairv1.UnimplementedRepairServiceServer
	store *postgres.Store
	svc   Service
}

// New returns the API.
func New(store *postgres.Store, svc Service) *Server {
	return &Server{store: store, svc: svc}
}

// toStatus maps the repair service's sentinels to their codes; its
// refusals and guardrail violations are statuses already, and the error
// interceptor (pkg/server) answers the rest.
func toStatus(err error) error {
	if errors.Is(err, postgres.ErrNotFound) {
		return status.Error(codes.NotFound, err.Error())
	}
	return err
}

// GetRepair implements the RPC.
func (s *Server) GetRepair(ctx context.Context, r *repairv1.GetRepairRequest) (*repairv1.GetRepairResponse, error) {
	if err := server.ValidUUID("id", r.GetId()); err != nil {
		return nil, err
	}
	row, err := s.store.Get(ctx, nil, r.GetId(), true)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := auth.CheckTeam(ctx, row.Repair.GetTeam(), "repair "+r.GetId()); err != nil {
		return nil, err
	}
	return &repairv1.GetRepairResponse{Repair: row.Repair}, nil
}

// ListRepairs implements the RPC.
func (s *Server) ListRepairs(ctx context.Context, r *repairv1.ListRepairsRequest) (*repairv1.ListRepairsResponse, error) {
	var bad server.BadRequestError
	if r.GetIncidentId() != "" && uuid.Validate(r.GetIncidentId()) != nil {
		bad.Add("incident_id", "must be a UUID")
	}
	if _, ok := repairv1.RepairStatus_name[int32(r.GetStatus())]; !ok {
		bad.Add("status", "unknown status")
	}
	size := server.PageSize(&bad, "page_size", r.GetPageSize())
	after := server.ParsePageToken[server.TimeID](&bad, "repairs", r.GetPageToken())
	if err := bad.Err("invalid request"); err != nil {
		return nil, err
	}
	afterAt, afterID := after.Parts()
	teams, all, unowned := auth.Teams(ctx)
	f := postgres.Filter{IncidentID: r.GetIncidentId(), Scoped: !all, Teams: teams, Unowned: unowned}
	if r.GetStatus() != repairv1.RepairStatus_REPAIR_STATUS_UNSPECIFIED {
		f.Status = postgres.Status(r.GetStatus())
	}
	rs, err := s.store.List(ctx, f, size, afterAt, afterID)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &repairv1.ListRepairsResponse{}
	out.Repairs, out.NextPageToken = server.NextPage("repairs", rs, size, func(r *repairv1.Repair) server.TimeID {
		return server.TimeIDOf(r.GetCreateTime().AsTime(), r.GetId())
	})
	return out, nil
}

// ApproveRepair implements the RPC.
func (s *Server) ApproveRepair(ctx context.Context, r *repairv1.ApproveRepairRequest) (*repairv1.ApproveRepairResponse, error) {
	if err := server.ValidUUID("id", r.GetId()); err != nil {
		return nil, err
	}
	rp, err := s.svc.Answer(ctx, r.GetId(), true, caller(ctx), "api", "")
	if err != nil {
		return nil, toStatus(err)
	}
	return &repairv1.ApproveRepairResponse{Repair: rp}, nil
}

// RejectRepair implements the RPC.
func (s *Server) RejectRepair(ctx context.Context, r *repairv1.RejectRepairRequest) (*repairv1.RejectRepairResponse, error) {
	if err := server.ValidUUID("id", r.GetId()); err != nil {
		return nil, err
	}
	if len(r.GetReason()) > 1000 {
		return nil, server.InvalidArgument("invalid reason", server.FieldViolation{Field: "reason", Description: "at most 1000 bytes"})
	}
	rp, err := s.svc.Answer(ctx, r.GetId(), false, caller(ctx), "api", r.GetReason())
	if err != nil {
		return nil, toStatus(err)
	}
	return &repairv1.RejectRepairResponse{Repair: rp}, nil
}

// maxSnooze bounds a snooze asked for: the approval's own expiry cuts
// it shorter anyway.
const maxSnooze = 24 * time.Hour

// PostponeRepair implements the RPC.
func (s *Server) PostponeRepair(ctx context.Context, r *repairv1.PostponeRepairRequest) (*repairv1.PostponeRepairResponse, error) {
	if err := server.ValidUUID("id", r.GetId()); err != nil {
		return nil, err
	}
	var d time.Duration
	if r.GetFor() != nil {
		if d = r.GetFor().AsDuration(); d < time.Minute || d > maxSnooze {
			return nil, server.InvalidArgument("invalid snooze", server.FieldViolation{Field: "for", Description: "from 1m to 24h"})
		}
	}
	rp, err := s.svc.Postpone(ctx, r.GetId(), d, caller(ctx), "api")
	if err != nil {
		return nil, toStatus(err)
	}
	return &repairv1.PostponeRepairResponse{Repair: rp}, nil
}

// GetGuardrails implements the RPC.
func (s *Server) GetGuardrails(ctx context.Context, r *repairv1.GetGuardrailsRequest) (*repairv1.GetGuardrailsResponse, error) {
	set, eff, err := s.svc.Guardrails(ctx, r.GetScope())
	if err != nil {
		return nil, toStatus(err)
	}
	return &repairv1.GetGuardrailsResponse{Set: set, Effective: eff}, nil
}

// SetGuardrails implements the RPC.
func (s *Server) SetGuardrails(ctx context.Context, r *repairv1.SetGuardrailsRequest) (*repairv1.SetGuardrailsResponse, error) {
	if r.GetGuardrails() == nil {
		return nil, server.InvalidArgument("missing guardrails", server.FieldViolation{Field: "guardrails", Description: "required"})
	}
	set, eff, err := s.svc.SetGuardrails(ctx, r.GetGuardrails(), r.GetClear(), caller(ctx))
	if err != nil {
		return nil, toStatus(err)
	}
	return &repairv1.SetGuardrailsResponse{Set: set, Effective: eff}, nil
}

// caller names who answered, as the audit log does ("user:alice").
func caller(ctx context.Context) string {
	if p, ok := auth.FromContext(ctx); ok {
		return p.String()
	}
	return "unknown"
}
