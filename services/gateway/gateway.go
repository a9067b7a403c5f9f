// Package gateway is Vigil's front door: it authenticates every caller,
// takes alerts in (webhooks, gRPC, REST) and stores them on the bus, and
// serves the public API, forwarding to the services that own the data.
package gateway

import (
	"context"
	"errors"
	"log/slog"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway/internal/grpcapi"
	"github.com/vigil-ops/vigil/services/gateway/internal/ingest"
	"github.com/vigil-ops/vigil/services/gateway/internal/webhook"

	"google.golang.org/grpc"
)

// Options configure the gateway.
type Options struct {
	// WebhookMaxBytes bounds a webhook body (default 8 MiB).
	WebhookMaxBytes int64
}

// Validate reports options a user must fix.
func (o Options) Validate() error {
	if o.WebhookMaxBytes < 0 {
		return errors.New("VIGIL_WEBHOOK_MAX_BYTES: must not be negative")
	}
	return nil
}

// Deps are what the gateway runs on.
type Deps struct {
	Auth      auth.Authenticator
	Publisher *bus.Publisher
	// Incidents serves IncidentService: monitor itself in one process, or
	// a forwarder (NewIncidentForwarder) to a monitor elsewhere.
	Incidents monitorv1.IncidentServiceServer
	// Silences serves SilenceService, like Incidents (NewSilenceForwarder).
	Silences monitorv1.SilenceServiceServer
	// Apps and Clusters serve the deploy service's API: the service itself
	// in one process, or forwarders (NewAppForwarder, NewClusterForwarder).
	Apps     deployv1.AppServiceServer
	Clusters deployv1.ClusterServiceServer
	Logger   *slog.Logger
}

// Service is the gateway.
type Service struct {
	opts     Options
	deps     Deps
	ingester *ingest.Ingester
}

// New returns the gateway.
func New(opts Options, deps Deps) (*Service, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.WebhookMaxBytes == 0 {
		opts.WebhookMaxBytes = 8 << 20
	}
	deps.Logger = deps.Logger.With("service", "gateway")
	// Concurrent webhooks share one atomic batch, and so one fsync.
	return &Service{opts: opts, deps: deps, ingester: ingest.New(bus.NewBatcher(deps.Publisher, ingest.Producer))}, nil
}

// NewIncidentForwarder returns an IncidentService that calls monitor over
// conn as the original caller.
func NewIncidentForwarder(conn grpc.ClientConnInterface) monitorv1.IncidentServiceServer {
	return grpcapi.NewIncidentForwarder(conn)
}

// NewSilenceForwarder returns a SilenceService that calls monitor over
// conn as the original caller.
func NewSilenceForwarder(conn grpc.ClientConnInterface) monitorv1.SilenceServiceServer {
	return grpcapi.NewSilenceForwarder(conn)
}

// NewAppForwarder returns an AppService that calls the deploy service over
// conn as the original caller.
func NewAppForwarder(conn grpc.ClientConnInterface) deployv1.AppServiceServer {
	return grpcapi.NewAppForwarder(conn)
}

// NewClusterForwarder returns a ClusterService that calls the deploy
// service over conn as the original caller.
func NewClusterForwarder(conn grpc.ClientConnInterface) deployv1.ClusterServiceServer {
	return grpcapi.NewClusterForwarder(conn)
}

// Register adds the public gRPC API to srv, its REST mapping to srv's
// gateway mux (through srv's own gRPC listener, so REST passes the same
// authentication), and the webhooks. Call after srv.Listen.
func (s *Service) Register(ctx context.Context, srv *server.Server) error {
	gatewayv1.RegisterAlertServiceServer(srv.GRPC, grpcapi.NewAlertServer(s.ingester))
	if s.deps.Incidents != nil {
		monitorv1.RegisterIncidentServiceServer(srv.GRPC, s.deps.Incidents)
	}
	if s.deps.Silences != nil {
		monitorv1.RegisterSilenceServiceServer(srv.GRPC, s.deps.Silences)
	}
	if s.deps.Apps != nil {
		deployv1.RegisterAppServiceServer(srv.GRPC, s.deps.Apps)
	}
	if s.deps.Clusters != nil {
		deployv1.RegisterClusterServiceServer(srv.GRPC, s.deps.Clusters)
	}
	conn, err := srv.SelfConn()
	if err != nil {
		return err
	}
	for _, register := range registerREST {
		if err := register(ctx, srv.Gateway, conn); err != nil {
			return err
		}
	}
	srv.Handle("POST /api/v1/webhooks/alertmanager", &webhook.Alertmanager{
		Auth: s.deps.Auth, Ingester: s.ingester, MaxBytes: s.opts.WebhookMaxBytes, Log: s.deps.Logger,
	})
	return nil
}

// Run has nothing of its own to run: the gateway is its listeners. It waits
// for ctx so it composes like the other services.
func (s *Service) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
