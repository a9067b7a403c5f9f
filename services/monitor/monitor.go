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

	"github.com/vigil-ops/vigil/pkg/appteam"
	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/services/monitor/internal/escalation"
	"github.com/vigil-ops/vigil/services/monitor/internal/grpcapi"
	"github.com/vigil-ops/vigil/services/monitor/internal/incident"
	"github.com/vigil-ops/vigil/services/monitor/internal/intake"
	"github.com/vigil-ops/vigil/services/monitor/internal/postgres"
	"github.com/vigil-ops/vigil/services/monitor/internal/quiet"
	"github.com/vigil-ops/vigil/services/monitor/internal/silence"
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
	// BatchSize is the most messages (single alerts or envelopes of many)
	// pulled at once (default 100).
	BatchSize int
	// ChunkSize is the most alert events applied in one transaction
	// (default 2000).
	ChunkSize int
	// Workers is how many batches are applied at once, like replicas in
	// one process (default 1). Two keep Postgres busy while the next batch
	// is decoded: +40% for a monitor with cores of its own, nothing when it
	// shares them with the gateway (docs/benchmarks.md).
	Workers int
	// UpdateInterval is the least time between two incident.updated of one
	// incident for its alerts' changes; what changes meanwhile is folded
	// into the next (default 5s, like Alertmanager's group_interval).
	UpdateInterval time.Duration
	// Retention: resolved incidents (with their alerts), silenced alerts,
	// alert resolutions and silences older than this are deleted (default
	// 30 days).
	Retention time.Duration
	// StartWithin is how far back the monitor's consumer starts the first
	// time it is created, so alerts accepted while it was first starting
	// are not lost (default 1h); it never replays older history.
	StartWithin time.Duration
	// SilenceMaxDuration bounds a one-off silence (default 30 days,
	// VIGIL_SILENCE_MAX_DURATION); maintenance windows may span a year.
	SilenceMaxDuration time.Duration
	// EscalationFile, when set, is a YAML file of priority rules, response
	// targets, escalation policies and on-call schedules applied at start
	// (VIGIL_ESCALATION_FILE); the API then refuses to change what it
	// defines.
	EscalationFile string
	// EscalationInterval is how often due escalation steps are looked for
	// (default 1s).
	EscalationInterval time.Duration
	// DeployQuiet is how long after a rollout of an app its alerts below
	// critical are still held, as they are during it (0: deploy quiet is
	// off; vigil's default 5m, VIGIL_DEPLOY_QUIET). Package quiet.
	DeployQuiet time.Duration
	// ReleaseInterval is how often held alerts whose rollout's window
	// ended are looked for (default 1s).
	ReleaseInterval time.Duration
	// FlapThreshold: an alert that goes through more fire-resolve cycles
	// than this within FlapWindow flaps, and its incident is marked
	// flapping instead of resolving and reopening (docs/noise.md; default
	// 4, negative: never; VIGIL_FLAP_THRESHOLD).
	FlapThreshold int
	// FlapWindow is the flapping window (default 15m, VIGIL_FLAP_WINDOW).
	FlapWindow time.Duration
	// InhibitFile, when set, is a YAML file with Alertmanager's
	// inhibit_rules, applied at start and on each Reload
	// (VIGIL_INHIBIT_FILE); the API then refuses to change the rules.
	InhibitFile string
}

// Validate reports options a user must fix.
func (o Options) Validate() error {
	if o.DedupWindow < 0 {
		return errors.New("VIGIL_DEDUP_WINDOW: must not be negative")
	}
	if o.UpdateInterval < 0 {
		return errors.New("VIGIL_INCIDENT_UPDATE_INTERVAL: must not be negative")
	}
	if o.Retention < 0 {
		return errors.New("VIGIL_RETENTION: must not be negative")
	}
	if o.Workers < 0 || o.Workers > 64 {
		return errors.New("VIGIL_MONITOR_WORKERS: must be between 1 and 64")
	}
	if o.StartWithin < 0 {
		return errors.New("VIGIL_MONITOR_START_WITHIN: must not be negative")
	}
	if o.DeployQuiet < 0 {
		return errors.New("VIGIL_DEPLOY_QUIET: must not be negative (0 turns deploy quiet off)")
	}
	if o.FlapWindow < 0 {
		return errors.New("VIGIL_FLAP_WINDOW: must not be negative")
	}
	if o.ChunkSize < 0 || o.ChunkSize > 100_000 {
		return errors.New("VIGIL_MONITOR_CHUNK: must be between 1 and 100000")
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
	// Clock is escalation's clock (default the system's); tests move it.
	Clock escalation.Clock
	// Reload, when set, asks for InhibitFile to be read and applied again
	// (SIGHUP).
	Reload <-chan struct{}
}

// Service is a running monitor.
type Service struct {
	deps       Deps
	opts       Options
	correlator *incident.Correlator
	consumer   *bus.Consumer
	apps       *bus.Consumer
	// repairs resolves the incidents verified repairs fixed.
	repairs  *bus.Consumer
	relay    *outbox.Relay
	api      *grpcapi.IncidentServer
	silences *grpcapi.SilenceServer
	oncall   *grpcapi.OnCallServer
	policies *grpcapi.EscalationServer
	engine   *escalation.Engine
	// deploys and releaser are deploy quiet's, nil when it is off.
	deploys  *bus.Consumer
	releaser *quiet.Releaser
	log      *slog.Logger
	// inhibitions is the inhibition rules' API.
	inhibitions *grpcapi.InhibitionServer
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
	// app_teams first: the incidents' owners are backfilled from it.
	if err := appteam.Migrate(ctx, deps.Pool, Schema); err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, deps.Pool, Schema, db.Sub(postgres.Migrations, "migrations")); err != nil {
		return nil, err
	}
	if opts.Retention == 0 {
		opts.Retention = 30 * 24 * time.Hour
	}
	if opts.StartWithin == 0 {
		opts.StartWithin = time.Hour
	}
	if deps.Clock == nil {
		deps.Clock = escalation.SystemClock{}
	}
	if opts.EscalationFile != "" {
		if err := escalation.ApplyFile(ctx, deps.Pool, opts.EscalationFile, deps.Clock.Now()); err != nil {
			return nil, err
		}
		log.InfoContext(ctx, "escalation file applied", "file", opts.EscalationFile)
	}
	var holds incident.Holds
	if opts.DeployQuiet > 0 {
		holds = quiet.Holds
	}
	c := incident.NewCorrelator(postgres.Store{}, incident.Options{
		GroupBy: opts.GroupBy, DedupWindow: opts.DedupWindow, UpdateInterval: opts.UpdateInterval, Holds: holds,
		// Read once per transaction: a silence applies from the next chunk
		// after it is created.
		Silences: func(ctx context.Context, tx pgx.Tx, now time.Time) (incident.Muter, error) {
			return postgres.Silences{}.Active(ctx, tx, now)
		},
		Priorities: escalation.LoadPriorities,
		Now:        deps.Clock.Now,
		Flapping:   flapping(opts),
		Inhibitor:  &postgres.Inhibitions{},
	}, log)
	consumer, err := bus.NewConsumer(deps.JetStream, bus.ConsumerConfig{
		Name:      "monitor",
		Subjects:  []string{bus.SubjectAlertFired, bus.SubjectAlertResolved},
		BatchSize: opts.BatchSize,
		// The gateway's envelopes hold up to ~2,000 alerts each: bound a
		// batch (and what is pulled ahead) by bytes, and so by memory.
		MaxBytes:    8 << 20,
		Workers:     opts.Workers,
		StartWithin: opts.StartWithin,
	}, intake.New(deps.Pool, "monitor", c, opts.ChunkSize, log), log, deps.Metrics)
	if err != nil {
		return nil, err
	}
	// The durable consumer exists before anything (the gateway in this
	// process) accepts alerts: a first start loses none of them.
	if err := consumer.Create(ctx); err != nil {
		return nil, err
	}
	// Which team each app belongs to: whose incidents they are.
	apps, err := appteam.NewConsumer(ctx, deps.JetStream, deps.Pool, "monitor", log, deps.Metrics)
	if err != nil {
		return nil, err
	}
	engine := escalation.NewEngine(deps.Pool, deps.Clock, escalation.Options{Interval: opts.EscalationInterval}, log)
	s := &Service{
		apps: apps, engine: engine,
		oncall: grpcapi.NewOnCallServer(deps.Pool, deps.Clock), policies: grpcapi.NewEscalationServer(deps.Pool, deps.Clock),
		deps: deps, opts: opts, correlator: c, consumer: consumer, log: log, silences: grpcapi.NewSilenceServer(deps.Pool, silence.Limits{MaxDuration: opts.SilenceMaxDuration}),
		relay: outbox.NewRelay(deps.Pool, deps.Publisher, outbox.RelayOptions{Schema: Schema}, log),
		api:   grpcapi.NewIncidentServer(deps.Pool, c).WithEngine(engine),
	}
	if s.repairs, err = s.repairConsumer(log); err != nil {
		return nil, err
	}
	if err := s.repairs.Create(ctx); err != nil {
		return nil, err
	}
	if opts.DeployQuiet > 0 {
		if err := s.deployQuiet(ctx, log); err != nil {
			return nil, err
		}
	}
	if err := s.applyInhibitFile(ctx); err != nil {
		return nil, err
	}
	s.inhibitions = grpcapi.NewInhibitionServer(deps.Pool, deps.Clock.Now)
	return s, nil
}

// deployQuiet builds deploy quiet: a consumer of the rollouts (its own
// durable consumer and inbox) and the releaser of held alerts, poked when
// a rollout's end releases them at once.
func (s *Service) deployQuiet(ctx context.Context, log *slog.Logger) error {
	qopts := quiet.Options{Settle: s.opts.DeployQuiet}
	if err := qopts.Validate(); err != nil {
		return err
	}
	s.releaser = quiet.NewReleaser(s.deps.Pool, s.correlator, s.deps.Clock, s.opts.ReleaseInterval, log)
	r := bus.NewRouter[pgx.Tx]()
	quiet.Route(r, qopts)
	var err error
	s.deploys, err = bus.NewConsumer(s.deps.JetStream, bus.ConsumerConfig{
		Name: "monitor", Subjects: r.Subjects(), BatchSize: 50,
		// A rollout that started within the longest one still holds.
		StartWithin: quiet.DefaultMaxRollout,
	}, outbox.NewHandler(s.deps.Pool, "monitor-deploys", r).OnCommit(func(int) { s.releaser.Poke() }), log, s.deps.Metrics)
	if err != nil {
		return err
	}
	return s.deploys.Create(ctx)
}

// flapping is the correlator's flapping from opts, with its defaults.
func flapping(opts Options) incident.Flapping {
	f := incident.Flapping{Threshold: max(opts.FlapThreshold, 0), Window: opts.FlapWindow, Store: postgres.Store{}}
	if opts.FlapThreshold == 0 {
		f.Threshold = 4
	}
	if f.Window == 0 {
		f.Window = 15 * time.Minute
	}
	return f
}

// Register adds monitor's gRPC API to s.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	monitorv1.RegisterIncidentServiceServer(r, s.api)
	monitorv1.RegisterSilenceServiceServer(r, s.silences)
	monitorv1.RegisterOnCallServiceServer(r, s.oncall)
	monitorv1.RegisterEscalationServiceServer(r, s.policies)
	monitorv1.RegisterInhibitionServiceServer(r, s.inhibitions)
}

// InhibitionServer is monitor's inhibition API, for a gateway in the same
// process.
func (s *Service) InhibitionServer() monitorv1.InhibitionServiceServer { return s.inhibitions }

// OnCallServer is monitor's on-call API, for a gateway in the same
// process.
func (s *Service) OnCallServer() monitorv1.OnCallServiceServer { return s.oncall }

// EscalationServer is monitor's escalation API, for a gateway in the same
// process.
func (s *Service) EscalationServer() monitorv1.EscalationServiceServer { return s.policies }

// IncidentServer is monitor's API, for a gateway in the same process.
func (s *Service) IncidentServer() monitorv1.IncidentServiceServer { return s.api }

// SilenceServer is monitor's silence API, for a gateway in the same
// process.
func (s *Service) SilenceServer() monitorv1.SilenceServiceServer { return s.silences }

// Run consumes alerts and relays incident events until ctx is cancelled.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.consumer.Run(ctx) })
	g.Go(func() error { return s.apps.Run(ctx) })
	g.Go(func() error { return s.repairs.Run(ctx) })
	g.Go(func() error { return s.relay.Run(ctx) })
	g.Go(func() error { return s.flushDue(ctx) })
	g.Go(func() error { return s.engine.Run(ctx) })
	if s.releaser != nil {
		g.Go(func() error { return s.deploys.Run(ctx) })
		g.Go(func() error { return s.releaser.Run(ctx) })
	}
	g.Go(func() error { return s.release(ctx) })
	g.Go(func() error { return s.reloadInhibitFile(ctx) })
	retention := db.Retention{
		What: "incidents, silenced alerts, resolutions and silences",
		Prune: func(ctx context.Context) (int64, error) {
			p, err := postgres.Store{}.Prune(ctx, s.deps.Pool, time.Now().Add(-s.opts.Retention))
			return p.Incidents + p.SilencedAlerts + p.Resolutions + p.Silences, err
		},
		Log: s.log,
	}
	g.Go(func() error { return retention.Run(ctx) })
	return g.Wait()
}

// flushDue announces the incident updates whose interval has passed, and
// settles flapping incidents. A change waits at most its interval plus
// one tick.
func (s *Service) flushDue(ctx context.Context) error {
	const limit = 500
	return db.Sweep{
		What: "due incident updates announced", Every: 250 * time.Millisecond, Log: s.log,
		Pass: func(ctx context.Context) error {
			return db.Drain(ctx, s.deps.Pool, func(ctx context.Context, tx pgx.Tx) (bool, error) {
				n, err := s.correlator.FlushDue(ctx, tx, limit)
				return n >= limit, err
			})
		},
	}.Run(ctx)
}
