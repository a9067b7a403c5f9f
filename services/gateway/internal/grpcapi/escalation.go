package grpcapi

import (
	"context"

	"google.golang.org/grpc"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
)

// OnCallForwarder serves OnCallService by calling monitor in another
// process, as the original caller: monitor checks the schedule's team.
type OnCallForwarder struct {
	monitorv1.UnimplementedOnCallServiceServer
	c monitorv1.OnCallServiceClient
}

// NewOnCallForwarder forwards to monitor over conn.
func NewOnCallForwarder(conn grpc.ClientConnInterface) *OnCallForwarder {
	return &OnCallForwarder{c: monitorv1.NewOnCallServiceClient(conn)}
}

// CreateSchedule forwards the RPC.
func (f *OnCallForwarder) CreateSchedule(ctx context.Context, r *monitorv1.CreateScheduleRequest) (*monitorv1.CreateScheduleResponse, error) {
	return f.c.CreateSchedule(ctx, r)
}

// GetSchedule forwards the RPC.
func (f *OnCallForwarder) GetSchedule(ctx context.Context, r *monitorv1.GetScheduleRequest) (*monitorv1.GetScheduleResponse, error) {
	return f.c.GetSchedule(ctx, r)
}

// ListSchedules forwards the RPC.
func (f *OnCallForwarder) ListSchedules(ctx context.Context, r *monitorv1.ListSchedulesRequest) (*monitorv1.ListSchedulesResponse, error) {
	return f.c.ListSchedules(ctx, r)
}

// UpdateSchedule forwards the RPC.
func (f *OnCallForwarder) UpdateSchedule(ctx context.Context, r *monitorv1.UpdateScheduleRequest) (*monitorv1.UpdateScheduleResponse, error) {
	return f.c.UpdateSchedule(ctx, r)
}

// DeleteSchedule forwards the RPC.
func (f *OnCallForwarder) DeleteSchedule(ctx context.Context, r *monitorv1.DeleteScheduleRequest) (*monitorv1.DeleteScheduleResponse, error) {
	return f.c.DeleteSchedule(ctx, r)
}

// AddOverride forwards the RPC.
func (f *OnCallForwarder) AddOverride(ctx context.Context, r *monitorv1.AddOverrideRequest) (*monitorv1.AddOverrideResponse, error) {
	return f.c.AddOverride(ctx, r)
}

// WhoIsOnCall forwards the RPC.
func (f *OnCallForwarder) WhoIsOnCall(ctx context.Context, r *monitorv1.WhoIsOnCallRequest) (*monitorv1.WhoIsOnCallResponse, error) {
	return f.c.WhoIsOnCall(ctx, r)
}

// ListShifts forwards the RPC.
func (f *OnCallForwarder) ListShifts(ctx context.Context, r *monitorv1.ListShiftsRequest) (*monitorv1.ListShiftsResponse, error) {
	return f.c.ListShifts(ctx, r)
}

// EscalationForwarder serves EscalationService by calling monitor in
// another process, as the original caller.
type EscalationForwarder struct {
	monitorv1.UnimplementedEscalationServiceServer
	c monitorv1.EscalationServiceClient
}

// NewEscalationForwarder forwards to monitor over conn.
func NewEscalationForwarder(conn grpc.ClientConnInterface) *EscalationForwarder {
	return &EscalationForwarder{c: monitorv1.NewEscalationServiceClient(conn)}
}

// CreatePolicy forwards the RPC.
func (f *EscalationForwarder) CreatePolicy(ctx context.Context, r *monitorv1.CreatePolicyRequest) (*monitorv1.CreatePolicyResponse, error) {
	return f.c.CreatePolicy(ctx, r)
}

// GetPolicy forwards the RPC.
func (f *EscalationForwarder) GetPolicy(ctx context.Context, r *monitorv1.GetPolicyRequest) (*monitorv1.GetPolicyResponse, error) {
	return f.c.GetPolicy(ctx, r)
}

// ListPolicies forwards the RPC.
func (f *EscalationForwarder) ListPolicies(ctx context.Context, r *monitorv1.ListPoliciesRequest) (*monitorv1.ListPoliciesResponse, error) {
	return f.c.ListPolicies(ctx, r)
}

// UpdatePolicy forwards the RPC.
func (f *EscalationForwarder) UpdatePolicy(ctx context.Context, r *monitorv1.UpdatePolicyRequest) (*monitorv1.UpdatePolicyResponse, error) {
	return f.c.UpdatePolicy(ctx, r)
}

// DeletePolicy forwards the RPC.
func (f *EscalationForwarder) DeletePolicy(ctx context.Context, r *monitorv1.DeletePolicyRequest) (*monitorv1.DeletePolicyResponse, error) {
	return f.c.DeletePolicy(ctx, r)
}

// GetPriorityRules forwards the RPC.
func (f *EscalationForwarder) GetPriorityRules(ctx context.Context, r *monitorv1.GetPriorityRulesRequest) (*monitorv1.GetPriorityRulesResponse, error) {
	return f.c.GetPriorityRules(ctx, r)
}

// SetPriorityRules forwards the RPC.
func (f *EscalationForwarder) SetPriorityRules(ctx context.Context, r *monitorv1.SetPriorityRulesRequest) (*monitorv1.SetPriorityRulesResponse, error) {
	return f.c.SetPriorityRules(ctx, r)
}
