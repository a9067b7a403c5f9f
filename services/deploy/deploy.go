// Package deploy is the deploy service: the registry of apps and the
// clusters they run on, and their deployments. It renders an app's
// Kubernetes objects from embedded templates (framework × plan), applies
// them with server-side apply in named onboarding steps, waits for the
// rollout, and keeps every deployment as a revision that can be rolled
// back to. Secrets and kubeconfigs are sealed (AES-256-GCM) in its schema,
// "deploy".
package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/pkg/kubeaccess"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/pkg/reserved"
	"github.com/vigil-ops/vigil/pkg/seal"
	"github.com/vigil-ops/vigil/services/deploy/internal/deployer"
	"github.com/vigil-ops/vigil/services/deploy/internal/grpcapi"
	"github.com/vigil-ops/vigil/services/deploy/internal/kube"
	"github.com/vigil-ops/vigil/services/deploy/internal/ownership"
	"github.com/vigil-ops/vigil/services/deploy/internal/postgres"
	"github.com/vigil-ops/vigil/services/deploy/internal/registry"
	"github.com/vigil-ops/vigil/services/deploy/internal/render"
)

// Schema is the deploy service's Postgres schema.
const Schema = "deploy"

// Options configure the deploy service.
type Options struct {
	// EncryptionKey seals secrets and kubeconfigs (32 bytes; see
	// pkg/seal). Required.
	EncryptionKey []byte
	// DefaultCluster is where apps created without a cluster go; when
	// empty, the only registered cluster.
	DefaultCluster string
	// RolloutTimeout bounds the wait for a rollout (default 5m).
	RolloutTimeout time.Duration
	// IngressClass, ClusterIssuer: for the apps' Ingresses (cert-manager's
	// cluster issuer, default letsencrypt).
	IngressClass  string
	ClusterIssuer string
	// Concurrency is how many deployments one replica runs at once
	// (default 8).
	Concurrency int
	// ReservedNamespaces are namespace names no app may have (its name is
	// its namespace's), on top of Kubernetes' own (default, kube-*) and
	// the namespaces the apps' NetworkPolicy trusts (ingress-nginx,
	// monitoring): names, or prefixes ending in "*" such as "team-*".
	ReservedNamespaces []string
	// Namespace is the namespace Vigil itself runs in (VIGIL_NAMESPACE),
	// when it runs in a cluster it deploys to: reserved, like
	// kubeaccess.Namespace (vigil-system, where Vigil's cluster accounts
	// live), so that no app is created next to Vigil, and never granted
	// to the repair identity.
	Namespace string
	// RepairNamespaces are namespaces, besides the apps', where the repair
	// identity may act in every registered cluster
	// (VIGIL_REPAIR_NAMESPACES); none may be reserved (see
	// pkg/reserved).
	RepairNamespaces []string
	// DevCluster, when set, is registered (or its kubeconfig refreshed)
	// at start: `vigil up --kube-dev`'s control plane.
	DevCluster *Cluster
}

// Cluster is a cluster to register at start.
type Cluster struct {
	Name       string
	Kubeconfig []byte
}

// Validate reports options a user must fix.
func (o Options) Validate() error {
	var errs []error
	if len(o.EncryptionKey) != seal.KeySize {
		errs = append(errs, fmt.Errorf("VIGIL_ENCRYPTION_KEY: missing or not %d bytes (generate one with `openssl rand -base64 32`, or set VIGIL_ENCRYPTION_KEY_FILE)", seal.KeySize))
	}
	if o.RolloutTimeout < 0 {
		errs = append(errs, errors.New("VIGIL_ROLLOUT_TIMEOUT: must not be negative"))
	}
	if o.Namespace != "" && len(validation.IsDNS1123Label(o.Namespace)) > 0 {
		errs = append(errs, fmt.Errorf("VIGIL_NAMESPACE: %q is not a namespace name", o.Namespace))
	} else if _, err := o.reserved(); err != nil {
		errs = append(errs, fmt.Errorf("VIGIL_RESERVED_NAMESPACES: %w", err))
	} else if res, err := reserved.New(o.Namespace, o.ReservedNamespaces); err != nil {
		errs = append(errs, err)
	} else {
		for _, ns := range o.RepairNamespaces {
			if bad := validation.IsDNS1123Label(ns); len(bad) > 0 {
				errs = append(errs, fmt.Errorf("VIGIL_REPAIR_NAMESPACES: %q is not a namespace name", ns))
			} else if err := res.Refuse(ns); err != nil {
				errs = append(errs, fmt.Errorf("VIGIL_REPAIR_NAMESPACES: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

func (o Options) renderOptions() render.Options {
	return render.Options{IngressClass: o.IngressClass, ClusterIssuer: o.ClusterIssuer}
}

// repairReserved are the namespaces never granted to the repair
// identity.
func (o Options) repairReserved() (*reserved.Namespaces, error) {
	return reserved.New(o.Namespace, o.ReservedNamespaces)
}

func (o Options) reserved() (*ownership.Reserved, error) {
	own := []string{kubeaccess.Namespace}
	if o.Namespace != "" {
		own = append(own, o.Namespace)
	}
	return ownership.NewReserved(own, o.renderOptions().TrustedNamespaces(), o.ReservedNamespaces)
}

// Deps are what the deploy service runs on.
type Deps struct {
	Pool      *pgxpool.Pool
	JetStream jetstream.JetStream
	Publisher *bus.Publisher
	Metrics   *bus.Metrics
	Logger    *slog.Logger
}

// Service is a running deploy service.
type Service struct {
	opts     Options
	deps     Deps
	deployer *deployer.Deployer
	api      *grpcapi.Server
	consumer *bus.Consumer
	relay    *outbox.Relay
	readers  *Readers
	store    *postgres.Store
	// repairers hand out the repair identity's clients.
	repairers *Readers
	// repairReserved are never granted to the repair identity.
	repairReserved *reserved.Namespaces
	// teamGrants orders the admins' repair grants (GrantRepair,
	// RevokeRepair) with their reconciliation (provisionRepair), which
	// reads the mappings and revokes what they do not allow: a reading
	// older than a grant would otherwise take the fresh grant back.
	teamGrants sync.Mutex
	log        *slog.Logger
}

// New migrates the schema and builds the service.
func New(ctx context.Context, opts Options, deps Deps) (*Service, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	log := deps.Logger.With("service", "deploy")
	box, err := seal.New(opts.EncryptionKey)
	if err != nil {
		return nil, err
	}
	if err := outbox.Migrate(ctx, deps.Pool, Schema); err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, deps.Pool, Schema, db.Sub(postgres.Migrations, "migrations")); err != nil {
		return nil, err
	}
	store := postgres.New(box)
	kp := kube.NewPool()
	if c := opts.DevCluster; c != nil {
		if err := registerDevCluster(ctx, deps.Pool, store, c); err != nil {
			return nil, err
		}
		if opts.DefaultCluster == "" {
			opts.DefaultCluster = c.Name
		}
	}
	appReserved, err := opts.reserved()
	if err != nil {
		return nil, err
	}
	repairReserved, err := opts.repairReserved()
	if err != nil {
		return nil, err
	}
	d := deployer.New(deps.Pool, store, kp, deployer.Options{
		RolloutTimeout: opts.RolloutTimeout,
		Render:         opts.renderOptions(),
		Reserved:       appReserved,
		RepairReserved: repairReserved,
	}, log)
	accounts := func(a kubeaccess.Account) *Readers {
		return &Readers{account: a, pool: deps.Pool, store: store, kube: kp, defaultCluster: opts.DefaultCluster, log: log, tokens: map[string]reader{}}
	}
	s := &Service{
		opts: opts, deps: deps, deployer: d, store: store, repairReserved: repairReserved, log: log,
		readers:   accounts(kubeaccess.Reader),
		repairers: accounts(kubeaccess.Repairer),
		relay:     outbox.NewRelay(deps.Pool, deps.Publisher, outbox.RelayOptions{Schema: Schema}, log),
	}
	reg := registry.New(deps.Pool, store, kp, registry.Options{DefaultCluster: opts.DefaultCluster, ClusterAdded: s.clusterAdded}, log)
	s.api = grpcapi.New(deps.Pool, store, reg, d, grpcapi.Options{
		Reserved: appReserved, Repairs: s, RepairReserved: repairReserved.Check,
	}, log)
	s.consumer, err = bus.NewConsumer(deps.JetStream, bus.ConsumerConfig{
		Name:     "deploy",
		Subjects: []string{bus.SubjectDeployRequested},
		// Deployments take minutes; the consumer reports them in progress
		// for as long as they run.
		BatchSize: opts.Concurrency,
	}, bus.BatchHandlerFunc(s.handleBatch), log, deps.Metrics)
	if err != nil {
		return nil, err
	}
	// A first start begins at new events: the durable consumer must exist
	// before this service's relay (or another process) asks for a deploy.
	if err := s.consumer.Create(ctx); err != nil {
		return nil, err
	}
	if err := reg.Announce(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// registerDevCluster records the dev control plane, whose certificates
// (and so kubeconfig) change with every start.
func registerDevCluster(ctx context.Context, pool *pgxpool.Pool, store *postgres.Store, c *Cluster) error {
	kc, err := kube.Inspect(ctx, c.Kubeconfig, "")
	if err != nil {
		return fmt.Errorf("dev cluster: %w", err)
	}
	return store.UpsertCluster(ctx, pool, &deployv1.Cluster{
		Name: c.Name, Server: kc.Server, Version: kc.Version, CreateTime: timestamppb.Now(),
	}, kc.Kubeconfig)
}

// deployRequested runs a recorded deployment, or records one requested by
// another service (no deployment_id) under the event's id, so that a
// redelivered request finds it instead of making another.
func (s *Service) deployRequested(ctx context.Context, e *eventsv1.DeployRequested, attempt int) error {
	id := e.GetDeploymentId()
	if id == "" {
		if _, err := s.deployer.Request(ctx, deployer.Request{
			ID: e.GetMeta().GetId(), App: e.GetApp(), Image: e.GetImage(), RollbackTo: e.GetRollbackTo(),
			RequestedBy: e.GetRequestedBy(),
		}); err != nil && !errors.Is(err, postgres.ErrExists) {
			if errors.Is(err, postgres.ErrNotFound) || errors.Is(err, deployer.ErrNoRevision) {
				return bus.Permanent(err)
			}
			return err
		}
		return nil // the deploy.requested it announced runs it
	}
	// A later attempt -- a redelivery after a replica died, or a try in
	// place after Postgres came back -- resumes the deployment the earlier
	// one claimed and did not finish; the first leaves alone one running
	// elsewhere.
	return s.deployer.Run(ctx, id, attempt > 1)
}

// handleBatch handles a batch's deliveries at once: deployments wait on
// rollouts, not on each other.
func (s *Service) handleBatch(_ context.Context, ds []*bus.Delivery) []error {
	errs := make([]error, len(ds))
	var wg sync.WaitGroup
	for i, d := range ds {
		e, ok := d.Event.(*eventsv1.DeployRequested)
		if !ok {
			errs[i] = bus.Permanent(fmt.Errorf("unexpected %s", d.Subject))
			continue
		}
		wg.Go(func() { errs[i] = s.deployRequested(d.Context(), e, d.Attempt) })
	}
	wg.Wait()
	return errs
}

// Register adds AppService and ClusterService to r.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	deployv1.RegisterAppServiceServer(r, s.api)
	deployv1.RegisterClusterServiceServer(r, s.api)
	s.RegisterInternal(r)
}

// RegisterInternal registers the API only Vigil's services call
// (ClusterCredentialService, RepairRollbackService), in whichever process
// deploy runs.
func (s *Service) RegisterInternal(r grpc.ServiceRegistrar) {
	deployv1.RegisterClusterCredentialServiceServer(r, credentialServer{readers: s.readers, repairers: s.repairers})
	deployv1.RegisterRepairRollbackServiceServer(r, rollbackServer{svc: s})
}

// AppServer and ClusterServer are the API, for a gateway in the same
// process.
func (s *Service) AppServer() deployv1.AppServiceServer { return s.api }

// ClusterServer is the cluster API, for a gateway in the same process.
func (s *Service) ClusterServer() deployv1.ClusterServiceServer { return s.api }

// Run consumes deploy.requested and relays the service's events until ctx
// is cancelled.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { s.provisionAll(ctx); return nil })
	g.Go(func() error { return s.consumer.Run(ctx) })
	g.Go(func() error { return s.relay.Run(ctx) })
	return g.Wait()
}
