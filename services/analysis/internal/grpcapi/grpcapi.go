// Package grpcapi is the analysis service's gRPC port, with its errors
// mapped to status codes in one place.
package grpcapi

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ops/vigil/pkg/auth"
	analysisv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/analysis/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/analysis/internal/postgres"
)

// Server implements analysisv1.AnalysisServiceServer.
type Server struct {
	analysisv1.UnimplementedAnalysisServiceServer
	store   *postgres.Store
	analyze func(ctx context.Context, incidentID, engine string) (*analysisv1.Analysis, error)
}

// New returns the API; analyze runs an analysis now and records it.
func New(store *postgres.Store, analyze func(ctx context.Context, incidentID, engine string) (*analysisv1.Analysis, error)) *Server {
	return &Server{store: store, analyze: analyze}
}

// toStatus maps the analysis service's sentinels to their codes; the
// error interceptor (pkg/server) answers the rest.
func toStatus(err error) error {
	if errors.Is(err, postgres.ErrNotFound) {
		return status.Error(codes.NotFound, err.Error())
	}
	return err
}

// reach checks the caller may reach incidentID's analyses: they belong to
// the team of the incident's app.
func (s *Server) reach(ctx context.Context, incidentID string) error {
	if _, all, _ := auth.Teams(ctx); all {
		return nil
	}
	team, err := s.store.IncidentTeam(ctx, incidentID)
	if err != nil {
		return toStatus(err)
	}
	return auth.CheckTeam(ctx, team, "incident "+incidentID)
}

// forCaller hides what only admins see: what was sent to an LLM.
func forCaller(ctx context.Context, a *analysisv1.Analysis) *analysisv1.Analysis {
	if p, ok := auth.FromContext(ctx); !ok || p.Has(auth.Admin) {
		return a
	}
	a = proto.Clone(a).(*analysisv1.Analysis)
	a.Sent = ""
	return a
}

// GetAnalysis implements the RPC.
func (s *Server) GetAnalysis(ctx context.Context, r *analysisv1.GetAnalysisRequest) (*analysisv1.GetAnalysisResponse, error) {
	if err := server.ValidUUID("id", r.GetId()); err != nil {
		return nil, err
	}
	a, err := s.store.Analysis(ctx, r.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.reach(ctx, a.GetIncidentId()); err != nil {
		return nil, err
	}
	return &analysisv1.GetAnalysisResponse{Analysis: forCaller(ctx, a)}, nil
}

// ListAnalyses implements the RPC.
func (s *Server) ListAnalyses(ctx context.Context, r *analysisv1.ListAnalysesRequest) (*analysisv1.ListAnalysesResponse, error) {
	if r.GetIncidentId() != "" {
		if err := server.ValidUUID("incident_id", r.GetIncidentId()); err != nil {
			return nil, err
		}
		if err := s.reach(ctx, r.GetIncidentId()); err != nil {
			return nil, err
		}
	}
	teams, all, unowned := auth.Teams(ctx)
	var bad server.BadRequestError
	size := server.PageSize(&bad, "page_size", r.GetPageSize())
	after := server.ParsePageToken[server.TimeID](&bad, "analyses", r.GetPageToken())
	if err := bad.Err("invalid request"); err != nil {
		return nil, err
	}
	afterAt, afterID := after.Parts()
	as, err := s.store.Analyses(ctx, r.GetIncidentId(), postgres.Teams{Scoped: !all, Teams: teams, Unowned: unowned}, size, afterAt, afterID)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &analysisv1.ListAnalysesResponse{}
	as, out.NextPageToken = server.NextPage("analyses", as, size, func(a *analysisv1.Analysis) server.TimeID {
		return server.TimeIDOf(a.GetCreateTime().AsTime(), a.GetId())
	})
	for _, a := range as {
		out.Analyses = append(out.Analyses, forCaller(ctx, a))
	}
	return out, nil
}

// engines an AnalyzeIncident may name first.
var engines = map[string]bool{"": true, "rules": true, "ollama": true, "openai": true, "anthropic": true, "gemini": true}

// AnalyzeIncident implements the RPC.
func (s *Server) AnalyzeIncident(ctx context.Context, r *analysisv1.AnalyzeIncidentRequest) (*analysisv1.AnalyzeIncidentResponse, error) {
	if err := server.ValidUUID("incident_id", r.GetIncidentId()); err != nil {
		return nil, err
	}
	if !engines[r.GetEngine()] {
		return nil, server.InvalidArgument("unknown engine", server.FieldViolation{Field: "engine", Description: "must be rules, ollama, openai, anthropic or gemini"})
	}
	if err := s.reach(ctx, r.GetIncidentId()); err != nil {
		return nil, err
	}
	a, err := s.analyze(ctx, r.GetIncidentId(), r.GetEngine())
	if err != nil {
		return nil, toStatus(err)
	}
	return &analysisv1.AnalyzeIncidentResponse{Analysis: forCaller(ctx, a)}, nil
}
