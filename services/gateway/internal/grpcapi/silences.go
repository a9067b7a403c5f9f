package grpcapi

import (
	"context"

	"google.golang.org/grpc"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
)

// SilenceForwarder serves SilenceService by calling monitor in another
// process, as the original caller: monitor records who created or expired
// a silence from the forwarded credentials.
type SilenceForwarder struct {
	monitorv1.UnimplementedSilenceServiceServer
	c monitorv1.SilenceServiceClient
}

// NewSilenceForwarder forwards to monitor over conn.
func NewSilenceForwarder(conn grpc.ClientConnInterface) *SilenceForwarder {
	return &SilenceForwarder{c: monitorv1.NewSilenceServiceClient(conn)}
}

// CreateSilence forwards the RPC.
func (f *SilenceForwarder) CreateSilence(ctx context.Context, r *monitorv1.CreateSilenceRequest) (*monitorv1.CreateSilenceResponse, error) {
	return f.c.CreateSilence(ctx, r)
}

// GetSilence forwards the RPC.
func (f *SilenceForwarder) GetSilence(ctx context.Context, r *monitorv1.GetSilenceRequest) (*monitorv1.GetSilenceResponse, error) {
	return f.c.GetSilence(ctx, r)
}

// ListSilences forwards the RPC.
func (f *SilenceForwarder) ListSilences(ctx context.Context, r *monitorv1.ListSilencesRequest) (*monitorv1.ListSilencesResponse, error) {
	return f.c.ListSilences(ctx, r)
}

// ExpireSilence forwards the RPC.
func (f *SilenceForwarder) ExpireSilence(ctx context.Context, r *monitorv1.ExpireSilenceRequest) (*monitorv1.ExpireSilenceResponse, error) {
	return f.c.ExpireSilence(ctx, r)
}
