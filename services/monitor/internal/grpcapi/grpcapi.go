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
	"github.com/vigil-ops/vigil/pkg/db"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	"github.com/vigil-ops/vigil/pkg/matcher"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/monitor/internal/escalation"
	"github.com/vigil-ops/vigil/services/monitor/internal/incident"
	"github.com/vigil-ops/vigil/services/monitor/internal/inhibit"
	"github.com/vigil-ops/vigil/services/monitor/internal/postgres"
	"github.com/vigil-ops/vigil/services/monitor/internal/priority"
	"github.com/vigil-ops/vigil/services/monitor/internal/silence"
)

// IncidentServer implements monitorv1.IncidentServiceServer.
type IncidentServer struct {
	monitorv1.UnimplementedIncidentServiceServer
	pool       *pgxpool.Pool
	store      postgres.Store
	correlator *incident.Correlator
	engine     *escalation.Engine
}

// NewIncidentServer returns the incident API; escalating and snoozing
// need an engine (WithEngine).
func NewIncidentServer(pool *pgxpool.Pool, c *incident.Correlator) *IncidentServer {
	return &IncidentServer{pool: pool, correlator: c}
}

// WithEngine lets s escalate and snooze incidents through e.
func (s *IncidentServer) WithEngine(e *escalation.Engine) *IncidentServer {
	s.engine = e
	return s
}

// ListIncidents implements the RPC.
func (s *IncidentServer) ListIncidents(ctx context.Context, req *monitorv1.ListIncidentsRequest) (*monitorv1.ListIncidentsResponse, error) {
	size, err := pageSize(req.GetPageSize(), "page_size")
	if err != nil {
		return nil, err
	}
	for i, p := range req.GetPriorities() {
		if !priority.Valid(p) {
			return nil, server.InvalidArgument("invalid priority", server.FieldViolation{
				Field: fmt.Sprintf("priorities[%d]", i), Description: "want P0, P1, P2 or P3",
			})
		}
	}
	if len(req.GetText()) > maxListText {
		return nil, server.InvalidArgument("invalid text", server.FieldViolation{
			Field: "text", Description: fmt.Sprintf("at most %d bytes", maxListText),
		})
	}
	teams, all, unowned := auth.Teams(ctx)
	incs, next, err := s.store.List(ctx, s.pool, postgres.Filter{
		Statuses: req.GetStatuses(), Priorities: req.GetPriorities(), App: req.GetApp(),
		Team: req.GetTeam(), Text: req.GetText(),
		Scoped: !all, Teams: teams, Unowned: unowned,
	}, size, req.GetPageToken())
	if err != nil {
		return nil, toStatus(err)
	}
	return &monitorv1.ListIncidentsResponse{Incidents: incs, NextPageToken: next}, nil
}

// maxListText bounds ListIncidents' text filter.
const maxListText = 256

// GetIncident implements the RPC.
func (s *IncidentServer) GetIncident(ctx context.Context, req *monitorv1.GetIncidentRequest) (*monitorv1.GetIncidentResponse, error) {
	if err := validID(req.GetId()); err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetAlertsPageSize(), "alerts_page_size")
	if err != nil {
		return nil, err
	}
	if err := s.reach(ctx, req.GetId()); err != nil {
		return nil, err
	}
	inc, next, err := s.store.Get(ctx, s.pool, req.GetId(), size)
	if err != nil {
		return nil, toStatus(err)
	}
	esc, err := escalation.StateOf(ctx, s.pool, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &monitorv1.GetIncidentResponse{Incident: inc, AlertsNextPageToken: next, Escalation: esc}, nil
}

// ListAlerts implements the RPC.
func (s *IncidentServer) ListAlerts(ctx context.Context, req *monitorv1.ListAlertsRequest) (*monitorv1.ListAlertsResponse, error) {
	size, err := pageSize(req.GetPageSize(), "page_size")
	if err != nil {
		return nil, err
	}
	f := postgres.AlertFilter{IncidentID: req.GetIncidentId()}
	if f.IncidentID != "" {
		if err := validIDField(f.IncidentID, "incident_id"); err != nil {
			return nil, err
		}
		if err := s.reach(ctx, f.IncidentID); err != nil {
			return nil, err
		}
	} else if _, all, _ := auth.Teams(ctx); !all {
		// Searching every alert (silenced ones belong to no incident, so
		// to no team) is for those who reach every team; others search
		// within an incident of theirs.
		return nil, status.Error(codes.PermissionDenied,
			"searching every alert needs every team (an admin); search an incident's alerts with incident_id (vigil alerts list --incident ID)")
	}
	ms, err := matcher.Parse(req.GetFilter())
	if err != nil {
		var perr *matcher.Error
		if errors.As(err, &perr) {
			return nil, server.InvalidArgument("invalid filter", server.FieldViolation{
				Field: fmt.Sprintf("filter[%d]", perr.Index), Description: perr.Err.Error(),
			})
		}
		return nil, server.InvalidArgument("invalid filter", server.FieldViolation{Field: "filter", Description: err.Error()})
	}
	for _, m := range ms {
		f.Matchers = append(f.Matchers, postgres.LabelMatch{Name: m.Name, Op: postgres.MatchOp(m.Type.String()), Value: m.Value})
	}
	for i, st := range req.GetStates() {
		switch st {
		case monitorv1.AlertState_ALERT_STATE_FIRING:
			f.States = append(f.States, postgres.StateFiring)
		case monitorv1.AlertState_ALERT_STATE_RESOLVED:
			f.States = append(f.States, postgres.StateResolved)
		case monitorv1.AlertState_ALERT_STATE_SILENCED:
			f.States = append(f.States, postgres.StateSilenced)
		case monitorv1.AlertState_ALERT_STATE_HELD:
			f.States = append(f.States, postgres.StateHeld)
		case monitorv1.AlertState_ALERT_STATE_INHIBITED:
			f.States = append(f.States, postgres.StateInhibited)
		default:
			return nil, server.InvalidArgument("invalid state", server.FieldViolation{
				Field: fmt.Sprintf("states[%d]", i), Description: "want firing, resolved, silenced, inhibited or held",
			})
		}
	}
	if req.GetSince() != nil {
		f.Since = req.GetSince().AsTime()
	}
	if req.GetUntil() != nil {
		f.Until = req.GetUntil().AsTime()
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return nil, server.InvalidArgument("invalid time range", server.FieldViolation{Field: "until", Description: "must be after since"})
	}
	alerts, next, err := s.store.ListAlerts(ctx, s.pool, f, size, req.GetPageToken())
	if err != nil {
		return nil, toStatus(err)
	}
	return &monitorv1.ListAlertsResponse{Alerts: alerts, NextPageToken: next}, nil
}

// pageSize is a request's page size (server.PageSize) of field.
func pageSize(n int32, field string) (int, error) {
	var bad server.BadRequestError
	size := server.PageSize(&bad, field, n)
	return size, bad.Err("invalid page size")
}

// AcknowledgeIncident implements the RPC.
func (s *IncidentServer) AcknowledgeIncident(ctx context.Context, req *monitorv1.AcknowledgeIncidentRequest) (*monitorv1.AcknowledgeIncidentResponse, error) {
	if err := validID(req.GetId()); err != nil {
		return nil, err
	}
	if err := s.reach(ctx, req.GetId()); err != nil {
		return nil, err
	}
	resp := &monitorv1.AcknowledgeIncidentResponse{}
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) (err error) {
		if err := escalation.Lock(ctx, tx, req.GetId()); err != nil {
			return err
		}
		if resp.Incident, err = s.correlator.Acknowledge(ctx, tx, req.GetId(), actor(ctx)); err != nil {
			return err
		}
		return escalation.Stop(ctx, tx, req.GetId(), resp.GetIncident().GetStatus())
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
	if err := s.reach(ctx, req.GetId()); err != nil {
		return nil, err
	}
	resp := &monitorv1.ResolveIncidentResponse{}
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) (err error) {
		if err := escalation.Lock(ctx, tx, req.GetId()); err != nil {
			return err
		}
		if resp.Incident, err = s.correlator.Resolve(ctx, tx, req.GetId(), actor(ctx)); err != nil {
			return err
		}
		return escalation.Stop(ctx, tx, req.GetId(), resp.GetIncident().GetStatus())
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

// reach checks that the caller may reach incident id: its app's team is
// one of the caller's (auth.CheckTeam).
func (s *IncidentServer) reach(ctx context.Context, id string) error {
	if _, all, _ := auth.Teams(ctx); all {
		return nil
	}
	team, err := postgres.Teams{}.IncidentTeam(ctx, s.pool, id)
	if err != nil {
		return toStatus(err)
	}
	return auth.CheckTeam(ctx, team, "incident "+id)
}

func actor(ctx context.Context) string { return auth.Actor(ctx) }

// validID checks an incident id is a UUID before it reaches the database.
func validID(id string) error { return validIDField(id, "id") }

func validIDField(id, field string) error {
	if id == "" {
		return server.InvalidArgument("missing incident id", server.FieldViolation{Field: field, Description: "is required"})
	}
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return server.InvalidArgument("invalid incident id", server.FieldViolation{Field: field, Description: fmt.Sprintf("%q is not a UUID", id)})
	}
	return nil
}

// toStatus maps monitor's sentinels to their codes; invalid silences and
// page tokens are statuses already (*server.BadRequestError), and the error
// interceptor (pkg/server) answers the rest.
func toStatus(err error) error {
	switch {
	case errors.Is(err, incident.ErrNotFound), errors.Is(err, silence.ErrNotFound), errors.Is(err, escalation.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, incident.ErrResolved), errors.Is(err, silence.ErrExpired), errors.Is(err, escalation.ErrFromFile),
		errors.Is(err, escalation.ErrTeamChange), errors.Is(err, escalation.ErrNoPolicy), errors.Is(err, escalation.ErrExhausted),
		errors.Is(err, inhibit.ErrFromFile):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, inhibit.ErrVersion):
		return status.Error(codes.Aborted, err.Error())
	case errors.Is(err, escalation.ErrExists):
		return status.Error(codes.AlreadyExists, err.Error())
	}
	return err
}
