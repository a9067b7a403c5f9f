// Package grpcapi is monitor's gRPC port: IncidentService over the
// correlator and the store, with errors mapped to status codes in one place.
package grpcapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ops/vigil/pkg/auth"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/monitor/internal/incident"
	"github.com/vigil-ops/vigil/services/monitor/internal/postgres"
)

const (
	defaultPageSize = 50
	maxPageSize     = 500
)

// IncidentServer implements monitorv1.IncidentServiceServer.
type IncidentServer struct {
	monitorv1.UnimplementedIncidentServiceServer
	pool       *pgxpool.Pool
	store      postgres.Store
	correlator *incident.Correlator
}

// NewIncidentServer returns the incident API.
func NewIncidentServer(pool *pgxpool.Pool, c *incident.Correlator) *IncidentServer {
	return &IncidentServer{pool: pool, correlator: c}
}

// ListIncidents implements the RPC.
func (s *IncidentServer) ListIncidents(ctx context.Context, req *monitorv1.ListIncidentsRequest) (*monitorv1.ListIncidentsResponse, error) {
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, server.InvalidArgument("invalid page size", server.FieldViolation{Field: "page_size", Description: "must not be negative"})
	case size == 0:
		size = defaultPageSize
	case size > maxPageSize:
		size = maxPageSize
	}
	incs, next, err := s.store.List(ctx, s.pool, postgres.Filter{Statuses: req.GetStatuses(), App: req.GetApp()}, size, req.GetPageToken())
	if err != nil {
		return nil, toStatus(err)
	}
	return &monitorv1.ListIncidentsResponse{Incidents: incs, NextPageToken: next}, nil
}

// GetIncident implements the RPC.
func (s *IncidentServer) GetIncident(ctx context.Context, req *monitorv1.GetIncidentRequest) (*monitorv1.GetIncidentResponse, error) {
	if err := validID(req.GetId()); err != nil {
		return nil, err
	}
	inc, err := s.store.Get(ctx, s.pool, req.GetId(), 0)
	if err != nil {
		return nil, toStatus(err)
	}
	return &monitorv1.GetIncidentResponse{Incident: inc}, nil
}

// AcknowledgeIncident implements the RPC.
func (s *IncidentServer) AcknowledgeIncident(ctx context.Context, req *monitorv1.AcknowledgeIncidentRequest) (*monitorv1.AcknowledgeIncidentResponse, error) {
	if err := validID(req.GetId()); err != nil {
		return nil, err
	}
	resp := &monitorv1.AcknowledgeIncidentResponse{}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) (err error) {
		resp.Incident, err = s.correlator.Acknowledge(ctx, tx, req.GetId(), actor(ctx))
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

// ResolveIncident implements the RPC.
func (s *IncidentServer) ResolveIncident(ctx context.Context, req *monitorv1.ResolveIncidentRequest) (*monitorv1.ResolveIncidentResponse, error) {
	if err := validID(req.GetId()); err != nil {
		return nil, err
	}
	resp := &monitorv1.ResolveIncidentResponse{}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) (err error) {
		resp.Incident, err = s.correlator.Resolve(ctx, tx, req.GetId(), actor(ctx))
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

func actor(ctx context.Context) string {
	if p, ok := auth.FromContext(ctx); ok {
		return p.Name
	}
	return "unknown"
}

// validID checks an incident id is a UUID before it reaches the database.
func validID(id string) error {
	if id == "" {
		return server.InvalidArgument("missing incident id", server.FieldViolation{Field: "id", Description: "is required"})
	}
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return server.InvalidArgument("invalid incident id", server.FieldViolation{Field: "id", Description: fmt.Sprintf("%q is not a UUID", id)})
	}
	return nil
}

// toStatus maps domain errors to gRPC codes; anything unknown is Internal,
// and its text is not shown to the caller.
func toStatus(err error) error {
	switch {
	case errors.Is(err, incident.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, incident.ErrResolved):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, postgres.ErrBadPageToken):
		return server.InvalidArgument("invalid page token", server.FieldViolation{Field: "page_token", Description: "is not a token this API returned"})
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	}
	return status.Error(codes.Internal, "internal error")
}
