// Package repair is the repair service: on analysis.completed it records
// a repair of the proposal, plans it against the live cluster, and lets
// its guardrails decide — run it (auto), ask a person (needs approval) or
// refuse it (blocked) — with every reason. It executes through one
// executor per action (internal/action), as Vigil's repair identity in
// the cluster, verifies that the workload became healthy, undoes and
// escalates what did not work, and keeps every step in the repair's
// timeline. It acts only on fresh analyses, never on history.
package repair

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"k8s.io/client-go/kubernetes"

	"github.com/vigil-ops/vigil/pkg/appteam"
	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/pkg/reserved"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
	"github.com/vigil-ops/vigil/services/repair/internal/action/deletepod"
	"github.com/vigil-ops/vigil/services/repair/internal/action/memory"
	"github.com/vigil-ops/vigil/services/repair/internal/action/restart"
	"github.com/vigil-ops/vigil/services/repair/internal/action/rollback"
	"github.com/vigil-ops/vigil/services/repair/internal/action/scale"
	"github.com/vigil-ops/vigil/services/repair/internal/grpcapi"
	"github.com/vigil-ops/vigil/services/repair/internal/guard"
	"github.com/vigil-ops/vigil/services/repair/internal/lifecycle"
	"github.com/vigil-ops/vigil/services/repair/internal/postgres"
)

// Schema is the repair service's Postgres schema.
const Schema = "repair"

// Options tune the service.
type Options struct {
	// MaxEventAge: an analysis older than this is not acted on (10 min):
	// a repair decided on stale evidence could hurt.
	MaxEventAge time.Duration
	// Workers plan, execute and verify that many repairs at once (2).
	Workers int
	// Lease is how long a repair stays its worker's without word from it
	// (15 s): the worker renews it every third of that while it plans,
	// executes, waits for a rollout or verifies, so one that died leaves
	// its repair to another worker, of any replica, within this long.
	Lease time.Duration
	// GuardrailsFile, when set, holds the base guardrails (YAML or JSON,
	// the API's field names); the API's settings apply over them.
	GuardrailsFile string
	// Retention: finished repairs older than this are deleted (90 days).
	Retention time.Duration
	// ApprovalSnooze is how long "Later" snoozes an approval before it is
	// asked again (30 min; never past the approval's expiry).
	ApprovalSnooze time.Duration
	// Namespace is the namespace Vigil runs in (VIGIL_NAMESPACE), and
	// ReservedNamespaces the operator's reserved namespaces
	// (VIGIL_RESERVED_NAMESPACES): with the built-in ones (kube-*,
	// vigil-system, ingress-nginx, monitoring) no repair touches them,
	// whatever the guardrails allow (pkg/reserved).
	Namespace          string
	ReservedNamespaces []string
}

// Validate reports options a user must fix.
func (o Options) Validate() error {
	if o.MaxEventAge < 0 || o.Workers < 0 || o.Retention < 0 || o.Lease < 0 {
		return errors.New("VIGIL_REPAIR_*: values must not be negative")
	}
	if o.ApprovalSnooze != 0 && (o.ApprovalSnooze < time.Second || o.ApprovalSnooze > 24*time.Hour) {
		return errors.New("VIGIL_APPROVAL_SNOOZE: must be from 1s to 24h, like 30m")
	}
	_, err := reserved.New(o.Namespace, o.ReservedNamespaces)
	return err
}

// Clusters gives clients of the registered clusters acting as Vigil's
// repair identity (ADR 8: least privilege, short-lived tokens; the
// deploy service's Repairers in one process).
type Clusters interface {
	Repairer(ctx context.Context, cluster string) (kubernetes.Interface, error)
	DefaultCluster(ctx context.Context) (string, error)
}

// Apps changes Vigil's own apps through the deploy service, so that
// their spec, their history and the cluster agree and the next
// deployment keeps the repair (the deploy service in one process). Each
// waits for the rollout and is idempotent by repairID.
type Apps interface {
	// RollbackForRepair rolls app back to its previous revision.
	RollbackForRepair(ctx context.Context, app, repairID string) (*deployv1.Deployment, error)
	// ScaleForRepair sets app's replica count.
	ScaleForRepair(ctx context.Context, app, repairID string, replicas int32) (*deployv1.Deployment, error)
	// SetMemoryLimitForRepair sets the memory limit of app's container.
	SetMemoryLimitForRepair(ctx context.Context, app, repairID, container string, limitBytes int64) (*deployv1.Deployment, error)
}

// Deps are what the service runs on.
type Deps struct {
	Pool      *pgxpool.Pool
	JetStream jetstream.JetStream
	Publisher *bus.Publisher
	Metrics   *bus.Metrics
	Logger    *slog.Logger
	// Clusters, when nil, leaves every repair blocked: there is nothing
	// to act with (said in its reasons).
	Clusters Clusters
	// Apps rolls back, scales and sets the memory of the apps Vigil
	// deploys; without it their repairs fail (they are changed only
	// through the deploy service). Any other workload is changed by the
	// executors themselves.
	Apps Apps
}

// Service is the running repair service.
type Service struct {
	opts  Options
	deps  Deps
	store *postgres.Store
	// repairs is the repository of repairs on the pool.
	repairs *postgres.Repairs
	base    guard.Settings
	// fileScopes are the file's namespace and app scopes, each layered
	// under the same scope set through the API.
	fileScopes map[string]*repairv1.Guardrails
	actions    *action.Registry
	incidents  *bus.Consumer
	analyses   *bus.Consumer
	answers    *bus.Consumer
	apps       *bus.Consumer
	relay      *outbox.Relay
	api        *grpcapi.Server
	log        *slog.Logger
	wake       chan struct{}
	now        func() time.Time
}

// Executors are the actions the service can carry out.
func Executors() *action.Registry {
	return action.NewRegistry(restart.New(), deletepod.New(), scale.New(), rollback.New(), memory.New())
}

// New migrates the schema and builds the service.
func New(ctx context.Context, opts Options, deps Deps) (*Service, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.MaxEventAge == 0 {
		opts.MaxEventAge = 10 * time.Minute
	}
	if opts.Workers == 0 {
		opts.Workers = 2
	}
	if opts.ApprovalSnooze == 0 {
		opts.ApprovalSnooze = 30 * time.Minute
	}
	if opts.Lease == 0 {
		opts.Lease = 15 * time.Second
	}
	if opts.Retention == 0 {
		opts.Retention = 90 * 24 * time.Hour
	}
	log := deps.Logger.With("service", "repair")
	base, fileScopes := guard.Defaults(), map[string]*repairv1.Guardrails{}
	if opts.GuardrailsFile != "" {
		f, err := guard.LoadFile(opts.GuardrailsFile)
		if err != nil {
			return nil, err
		}
		base, fileScopes = f.Base(), f.Scopes
	}
	res, err := reserved.New(opts.Namespace, opts.ReservedNamespaces)
	if err != nil {
		return nil, err
	}
	base.Reserved = res
	for _, m := range []func() error{
		func() error { return outbox.Migrate(ctx, deps.Pool, Schema) },
		func() error { return db.Migrate(ctx, deps.Pool, Schema, db.Sub(postgres.Migrations, "migrations")) },
		func() error { return appteam.Migrate(ctx, deps.Pool, Schema) },
	} {
		if err := m(); err != nil {
			return nil, err
		}
	}
	s := &Service{
		opts: opts, deps: deps, store: postgres.New(deps.Pool), base: base, fileScopes: fileScopes, actions: Executors(), log: log,
		wake: make(chan struct{}, opts.Workers), now: time.Now,
		relay: outbox.NewRelay(deps.Pool, deps.Publisher, outbox.RelayOptions{Schema: Schema}, log),
	}
	s.repairs = s.store.Repairs(deps.Pool)
	s.api = grpcapi.New(s.store, s)

	analyses := bus.NewRouter[pgx.Tx]()
	bus.On(analyses, s.propose)
	// A proposal is queued: wake the workers once it is committed.
	intake := outbox.NewHandler(deps.Pool, "repair-analyses", analyses).OnCommit(s.pokeN)
	s.analyses, err = bus.NewConsumer(deps.JetStream, bus.ConsumerConfig{
		Name: "repair", Subjects: analyses.Subjects(), BatchSize: 20,
		// Nothing replays history into a service that acts on the world:
		// a new consumer starts at new analyses, and one older than
		// MaxEventAge (a backlog after an outage) is not acted on.
		MaxEventAge: opts.MaxEventAge,
	}, intake, log, deps.Metrics)
	if err != nil {
		return nil, err
	}
	incidents := bus.NewRouter[pgx.Tx]()
	bus.On(incidents, s.incidentOpened)
	bus.On(incidents, s.incidentUpdated)
	s.incidents, err = bus.NewConsumer(deps.JetStream, bus.ConsumerConfig{
		Name: "repair", Subjects: incidents.Subjects(), BatchSize: 100,
		// A record, acting on nothing: the last day's incidents are those
		// an analysis may still complete for.
		StartWithin: 24 * time.Hour,
	}, outbox.NewHandler(deps.Pool, "repair-incidents", incidents), log, deps.Metrics)
	if err != nil {
		return nil, err
	}
	answers := bus.NewRouter[pgx.Tx]()
	bus.On(answers, func(ctx context.Context, tx pgx.Tx, e *eventsv1.RepairApproved) error {
		return s.answerEvent(ctx, tx, e.GetRepairId(), lifecycle.Answer{Approve: true, By: e.GetApprovedBy(), Via: e.GetChannel()})
	})
	bus.On(answers, func(ctx context.Context, tx pgx.Tx, e *eventsv1.RepairRejected) error {
		return s.answerEvent(ctx, tx, e.GetRepairId(), lifecycle.Answer{By: e.GetRejectedBy(), Via: e.GetChannel(), Reason: e.GetReason()})
	})
	answerHandler := outbox.NewHandler(deps.Pool, "repair-answers", answers).OnCommit(s.pokeN)
	s.answers, err = bus.NewConsumer(deps.JetStream, bus.ConsumerConfig{
		Name: "repair", Subjects: answers.Subjects(), BatchSize: 20,
		// An answer is for a repair waiting now; an old one would find
		// it expired anyway.
		MaxEventAge: time.Hour,
	}, answerHandler, log, deps.Metrics)
	if err != nil {
		return nil, err
	}
	if s.apps, err = appteam.NewConsumer(ctx, deps.JetStream, deps.Pool, "repair", log, deps.Metrics); err != nil {
		return nil, err
	}
	for _, c := range []*bus.Consumer{s.incidents, s.analyses, s.answers} {
		if err := c.Create(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Register adds the service's gRPC API to r.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	repairv1.RegisterRepairServiceServer(r, s.api)
}

// Server is the API, for a gateway in the same process.
func (s *Service) Server() repairv1.RepairServiceServer { return s.api }

// Run consumes, works on repairs and relays events until ctx is
// cancelled. A repair in progress at a stop is taken again once its
// lease runs out; executors make a second execution a no-op.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.incidents.Run(ctx) })
	g.Go(func() error { return s.analyses.Run(ctx) })
	g.Go(func() error { return s.answers.Run(ctx) })
	g.Go(func() error { return s.apps.Run(ctx) })
	g.Go(func() error { return s.relay.Run(ctx) })
	for range s.opts.Workers {
		g.Go(func() error { return s.work(ctx) })
	}
	g.Go(func() error { return s.expire(ctx) })
	retention := db.Retention{
		What:  "finished repairs",
		Prune: func(ctx context.Context) (int64, error) { return s.store.Prune(ctx, s.now().Add(-s.opts.Retention)) },
		Log:   s.log,
	}
	g.Go(func() error { return retention.Run(ctx) })
	return g.Wait()
}

// pokeN wakes up to n workers.
func (s *Service) pokeN(n int) {
	for range n {
		s.poke()
	}
}

func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
