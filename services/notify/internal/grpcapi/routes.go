package grpcapi

import (
	"context"
	"slices"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/auth"
	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
	"github.com/vigil-ops/vigil/services/notify/route"
)

// maxHistory bounds the versions GetRoutes returns.
const maxHistory = 100

// Routes is what RouteService serves, from notify.
type Routes interface {
	// History is the last n versions, the one in force first.
	History(ctx context.Context, n int) ([]postgres.RoutingVersion, error)
	// Apply makes cfg the version after version, applied by by.
	Apply(ctx context.Context, cfg *notifyv1.RoutingConfig, version int64, by string) (postgres.RoutingVersion, error)
	// Test is where e would go by the routes in force: their version, the
	// routes it matches and the channels that would hear.
	Test(ctx context.Context, e route.Event) (int64, []route.Match, []string, error)
	// File is VIGIL_ROUTES_FILE, "" when the API is in charge.
	File() string
}

// RouteServer implements notifyv1.RouteServiceServer.
type RouteServer struct {
	notifyv1.UnimplementedRouteServiceServer
	routes Routes
}

// NewRouteServer returns RouteService over routes.
func NewRouteServer(routes Routes) *RouteServer { return &RouteServer{routes: routes} }

func version(v postgres.RoutingVersion) *notifyv1.RoutingVersion {
	return &notifyv1.RoutingVersion{
		Version: v.Version, Config: v.Config, AppliedBy: v.AppliedBy, AppliedAt: timestamppb.New(v.AppliedAt),
	}
}

// GetRoutes implements the RPC.
func (s *RouteServer) GetRoutes(ctx context.Context, r *notifyv1.GetRoutesRequest) (*notifyv1.GetRoutesResponse, error) {
	if r.GetHistory() < 0 || r.GetHistory() > maxHistory {
		return nil, server.InvalidArgument("invalid history", server.FieldViolation{Field: "history", Description: "must be between 0 and 100"})
	}
	h, err := s.routes.History(ctx, int(r.GetHistory())+1)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &notifyv1.GetRoutesResponse{File: s.routes.File()}
	for i, v := range h {
		if i == 0 {
			out.Current = version(v)
			continue
		}
		out.History = append(out.History, version(v))
	}
	return out, nil
}

// ApplyRoutes implements the RPC.
func (s *RouteServer) ApplyRoutes(ctx context.Context, r *notifyv1.ApplyRoutesRequest) (*notifyv1.ApplyRoutesResponse, error) {
	if r.GetVersion() < 0 {
		return nil, server.InvalidArgument("invalid version", server.FieldViolation{Field: "version", Description: "must not be negative"})
	}
	v, err := s.routes.Apply(ctx, r.GetConfig(), r.GetVersion(), auth.Actor(ctx))
	if err != nil {
		return nil, toStatus(err)
	}
	return &notifyv1.ApplyRoutesResponse{Applied: version(v)}, nil
}

// TestRoutes implements the RPC.
func (s *RouteServer) TestRoutes(ctx context.Context, r *notifyv1.TestRoutesRequest) (*notifyv1.TestRoutesResponse, error) {
	e := route.Event{
		Kind: route.Kind(r.GetKind()), Team: r.GetTeam(), App: r.GetApp(), Namespace: r.GetNamespace(),
		Priority: r.GetPriority(), Severity: r.GetSeverity(), Labels: r.GetLabels(),
	}
	if e.Kind == "" {
		e.Kind = route.IncidentOpened
	}
	var bad server.BadRequestError
	if !slices.Contains(route.Kinds, e.Kind) {
		bad.Addf("kind", "unknown kind %q: want one of %v", e.Kind, route.Kinds)
	}
	if e.Priority != "" && !slices.Contains(route.Priorities, e.Priority) {
		bad.Addf("priority", "%q: want one of %v", e.Priority, route.Priorities)
	}
	if e.Severity != "" && !slices.Contains(route.Severities, e.Severity) {
		bad.Addf("severity", "%q: want one of %v", e.Severity, route.Severities)
	}
	if err := bad.Err("invalid test event"); err != nil {
		return nil, err
	}
	v, ms, channels, err := s.routes.Test(ctx, e)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &notifyv1.TestRoutesResponse{Version: v, Channels: channels}
	for _, m := range ms {
		rm := &notifyv1.RouteMatch{
			Path: m.Path, Name: m.Name, Receivers: m.Receivers, Why: m.Why,
			Language: m.Language, TimeZone: m.TimeZone, Templates: m.Templates,
		}
		if m.RepeatInterval > 0 {
			rm.RepeatInterval = m.RepeatInterval.String()
		}
		out.Matches = append(out.Matches, rm)
	}
	return out, nil
}
