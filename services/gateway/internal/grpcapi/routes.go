package grpcapi

import (
	"context"

	"google.golang.org/grpc"

	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
)

// RouteForwarder serves RouteService by calling notify in another
// process, as the original caller.
type RouteForwarder struct {
	notifyv1.UnimplementedRouteServiceServer
	c notifyv1.RouteServiceClient
}

// NewRouteForwarder forwards to notify over conn.
func NewRouteForwarder(conn grpc.ClientConnInterface) *RouteForwarder {
	return &RouteForwarder{c: notifyv1.NewRouteServiceClient(conn)}
}

// GetRoutes forwards the RPC.
func (f *RouteForwarder) GetRoutes(ctx context.Context, r *notifyv1.GetRoutesRequest) (*notifyv1.GetRoutesResponse, error) {
	return f.c.GetRoutes(ctx, r)
}

// ApplyRoutes forwards the RPC.
func (f *RouteForwarder) ApplyRoutes(ctx context.Context, r *notifyv1.ApplyRoutesRequest) (*notifyv1.ApplyRoutesResponse, error) {
	return f.c.ApplyRoutes(ctx, r)
}

// TestRoutes forwards the RPC.
func (f *RouteForwarder) TestRoutes(ctx context.Context, r *notifyv1.TestRoutesRequest) (*notifyv1.TestRoutesResponse, error) {
	return f.c.TestRoutes(ctx, r)
}
