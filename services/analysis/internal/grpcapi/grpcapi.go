// Package grpcapi is the analysis service's gRPC port, with its errors
// mapped to status codes in one place.
package grpcapi

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
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
	log     *slog.Logger
}

// New returns the API; analyze runs an analysis now and records it.
func New(store *postgres.Store, analyze func(ctx context.Context, incidentID, engine string) (*analysisv1.Analysis, error), log *slog.Logger) *Server {
	return &Server{store: store, analyze: analyze, log: log}
}

func (s *Server) toStatus(ctx context.Context, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, postgres.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	s.log.ErrorContext(ctx, "analysis request failed", "error", err)
	return status.Error(codes.Internal, "internal error")
}

// reach checks the caller may reach incidentID's analyses: they belong to
// the team of the incident's app.
func (s *Server) reach(ctx context.Context, incidentID string) error {
	if _, all, _ := auth.Teams(ctx); all {
		return nil
	}
	team, err := s.store.IncidentTeam(ctx, incidentID)
	if err != nil {
		return s.toStatus(ctx, err)
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

func validID(id, field string) error {
	if _, err := uuid.Parse(id); err != nil {
		return server.InvalidArgument("invalid "+field, server.FieldViolation{Field: field, Description: "must be a UUID"})
	}
	return nil
}

// GetAnalysis implements the RPC.
func (s *Server) GetAnalysis(ctx context.Context, r *analysisv1.GetAnalysisRequest) (*analysisv1.GetAnalysisResponse, error) {
	if err := validID(r.GetId(), "id"); err != nil {
		return nil, err
	}
	a, err := s.store.Analysis(ctx, r.GetId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	if err := s.reach(ctx, a.GetIncidentId()); err != nil {
		return nil, err
	}
	return &analysisv1.GetAnalysisResponse{Analysis: forCaller(ctx, a)}, nil
}

// ListAnalyses implements the RPC.
func (s *Server) ListAnalyses(ctx context.Context, r *analysisv1.ListAnalysesRequest) (*analysisv1.ListAnalysesResponse, error) {
	if r.GetIncidentId() != "" {
		if err := validID(r.GetIncidentId(), "incident_id"); err != nil {
			return nil, err
		}
		if err := s.reach(ctx, r.GetIncidentId()); err != nil {
			return nil, err
		}
	}
	teams, all, unowned := auth.Teams(ctx)
	size := int(r.GetPageSize())
	switch {
	case size == 0:
		size = 50
	case size < 0:
		return nil, server.InvalidArgument("invalid page size", server.FieldViolation{Field: "page_size", Description: "must not be negative"})
	case size > 500:
		size = 500
	}
	var (
		afterAt time.Time
		afterID string
	)
	if tok := r.GetPageToken(); tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		at, id, ok := strings.Cut(string(raw), "/")
		if err == nil && ok {
			err = afterAt.UnmarshalText([]byte(at))
		}
		if err != nil || !ok || uuid.Validate(id) != nil {
			return nil, server.InvalidArgument("invalid page token", server.FieldViolation{Field: "page_token", Description: "is not a token this API returned"})
		}
		afterID = id
	}
	as, err := s.store.Analyses(ctx, r.GetIncidentId(), postgres.Teams{Scoped: !all, Teams: teams, Unowned: unowned}, size, afterAt, afterID)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	out := &analysisv1.ListAnalysesResponse{}
	if len(as) > size {
		last := as[size-1]
		at, _ := last.GetCreateTime().AsTime().MarshalText()
		out.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(string(at) + "/" + last.GetId()))
		as = as[:size]
	}
	for _, a := range as {
		out.Analyses = append(out.Analyses, forCaller(ctx, a))
	}
	return out, nil
}

// engines an AnalyzeIncident may name first.
var engines = map[string]bool{"": true, "rules": true, "ollama": true, "openai": true, "anthropic": true, "gemini": true}

// AnalyzeIncident implements the RPC.
func (s *Server) AnalyzeIncident(ctx context.Context, r *analysisv1.AnalyzeIncidentRequest) (*analysisv1.AnalyzeIncidentResponse, error) {
	if err := validID(r.GetIncidentId(), "incident_id"); err != nil {
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
		return nil, s.toStatus(ctx, err)
	}
	return &analysisv1.AnalyzeIncidentResponse{Analysis: forCaller(ctx, a)}, nil
}
