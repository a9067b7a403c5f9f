// Package monitor is the service that turns alerts into incidents: it
// consumes alert.fired and alert.resolved, deduplicates and groups them in
// its schema "monitor", and announces incident.* events through its outbox.
package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/common/model"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/services/monitor/internal/grpcapi"
	"github.com/vigil-ops/vigil/services/monitor/internal/incident"
	"github.com/vigil-ops/vigil/services/monitor/internal/postgres"
)

// Schema is monitor's Postgres schema.
const Schema = "monitor"

// Options configure monitor.
type Options struct {
	// GroupBy labels make an incident's group key (default alertname,
	// namespace; "..." for all labels).
	GroupBy []string
	// DedupWindow: a resolved incident whose alert fires again within it
	// reopens (default 10m).
	DedupWindow time.Duration
	// BatchSize is the most alerts handled in one transaction (default 100).
	BatchSize int
}

// Validate reports options a user must fix.
func (o Options) Validate() error {
	if o.DedupWindow < 0 {
		return errors.New("VIGIL_DEDUP_WINDOW: must not be negative")
	}
	for _, l := range o.GroupBy {
		if l != incident.GroupAll && !model.UTF8Validation.IsValidLabelName(l) {
			return fmt.Errorf("VIGIL_GROUP_BY: %q is not a label name", l)
		}
	}
	return nil
}

// Deps are what monitor runs on.
type Deps struct {
	Pool      *pgxpool.Pool
	JetStream jetstream.JetStream
	Publisher *bus.Publisher
	Metrics   *bus.Metrics
	Logger    *slog.Logger
}

// Service is a running monitor.
type Service struct {
	deps       Deps
	opts       Options
	correlator *incident.Correlator
	consumer   *bus.Consumer
	relay      *outbox.Relay
	api        *grpcapi.IncidentServer
}

// New migrates monitor's schema and builds the service.
func New(ctx context.Context, opts Options, deps Deps) (*Service, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	log := deps.Logger.With("service", "monitor")
	if err := outbox.Migrate(ctx, deps.Pool, Schema); err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, deps.Pool, Schema, db.Sub(postgres.Migrations, "migrations")); err != nil {
		return nil, err
	}
	c := incident.NewCorrelator(postgres.Store{}, incident.Options{GroupBy: opts.GroupBy, DedupWindow: opts.DedupWindow}, log)
	router := bus.NewRouter[pgx.Tx]()
	bus.On(router, c.AlertFired)
	bus.On(router, c.AlertResolved)
	consumer, err := bus.NewConsumer(deps.JetStream, bus.ConsumerConfig{
		Name:      "monitor",
		Subjects:  router.Subjects(),
		BatchSize: opts.BatchSize,
	}, outbox.NewHandler(deps.Pool, "monitor", router), log, deps.Metrics)
	if err != nil {
		return nil, err
	}
	return &Service{
		deps: deps, opts: opts, correlator: c, consumer: consumer,
		relay: outbox.NewRelay(deps.Pool, deps.Publisher, outbox.RelayOptions{Schema: Schema}, log),
		api:   grpcapi.NewIncidentServer(deps.Pool, c),
	}, nil
}

// Register adds monitor's gRPC API to s.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	monitorv1.RegisterIncidentServiceServer(r, s.api)
}

// IncidentServer is monitor's API, for a gateway in the same process.
func (s *Service) IncidentServer() monitorv1.IncidentServiceServer { return s.api }

// Run consumes alerts and relays incident events until ctx is cancelled.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.consumer.Run(ctx) })
	g.Go(func() error { return s.relay.Run(ctx) })
	return g.Wait()
}
