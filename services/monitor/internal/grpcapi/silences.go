package grpcapi

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/appteam"
	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/db"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/pkg/subject"
	"github.com/vigil-ops/vigil/services/monitor/internal/postgres"
	"github.com/vigil-ops/vigil/services/monitor/internal/silence"
)

// SilenceServer implements monitorv1.SilenceServiceServer.
type SilenceServer struct {
	monitorv1.UnimplementedSilenceServiceServer
	pool   *pgxpool.Pool
	store  postgres.Silences
	limits silence.Limits
}

// NewSilenceServer returns the silence API; limits bound each silence
// (zero: silence.DefaultLimits).
func NewSilenceServer(pool *pgxpool.Pool, limits silence.Limits) *SilenceServer {
	return &SilenceServer{pool: pool, limits: limits}
}

// owner is the team a new silence with matchers belongs to. A caller of
// every team may silence anything (the team of its namespace matcher, if
// any, owns it); anyone else must confine it with namespace="NS" to a
// namespace of one of their teams (or of no team, for the default team),
// as pkg/subject decides whose a namespace is: a matcher on an alert's
// app label confines nothing (the sender chooses labels).
func (s *SilenceServer) owner(ctx context.Context, matchers []string) (string, error) {
	p, ok := auth.FromContext(ctx)
	namespaces := silence.Namespaces(matchers)
	var ix *subject.Index
	if len(namespaces) > 0 {
		var err error
		if ix, err = appteam.Index(ctx, s.pool, namespaces, nil); err != nil {
			return "", toStatus(err)
		}
	}
	if !ok || p.AllTeams {
		if len(namespaces) == 0 {
			return "", nil
		}
		return ix.Resolve(map[string]string{"namespace": namespaces[0]}).GetTeam(), nil
	}
	var others []string
	for _, ns := range namespaces {
		team := ix.Resolve(map[string]string{"namespace": ns}).GetTeam()
		if p.Reaches(team) {
			return team, nil
		}
		others = append(others, fmt.Sprintf("namespace %s is %s", ns, teamName(team)))
	}
	msg := fmt.Sprintf("a silence of %s must be confined to a namespace of its teams' (%s): add a matcher namespace=\"NS\" for one of them",
		p, strings.Join(p.Teams, ", "))
	if len(others) > 0 {
		msg += "; " + strings.Join(others, ", ")
	}
	return "", server.WithViolations(status.New(codes.PermissionDenied, msg), server.FieldViolation{
		Field: "matchers", Description: "needs namespace=\"NS\" with NS of team " + strings.Join(p.Teams, " or "),
	}).Err()
}

func teamName(team string) string {
	if team == "" {
		return "no team's"
	}
	return "team " + team + "'s"
}

// CreateSilence implements the RPC. The creator is the caller.
func (s *SilenceServer) CreateSilence(ctx context.Context, req *monitorv1.CreateSilenceRequest) (*monitorv1.CreateSilenceResponse, error) {
	now := time.Now()
	var bad server.BadRequestError
	p := silence.Params{Matchers: req.GetMatchers(), CreatedBy: actor(ctx), Comment: req.GetComment()}
	if ts := req.GetStartsAt(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			bad.Add("starts_at", "is not a valid timestamp")
		} else {
			p.StartsAt = ts.AsTime()
		}
	}
	start := p.StartsAt
	if start.IsZero() {
		start = now
	}
	switch ends, d := req.GetEndsAt(), req.GetDuration(); {
	case ends != nil && d != nil:
		bad.Add("duration", "set ends_at or duration, not both")
	case ends != nil:
		if err := ends.CheckValid(); err != nil {
			bad.Add("ends_at", "is not a valid timestamp")
		} else {
			p.EndsAt = ends.AsTime()
		}
	case d != nil:
		if err := d.CheckValid(); err != nil || d.AsDuration() <= 0 {
			bad.Add("duration", "must be positive")
		} else {
			p.EndsAt = start.Add(d.AsDuration())
		}
	default:
		bad.Add("ends_at", "ends_at or duration is required")
	}
	if sc := req.GetSchedule(); sc != nil {
		p.Schedule = &silence.Schedule{TimeZone: sc.GetTimeZone()}
		for _, w := range sc.GetWindows() {
			p.Schedule.Windows = append(p.Schedule.Windows, silence.Window{Days: w.GetDays(), Start: w.GetStart(), End: w.GetEnd()})
		}
	}
	if err := bad.Err("invalid silence"); err != nil {
		return nil, err
	}
	team, err := s.owner(ctx, req.GetMatchers())
	if err != nil {
		return nil, err
	}
	p.Team, p.Limits = team, s.limits
	sil, err := silence.New(p, now)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.store.Create(ctx, s.pool, sil); err != nil {
		return nil, toStatus(err)
	}
	return &monitorv1.CreateSilenceResponse{Silence: silenceProto(sil, now)}, nil
}

// GetSilence implements the RPC.
func (s *SilenceServer) GetSilence(ctx context.Context, req *monitorv1.GetSilenceRequest) (*monitorv1.GetSilenceResponse, error) {
	if err := validSilenceID(req.GetId()); err != nil {
		return nil, err
	}
	sil, err := s.store.Get(ctx, s.pool, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &monitorv1.GetSilenceResponse{Silence: silenceProto(sil, time.Now())}, nil
}

// ListSilences implements the RPC.
func (s *SilenceServer) ListSilences(ctx context.Context, req *monitorv1.ListSilencesRequest) (*monitorv1.ListSilencesResponse, error) {
	size, err := pageSize(req.GetPageSize(), "page_size")
	if err != nil {
		return nil, err
	}
	var f postgres.SilenceFilter
	for i, st := range req.GetStates() {
		state, ok := silenceStates[st]
		if !ok {
			return nil, server.InvalidArgument("invalid state", server.FieldViolation{
				Field: fmt.Sprintf("states[%d]", i), Description: "want pending, active or expired",
			})
		}
		f.States = append(f.States, state)
	}
	now := time.Now()
	ss, next, err := s.store.List(ctx, s.pool, f, now, size, req.GetPageToken())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &monitorv1.ListSilencesResponse{NextPageToken: next, Silences: make([]*monitorv1.Silence, len(ss))}
	for i, sil := range ss {
		resp.Silences[i] = silenceProto(sil, now)
	}
	return resp, nil
}

// ExpireSilence implements the RPC: the silence ends now, on behalf of the
// caller.
func (s *SilenceServer) ExpireSilence(ctx context.Context, req *monitorv1.ExpireSilenceRequest) (*monitorv1.ExpireSilenceResponse, error) {
	if err := validSilenceID(req.GetId()); err != nil {
		return nil, err
	}
	now := time.Now()
	var sil *silence.Silence
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) (err error) {
		had, err := s.store.Get(ctx, tx, req.GetId())
		if err != nil {
			return err
		}
		if err := auth.CheckTeam(ctx, had.Team(), "silence "+req.GetId()); err != nil {
			return err
		}
		sil, err = s.store.Expire(ctx, tx, req.GetId(), actor(ctx), now)
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &monitorv1.ExpireSilenceResponse{Silence: silenceProto(sil, now)}, nil
}

var silenceStates = map[monitorv1.SilenceState]silence.State{
	monitorv1.SilenceState_SILENCE_STATE_PENDING: silence.StatePending,
	monitorv1.SilenceState_SILENCE_STATE_ACTIVE:  silence.StateActive,
	monitorv1.SilenceState_SILENCE_STATE_EXPIRED: silence.StateExpired,
}

func silenceStateProto(st silence.State) monitorv1.SilenceState {
	for k, v := range silenceStates {
		if v == st {
			return k
		}
	}
	return monitorv1.SilenceState_SILENCE_STATE_UNSPECIFIED
}

// silenceProto is sil as the API shows it, in its state at now.
func silenceProto(sil *silence.Silence, now time.Time) *monitorv1.Silence {
	r := sil.Record()
	out := &monitorv1.Silence{
		Id: r.ID, Matchers: r.Matchers, StartsAt: timestamppb.New(r.StartsAt), EndsAt: timestamppb.New(r.EndsAt),
		CreatedBy: r.CreatedBy, Comment: r.Comment, CreatedAt: timestamppb.New(r.CreatedAt),
		ExpiredBy: r.ExpiredBy, State: silenceStateProto(sil.State(now)), Team: r.Team,
	}
	if !r.ExpiredAt.IsZero() {
		out.ExpiredAt = timestamppb.New(r.ExpiredAt)
	}
	if r.Schedule != nil {
		out.Schedule = &monitorv1.Schedule{TimeZone: r.Schedule.TimeZone}
		for _, w := range r.Schedule.Windows {
			out.Schedule.Windows = append(out.Schedule.Windows, &monitorv1.Window{Days: w.Days, Start: w.Start, End: w.End})
		}
	}
	return out
}

// validSilenceID checks a silence id is a UUID before it reaches the
// database.
func validSilenceID(id string) error {
	if id == "" {
		return server.InvalidArgument("missing silence id", server.FieldViolation{Field: "id", Description: "is required"})
	}
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return server.InvalidArgument("invalid silence id", server.FieldViolation{Field: "id", Description: fmt.Sprintf("%q is not a UUID", id)})
	}
	return nil
}
