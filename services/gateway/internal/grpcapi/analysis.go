package grpcapi

import (
	"context"

	"google.golang.org/grpc"

	analysisv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/analysis/v1"
)

// AnalysisForwarder serves AnalysisService by calling the analysis
// service in another process, as the original caller.
type AnalysisForwarder struct {
	analysisv1.UnimplementedAnalysisServiceServer
	c analysisv1.AnalysisServiceClient
}

// NewAnalysisForwarder forwards to the analysis service over conn.
func NewAnalysisForwarder(conn grpc.ClientConnInterface) *AnalysisForwarder {
	return &AnalysisForwarder{c: analysisv1.NewAnalysisServiceClient(conn)}
}

// GetAnalysis forwards the RPC.
func (f *AnalysisForwarder) GetAnalysis(ctx context.Context, r *analysisv1.GetAnalysisRequest) (*analysisv1.GetAnalysisResponse, error) {
	return f.c.GetAnalysis(ctx, r)
}

// ListAnalyses forwards the RPC.
func (f *AnalysisForwarder) ListAnalyses(ctx context.Context, r *analysisv1.ListAnalysesRequest) (*analysisv1.ListAnalysesResponse, error) {
	return f.c.ListAnalyses(ctx, r)
}

// AnalyzeIncident forwards the RPC.
func (f *AnalysisForwarder) AnalyzeIncident(ctx context.Context, r *analysisv1.AnalyzeIncidentRequest) (*analysisv1.AnalyzeIncidentResponse, error) {
	return f.c.AnalyzeIncident(ctx, r)
}

// ListPlaybooks forwards the RPC.
func (f *AnalysisForwarder) ListPlaybooks(ctx context.Context, r *analysisv1.ListPlaybooksRequest) (*analysisv1.ListPlaybooksResponse, error) {
	return f.c.ListPlaybooks(ctx, r)
}
