package grpcapi

import (
	"context"

	"google.golang.org/grpc"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
)

// InhibitionForwarder serves InhibitionService by calling monitor in
// another process, as the original caller.
type InhibitionForwarder struct {
	monitorv1.UnimplementedInhibitionServiceServer
	c monitorv1.InhibitionServiceClient
}

// NewInhibitionForwarder forwards to monitor over conn.
func NewInhibitionForwarder(conn grpc.ClientConnInterface) *InhibitionForwarder {
	return &InhibitionForwarder{c: monitorv1.NewInhibitionServiceClient(conn)}
}

// GetInhibitionRules forwards the RPC.
func (f *InhibitionForwarder) GetInhibitionRules(ctx context.Context, r *monitorv1.GetInhibitionRulesRequest) (*monitorv1.GetInhibitionRulesResponse, error) {
	return f.c.GetInhibitionRules(ctx, r)
}

// ApplyInhibitionRules forwards the RPC.
func (f *InhibitionForwarder) ApplyInhibitionRules(ctx context.Context, r *monitorv1.ApplyInhibitionRulesRequest) (*monitorv1.ApplyInhibitionRulesResponse, error) {
	return f.c.ApplyInhibitionRules(ctx, r)
}
