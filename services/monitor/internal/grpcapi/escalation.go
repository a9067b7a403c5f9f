package grpcapi

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/db"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/monitor/internal/escalation"
	"github.com/vigil-ops/vigil/services/monitor/internal/priority"
)

// EscalationServer implements monitorv1.EscalationServiceServer: policies
// are changed by their team (a global one, team "", by admins and the
// default team), the priority rules by admins (pkg/auth policy).
type EscalationServer struct {
	monitorv1.UnimplementedEscalationServiceServer
	pool     *pgxpool.Pool
	now      func() time.Time
	policies documents[*monitorv1.EscalationPolicy]
}

// NewEscalationServer returns the escalation API.
func NewEscalationServer(pool *pgxpool.Pool, clock escalation.Clock) *EscalationServer {
	return &EscalationServer{pool: pool, now: clock.Now, policies: documents[*monitorv1.EscalationPolicy]{
		pool: pool, now: clock.Now, store: escalation.Policies, kind: "escalation policy", field: "policy.", validate: escalation.ValidatePolicy,
	}}
}

// CreatePolicy implements the RPC.
func (s *EscalationServer) CreatePolicy(ctx context.Context, req *monitorv1.CreatePolicyRequest) (*monitorv1.CreatePolicyResponse, error) {
	p, err := s.policies.put(ctx, req.GetPolicy(), true)
	if err != nil {
		return nil, err
	}
	return &monitorv1.CreatePolicyResponse{Policy: p}, nil
}

// UpdatePolicy implements the RPC.
func (s *EscalationServer) UpdatePolicy(ctx context.Context, req *monitorv1.UpdatePolicyRequest) (*monitorv1.UpdatePolicyResponse, error) {
	p, err := s.policies.put(ctx, req.GetPolicy(), false)
	if err != nil {
		return nil, err
	}
	return &monitorv1.UpdatePolicyResponse{Policy: p}, nil
}

// GetPolicy implements the RPC.
func (s *EscalationServer) GetPolicy(ctx context.Context, req *monitorv1.GetPolicyRequest) (*monitorv1.GetPolicyResponse, error) {
	p, err := s.policies.get(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	return &monitorv1.GetPolicyResponse{Policy: p}, nil
}

// ListPolicies implements the RPC.
func (s *EscalationServer) ListPolicies(ctx context.Context, req *monitorv1.ListPoliciesRequest) (*monitorv1.ListPoliciesResponse, error) {
	ps, err := s.policies.list(ctx, req.GetTeam())
	if err != nil {
		return nil, err
	}
	return &monitorv1.ListPoliciesResponse{Policies: ps}, nil
}

// DeletePolicy implements the RPC.
func (s *EscalationServer) DeletePolicy(ctx context.Context, req *monitorv1.DeletePolicyRequest) (*monitorv1.DeletePolicyResponse, error) {
	if err := s.policies.delete(ctx, req.GetName()); err != nil {
		return nil, err
	}
	return &monitorv1.DeletePolicyResponse{}, nil
}

// GetPriorityRules implements the RPC.
func (s *EscalationServer) GetPriorityRules(ctx context.Context, _ *monitorv1.GetPriorityRulesRequest) (*monitorv1.GetPriorityRulesResponse, error) {
	r, err := escalation.GetRules(ctx, s.pool)
	if err != nil {
		return nil, toStatus(err)
	}
	return &monitorv1.GetPriorityRulesResponse{Rules: r}, nil
}

// SetPriorityRules implements the RPC.
func (s *EscalationServer) SetPriorityRules(ctx context.Context, req *monitorv1.SetPriorityRulesRequest) (*monitorv1.SetPriorityRulesResponse, error) {
	r := req.GetRules()
	if r == nil {
		r = &monitorv1.PriorityRules{}
	}
	if _, err := escalation.CompileRules(r, "rules."); err != nil {
		return nil, err
	}
	var out *monitorv1.PriorityRules
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := escalation.SetRules(ctx, tx, r, false, actor(ctx), s.now()); err != nil {
			return err
		}
		var err error
		out, err = escalation.GetRules(ctx, tx)
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &monitorv1.SetPriorityRulesResponse{Rules: out}, nil
}

// EscalateIncident implements the RPC.
func (s *IncidentServer) EscalateIncident(ctx context.Context, req *monitorv1.EscalateIncidentRequest) (*monitorv1.EscalateIncidentResponse, error) {
	if err := validID(req.GetId()); err != nil {
		return nil, err
	}
	if err := s.reach(ctx, req.GetId()); err != nil {
		return nil, err
	}
	resp := &monitorv1.EscalateIncidentResponse{}
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) (err error) {
		resp.Level, err = s.engine.Escalate(ctx, tx, req.GetId(), actor(ctx))
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, s.fill(ctx, req.GetId(), &resp.Incident)
}

// SnoozeIncident implements the RPC.
func (s *IncidentServer) SnoozeIncident(ctx context.Context, req *monitorv1.SnoozeIncidentRequest) (*monitorv1.SnoozeIncidentResponse, error) {
	if err := validID(req.GetId()); err != nil {
		return nil, err
	}
	d := req.GetDuration()
	if d == nil || !d.IsValid() || d.AsDuration() <= 0 || d.AsDuration() > escalation.MaxSnooze {
		return nil, server.InvalidArgument("invalid snooze", server.FieldViolation{
			Field: "duration", Description: "must be more than 0 and at most 24h (for longer, silence its alerts)",
		})
	}
	if err := s.reach(ctx, req.GetId()); err != nil {
		return nil, err
	}
	var until time.Time
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) (err error) {
		until, err = s.engine.Snooze(ctx, tx, req.GetId(), d.AsDuration(), actor(ctx))
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &monitorv1.SnoozeIncidentResponse{SnoozedUntil: timestamppb.New(until)}
	return resp, s.fill(ctx, req.GetId(), &resp.Incident)
}

// SetIncidentPriority implements the RPC.
func (s *IncidentServer) SetIncidentPriority(ctx context.Context, req *monitorv1.SetIncidentPriorityRequest) (*monitorv1.SetIncidentPriorityResponse, error) {
	if err := validID(req.GetId()); err != nil {
		return nil, err
	}
	if !priority.Valid(req.GetPriority()) {
		return nil, server.InvalidArgument("invalid priority", server.FieldViolation{Field: "priority", Description: "must be P0, P1, P2 or P3"})
	}
	if err := s.reach(ctx, req.GetId()); err != nil {
		return nil, err
	}
	resp := &monitorv1.SetIncidentPriorityResponse{}
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) (err error) {
		// Not escalated yet: planned again for the new priority's target
		// and policy. The escalation row first, then the incident: the
		// engine locks them in that order too.
		if err := escalation.Replan(ctx, tx, req.GetId()); err != nil {
			return err
		}
		resp.Incident, err = s.correlator.SetPriority(ctx, tx, req.GetId(), req.GetPriority(), actor(ctx))
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

// fill sets *to to incident id as it stands.
func (s *IncidentServer) fill(ctx context.Context, id string, to **typesv1.Incident) error {
	inc, _, err := s.store.Get(ctx, s.pool, id, 1)
	if err != nil {
		return toStatus(err)
	}
	inc.Alerts = nil
	*to = inc
	return nil
}
