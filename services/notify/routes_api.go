package notify

import (
	"context"

	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	"github.com/vigil-ops/vigil/services/notify/internal/grpcapi"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
	"github.com/vigil-ops/vigil/services/notify/route"
)

// RouteServer is RouteService, for a gateway in the same process.
func (s *Service) RouteServer() notifyv1.RouteServiceServer {
	return grpcapi.NewRouteServer(routesAPI{s})
}

// routesAPI is what RouteService serves of s.
type routesAPI struct{ s *Service }

func (a routesAPI) History(ctx context.Context, n int) ([]postgres.RoutingVersion, error) {
	return a.s.routes.store.History(ctx, n)
}

// Apply checks cfg against the channels that exist now, stores it as the
// next version and routes by it at once on this replica (the others
// within RoutesRefresh).
func (a routesAPI) Apply(ctx context.Context, cfg *notifyv1.RoutingConfig, version int64, by string) (postgres.RoutingVersion, error) {
	if a.s.opts.RoutesFile != "" {
		return postgres.RoutingVersion{}, route.ErrFileInCharge
	}
	if _, err := route.Compile(cfg, a.s.channelExists, a.s.templateSet); err != nil {
		return postgres.RoutingVersion{}, err
	}
	v, err := a.s.routes.store.Apply(ctx, cfg, version, by, routeHistory)
	if err != nil {
		return v, err
	}
	a.s.log.InfoContext(ctx, "routes applied", "version", v.Version, "applied_by", by)
	if err := a.s.loadRoutes(ctx); err != nil {
		a.s.log.WarnContext(ctx, "loading the routes just applied failed", "error", err)
	}
	return v, nil
}

// Test answers as targets would: a reply's channels are those of its
// kind that also hear of the incident's opening.
func (a routesAPI) Test(ctx context.Context, e route.Event) (int64, []route.Match, []string, error) {
	if err := a.s.loadRoutes(ctx); err != nil {
		return 0, nil, nil, err
	}
	cur := a.s.routes.current.Load()
	if cur.tree == nil {
		var all []string
		for _, ep := range a.s.dir.All() {
			all = append(all, ep.Name)
		}
		return 0, nil, all, nil
	}
	ms := matches(cur.tree, e)
	return cur.version, ms, route.Receivers(ms), nil
}

func (a routesAPI) File() string { return a.s.opts.RoutesFile }
