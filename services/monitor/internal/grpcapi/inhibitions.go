package grpcapi

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/db"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/monitor/internal/inhibit"
	"github.com/vigil-ops/vigil/services/monitor/internal/postgres"
)

// InhibitionServer implements monitorv1.InhibitionServiceServer.
type InhibitionServer struct {
	monitorv1.UnimplementedInhibitionServiceServer
	pool *pgxpool.Pool
	now  func() time.Time
}

// NewInhibitionServer returns the inhibition rules' API.
func NewInhibitionServer(pool *pgxpool.Pool, now func() time.Time) *InhibitionServer {
	return &InhibitionServer{pool: pool, now: now}
}

// GetInhibitionRules implements the RPC.
func (s *InhibitionServer) GetInhibitionRules(ctx context.Context, _ *monitorv1.GetInhibitionRulesRequest) (*monitorv1.GetInhibitionRulesResponse, error) {
	r, err := postgres.GetInhibitionRules(ctx, s.pool)
	if err != nil {
		return nil, err
	}
	return &monitorv1.GetInhibitionRulesResponse{Rules: inhibitionRules(r)}, nil
}

// ApplyInhibitionRules implements the RPC.
func (s *InhibitionServer) ApplyInhibitionRules(ctx context.Context, req *monitorv1.ApplyInhibitionRulesRequest) (*monitorv1.ApplyInhibitionRulesResponse, error) {
	rules := make([]inhibit.Rule, len(req.GetRules()))
	for i, r := range req.GetRules() {
		rules[i] = inhibit.Rule{SourceMatchers: r.GetSourceMatchers(), TargetMatchers: r.GetTargetMatchers(), Equal: r.GetEqual()}
	}
	set, err := inhibit.Compile(rules)
	if err != nil {
		return nil, renameRules(err)
	}
	var out *postgres.InhibitionRules
	err = db.InTx(ctx, s.pool, func(tx pgx.Tx) (err error) {
		out, err = postgres.SetInhibitionRules(ctx, tx, set, req.GetVersion(), false, actor(ctx), s.now())
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &monitorv1.ApplyInhibitionRulesResponse{Rules: inhibitionRules(out)}, nil
}

// renameRules names the violations' fields as the request does
// (rules[0].source_matchers[1]).
func renameRules(err error) error {
	var bad *server.BadRequestError
	if !errors.As(err, &bad) {
		return err
	}
	var out server.BadRequestError
	for _, v := range bad.Violations {
		out.Add(strings.Replace(v.Field, "inhibit_rules", "rules", 1), v.Description)
	}
	return out.Err("invalid inhibition rules")
}

func inhibitionRules(r *postgres.InhibitionRules) *monitorv1.InhibitionRules {
	out := &monitorv1.InhibitionRules{Version: r.Version, FromFile: r.FromFile, UpdatedBy: r.UpdatedBy}
	if !r.UpdatedAt.IsZero() {
		out.UpdatedAt = timestamppb.New(r.UpdatedAt)
	}
	ids := r.Set.IDs()
	for i, rule := range r.Rules {
		out.Rules = append(out.Rules, &monitorv1.InhibitRule{
			Id: ids[i], SourceMatchers: rule.SourceMatchers, TargetMatchers: rule.TargetMatchers, Equal: rule.Equal,
		})
	}
	return out
}
