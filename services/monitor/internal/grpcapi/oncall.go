package grpcapi

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/db"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/monitor/internal/escalation"
)

// OnCallServer implements monitorv1.OnCallServiceServer. Changes are for
// the schedule's team (auth.CheckTeam): an operator edits their own team's
// schedules, an admin every one; everyone authenticated reads them.
type OnCallServer struct {
	monitorv1.UnimplementedOnCallServiceServer
	pool      *pgxpool.Pool
	now       func() time.Time
	schedules documents[*monitorv1.OnCallSchedule]
}

// NewOnCallServer returns the on-call API.
func NewOnCallServer(pool *pgxpool.Pool, clock escalation.Clock) *OnCallServer {
	return &OnCallServer{pool: pool, now: clock.Now, schedules: documents[*monitorv1.OnCallSchedule]{
		pool: pool, now: clock.Now, store: escalation.Schedules, kind: "schedule", field: "schedule.", validate: escalation.ValidateSchedule,
	}}
}

// CreateSchedule implements the RPC.
func (s *OnCallServer) CreateSchedule(ctx context.Context, req *monitorv1.CreateScheduleRequest) (*monitorv1.CreateScheduleResponse, error) {
	sch, err := s.schedules.put(ctx, req.GetSchedule(), true)
	if err != nil {
		return nil, err
	}
	return &monitorv1.CreateScheduleResponse{Schedule: sch}, nil
}

// UpdateSchedule implements the RPC.
func (s *OnCallServer) UpdateSchedule(ctx context.Context, req *monitorv1.UpdateScheduleRequest) (*monitorv1.UpdateScheduleResponse, error) {
	sch, err := s.schedules.put(ctx, req.GetSchedule(), false)
	if err != nil {
		return nil, err
	}
	return &monitorv1.UpdateScheduleResponse{Schedule: sch}, nil
}

// GetSchedule implements the RPC.
func (s *OnCallServer) GetSchedule(ctx context.Context, req *monitorv1.GetScheduleRequest) (*monitorv1.GetScheduleResponse, error) {
	sch, err := s.schedules.get(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	return &monitorv1.GetScheduleResponse{Schedule: sch}, nil
}

// ListSchedules implements the RPC.
func (s *OnCallServer) ListSchedules(ctx context.Context, req *monitorv1.ListSchedulesRequest) (*monitorv1.ListSchedulesResponse, error) {
	ss, err := s.schedules.list(ctx, req.GetTeam())
	if err != nil {
		return nil, err
	}
	return &monitorv1.ListSchedulesResponse{Schedules: ss}, nil
}

// DeleteSchedule implements the RPC.
func (s *OnCallServer) DeleteSchedule(ctx context.Context, req *monitorv1.DeleteScheduleRequest) (*monitorv1.DeleteScheduleResponse, error) {
	if err := s.schedules.delete(ctx, req.GetName()); err != nil {
		return nil, err
	}
	return &monitorv1.DeleteScheduleResponse{}, nil
}

// AddOverride implements the RPC.
func (s *OnCallServer) AddOverride(ctx context.Context, req *monitorv1.AddOverrideRequest) (*monitorv1.AddOverrideResponse, error) {
	if err := oneOf(req.GetSchedule(), req.GetTeam()); err != nil {
		return nil, err
	}
	if req.GetOverride() == nil {
		return nil, server.InvalidArgument("missing override", server.FieldViolation{Field: "override", Description: "is required"})
	}
	var out *monitorv1.OnCallSchedule
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		sch, err := s.schedule(ctx, tx, req.GetSchedule(), req.GetTeam())
		if err != nil {
			return err
		}
		if err := auth.CheckTeam(ctx, sch.GetTeam(), "schedule "+sch.GetName()); err != nil {
			return err
		}
		sch.Overrides = append(sch.Overrides, req.GetOverride())
		if err := escalation.ValidateSchedule(sch, ""); err != nil {
			return overrideViolations(err, len(sch.GetOverrides())-1)
		}
		out, err = escalation.Schedules.Put(ctx, tx, sch, false, false, actor(ctx), s.now())
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &monitorv1.AddOverrideResponse{Schedule: out}, nil
}

// schedule is the named schedule, or team's default one.
func (s *OnCallServer) schedule(ctx context.Context, q escalation.Querier, name, team string) (*monitorv1.OnCallSchedule, error) {
	if name != "" {
		return escalation.Schedules.Get(ctx, q, name)
	}
	return escalation.TeamSchedule(ctx, q, team)
}

// WhoIsOnCall implements the RPC.
func (s *OnCallServer) WhoIsOnCall(ctx context.Context, req *monitorv1.WhoIsOnCallRequest) (*monitorv1.WhoIsOnCallResponse, error) {
	if err := oneOf(req.GetSchedule(), req.GetTeam()); err != nil {
		return nil, err
	}
	at := s.now()
	if req.GetAt() != nil {
		at = req.GetAt().AsTime()
	}
	sch, err := s.schedule(ctx, s.pool, req.GetSchedule(), req.GetTeam())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &monitorv1.WhoIsOnCallResponse{Schedule: sch.GetName(), Zone: sch.GetZone()}
	// The shift around at: shifts over a week either side, cut there.
	for _, sh := range escalation.ScheduleOf(sch).Shifts(at.Add(-shiftHorizon), at.Add(shiftHorizon)) {
		if !sh.Start.After(at) && sh.End.After(at) {
			resp.User, resp.ShiftStart, resp.ShiftEnd = sh.Who, timestamppb.New(sh.Start), timestamppb.New(sh.End)
		}
	}
	return resp, nil
}

// shiftHorizon is how far WhoIsOnCall looks for a shift's ends.
const shiftHorizon = 7 * 24 * time.Hour

// maxShiftRange bounds ListShifts.
const maxShiftRange = 92 * 24 * time.Hour

// ListShifts implements the RPC.
func (s *OnCallServer) ListShifts(ctx context.Context, req *monitorv1.ListShiftsRequest) (*monitorv1.ListShiftsResponse, error) {
	if err := oneOf(req.GetSchedule(), req.GetTeam()); err != nil {
		return nil, err
	}
	var bad server.BadRequestError
	from, to := req.GetFrom().AsTime(), req.GetTo().AsTime()
	if req.GetFrom() == nil {
		bad.Add("from", "is required")
	}
	if req.GetTo() == nil {
		bad.Add("to", "is required")
	} else if !to.After(from) || to.Sub(from) > maxShiftRange {
		bad.Add("to", "must be after from, by at most 92 days")
	}
	if err := bad.Err("invalid range"); err != nil {
		return nil, err
	}
	sch, err := s.schedule(ctx, s.pool, req.GetSchedule(), req.GetTeam())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &monitorv1.ListShiftsResponse{Schedule: sch.GetName(), Zone: sch.GetZone()}
	for _, sh := range escalation.ScheduleOf(sch).Shifts(from, to) {
		resp.Shifts = append(resp.Shifts, &monitorv1.Shift{User: sh.Who, Start: timestamppb.New(sh.Start), End: timestamppb.New(sh.End)})
	}
	return resp, nil
}

func required(field, v string) error {
	if v == "" {
		return server.InvalidArgument("missing "+field, server.FieldViolation{Field: field, Description: "is required"})
	}
	return nil
}

// oneOf checks that exactly one of a schedule and a team is named.
func oneOf(schedule, team string) error {
	if (schedule == "") == (team == "") {
		return server.InvalidArgument("name a schedule or a team", server.FieldViolation{Field: "schedule", Description: "give a schedule or a team, one of them"})
	}
	return nil
}

// overrideViolations names an override's violations as the request's
// fields ("override.end"), and the schedule's other ones as they are.
func overrideViolations(err error, i int) error {
	perr, ok := err.(*server.BadRequestError) //nolint:errorlint // ValidateSchedule returns it unwrapped
	if !ok {
		return err
	}
	prefix := fmt.Sprintf("overrides[%d].", i)
	var bad server.BadRequestError
	for _, v := range perr.Violations {
		if rest, ok := strings.CutPrefix(v.Field, prefix); ok {
			v.Field = "override." + rest
		}
		bad.Add(v.Field, v.Description)
	}
	return bad.Err("invalid override")
}
