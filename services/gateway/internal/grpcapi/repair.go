package grpcapi

import (
	"context"

	"google.golang.org/grpc"

	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
)

// RepairForwarder serves RepairService by calling the repair service in
// another process as the original caller (the connection asserts it).
type RepairForwarder struct {
	repairv1.UnimplementedRepairServiceServer
	c repairv1.RepairServiceClient
}

// NewRepairForwarder forwards to the repair service at conn.
func NewRepairForwarder(conn grpc.ClientConnInterface) *RepairForwarder {
	return &RepairForwarder{c: repairv1.NewRepairServiceClient(conn)}
}

// ListRepairs forwards the RPC.
func (f *RepairForwarder) ListRepairs(ctx context.Context, r *repairv1.ListRepairsRequest) (*repairv1.ListRepairsResponse, error) {
	return f.c.ListRepairs(ctx, r)
}

// GetRepair forwards the RPC.
func (f *RepairForwarder) GetRepair(ctx context.Context, r *repairv1.GetRepairRequest) (*repairv1.GetRepairResponse, error) {
	return f.c.GetRepair(ctx, r)
}

// ApproveRepair forwards the RPC.
func (f *RepairForwarder) ApproveRepair(ctx context.Context, r *repairv1.ApproveRepairRequest) (*repairv1.ApproveRepairResponse, error) {
	return f.c.ApproveRepair(ctx, r)
}

// RejectRepair forwards the RPC.
func (f *RepairForwarder) RejectRepair(ctx context.Context, r *repairv1.RejectRepairRequest) (*repairv1.RejectRepairResponse, error) {
	return f.c.RejectRepair(ctx, r)
}

// PostponeRepair forwards the RPC.
func (f *RepairForwarder) PostponeRepair(ctx context.Context, r *repairv1.PostponeRepairRequest) (*repairv1.PostponeRepairResponse, error) {
	return f.c.PostponeRepair(ctx, r)
}

// GetGuardrails forwards the RPC.
func (f *RepairForwarder) GetGuardrails(ctx context.Context, r *repairv1.GetGuardrailsRequest) (*repairv1.GetGuardrailsResponse, error) {
	return f.c.GetGuardrails(ctx, r)
}

// SetGuardrails forwards the RPC.
func (f *RepairForwarder) SetGuardrails(ctx context.Context, r *repairv1.SetGuardrailsRequest) (*repairv1.SetGuardrailsResponse, error) {
	return f.c.SetGuardrails(ctx, r)
}
