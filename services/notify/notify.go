// Package notify is the service that tells people: it consumes incident,
// analysis, repair and deploy events and sends them to its channels (Telegram,
// Slack: package channel and one package under it per channel), one
// conversation per incident -- the incident's message, then its analysis,
// its repair's approval card (with buttons, edited once decided) and the
// repair's progress as replies in its thread -- recording every attempt in
// its schema "notify".
//
// Exactly one message per event per channel: the consumer turns each
// event into one queued delivery per channel, in the transaction that
// precedes its acknowledgement (a redelivered event finds them); a
// sender per channel claims a delivery -- its intent, committed -- before
// it calls the provider, so no replica sends it again, and records the
// message's id after. A claim whose sender died (or lost its database, or
// gave up waiting) with the request out is in doubt: it is looked up at
// the provider by its delivery key where the provider can tell (Slack),
// sent again with the key where the provider drops repeats (LINE, a
// webhook), and sent again marked as a possible repeat where it can do
// neither (Telegram, email). A reply waits in the queue until its
// parent's message id is known.
// Its channels are the environment's and those managed through its
// ChannelService (internal/grpcapi), stored in that schema too; which of
// them hear about an event is its routes' (RouteService, routing.go).
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/vigil-ops/vigil/pkg/actionlink"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	"github.com/vigil-ops/vigil/pkg/seal"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/internal/grpcapi"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
	"github.com/vigil-ops/vigil/services/notify/internal/registry"
)

// Schema is notify's Postgres schema.
const Schema = "notify"

// Options configure notify.
type Options struct {
	// Channels are the environment's channels, each configured by its
	// own package (channel/telegram, channel/slack, ...); one left empty
	// is off. Each is named after its kind; the channels managed through
	// ChannelService come on top.
	Channels []channel.Config
	// EncryptionKey seals the credentials of the channels managed through
	// ChannelService (VIGIL_ENCRYPTION_KEY, 32 bytes); without it only
	// channels without a credential can be stored.
	EncryptionKey []byte
	// ChannelRefresh is how often a replica checks whether the stored
	// channels changed (default 2s).
	ChannelRefresh time.Duration
	// MaxDeliver is how often a message is tried on a channel before it
	// is given up, its delivery recorded as failed (default 10); and how
	// often the bus hands notify an event it cannot queue before it is
	// dead-lettered.
	MaxDeliver int
	// MaxEventAge: an incident event or analysis older than this is not
	// sent, nor a delivery queued for longer (default 1h). Notify acts on the world: after an outage or a long backlog,
	// paging people about incidents hours old does more harm than good.
	MaxEventAge time.Duration
	// Retention: deliveries and their attempts last touched longer ago than
	// this are deleted, hourly (default 30 days). It is never shorter than
	// MaxEventAge, so an event whose delivery was deleted is too old to be
	// sent again.
	Retention time.Duration
	// ReplyWait is how long a reply waits, queued, for the message it
	// answers (the incident's, an approval card) when that is not sent
	// yet, before it goes out on its own (default 2m). Most replies go as
	// soon as their parent is recorded; this bounds the wait for a parent
	// that never comes (notify was off when the incident opened, its
	// event was too old) or keeps being retried.
	ReplyWait time.Duration
	// Language and TimeZone are what a channel that says nothing of its
	// own is written in (VIGIL_LANGUAGE, default en; VIGIL_TIME_ZONE,
	// default UTC).
	Language string
	TimeZone *time.Location
	// TemplatesDir holds templates over Vigil's own
	// (VIGIL_NOTIFY_TEMPLATES_DIR, <kind>.<language>.tmpl), checked at
	// start.
	TemplatesDir string
	// PublicURL is where people reach Vigil's API (VIGIL_PUBLIC_URL):
	// messages link an incident there ("": no links).
	PublicURL string
	// RoutesFile, when set, is the routing document (YAML or JSON, the
	// API's shape), applied at start: the file is in charge and applying
	// routes through the API is refused.
	RoutesFile string
	// RoutesRefresh is how often a replica looks for routes applied
	// through another (default 10s).
	RoutesRefresh time.Duration
	// RepeatCheck is how often incidents still firing are checked for a
	// re-announcement due on their routes (default 30s).
	RepeatCheck time.Duration
	// Lease is how long a claimed delivery stays its sender's without
	// word from it (default 10s): the sender renews it while it sends, and
	// a delivery whose sender died is taken over once it ends.
	Lease time.Duration
	// StopGrace is how long a send in flight when notify stops may still
	// take (default 3s); one that takes longer is abandoned, its outcome
	// unknown.
	StopGrace time.Duration
}

const (
	defaultMaxDeliver  = 10
	defaultMaxEventAge = time.Hour
	defaultRetention   = 30 * 24 * time.Hour
	defaultReplyWait   = 2 * time.Minute
	// Polling one indexed max() is cheap, and works through any pooler,
	// where LISTEN needs a session of its own.
	defaultChannelRefresh = 2 * time.Second
	defaultRoutesRefresh  = 10 * time.Second
	defaultRepeatCheck    = 30 * time.Second
	defaultLease          = 10 * time.Second
	defaultStopGrace      = 3 * time.Second
)

// Validate reports options a user must fix.
func (o Options) Validate() error {
	for _, c := range o.Channels {
		if err := c.Validate(); err != nil {
			return err
		}
	}
	switch {
	case o.MaxDeliver < 0:
		return errors.New("notify: MaxDeliver: must not be negative")
	case o.MaxEventAge < 0:
		return errors.New("VIGIL_NOTIFY_MAX_EVENT_AGE: must not be negative")
	case o.Retention < 0:
		return errors.New("VIGIL_RETENTION: must not be negative")
	case o.ReplyWait < 0:
		return errors.New("notify: ReplyWait: must not be negative")
	case len(o.EncryptionKey) != 0 && len(o.EncryptionKey) != seal.KeySize:
		return fmt.Errorf("VIGIL_ENCRYPTION_KEY: not %d bytes (generate one with `openssl rand -base64 32`)", seal.KeySize)
	case o.RoutesRefresh < 0 || o.RepeatCheck < 0:
		return errors.New("notify: RoutesRefresh, RepeatCheck: must not be negative")
	case o.Lease < 0:
		return errors.New("notify: Lease: must not be negative")
	case o.StopGrace < 0:
		return errors.New("notify: StopGrace: must not be negative")
	}
	if o.PublicURL != "" {
		if u, err := url.Parse(o.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("VIGIL_PUBLIC_URL: %q is not an http(s) URL like https://vigil.example.com", o.PublicURL)
		}
	}
	o = o.withDefaults()
	if o.Retention < o.MaxEventAge {
		return fmt.Errorf("VIGIL_RETENTION: %s is shorter than VIGIL_NOTIFY_MAX_EVENT_AGE (%s): a redelivered event could be sent twice", o.Retention, o.MaxEventAge)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.MaxDeliver == 0 {
		o.MaxDeliver = defaultMaxDeliver
	}
	if o.MaxEventAge == 0 {
		o.MaxEventAge = defaultMaxEventAge
	}
	if o.Retention == 0 {
		o.Retention = defaultRetention
	}
	if o.ReplyWait == 0 {
		o.ReplyWait = defaultReplyWait
	}
	if o.ChannelRefresh <= 0 {
		o.ChannelRefresh = defaultChannelRefresh
	}
	if o.RoutesRefresh == 0 {
		o.RoutesRefresh = defaultRoutesRefresh
	}
	if o.RepeatCheck == 0 {
		o.RepeatCheck = defaultRepeatCheck
	}
	if o.Lease == 0 {
		o.Lease = defaultLease
	}
	if o.StopGrace == 0 {
		o.StopGrace = defaultStopGrace
	}
	return o
}

// Deps are what notify runs on.
type Deps struct {
	Pool       *pgxpool.Pool
	JetStream  jetstream.JetStream
	Metrics    *bus.Metrics
	Logger     *slog.Logger
	HTTPClient *http.Client
	// Reload, when set, asks for RoutesFile to be read and applied again
	// (cmd/vigil: on SIGHUP).
	Reload <-chan struct{}
	// Registry, when set, gets notify's metrics.
	Registry prometheus.Registerer
}

// Service is a running notify.
type Service struct {
	opts       Options
	log        *slog.Logger
	pool       *pgxpool.Pool
	deliveries *postgres.Deliveries
	cards      *postgres.Cards
	// channels are where notify writes, each drawing messages its own
	// way: the environment's and the stored ones.
	channels *registry.Registry
	api      *grpcapi.Server
	// consumers read one stream each (a JetStream consumer reads one
	// stream): incidents, analyses, repairs, deploys.
	consumers []*bus.Consumer
	// dir finds channels by name; routes and incidents are what routing
	// needs (routing.go).
	dir       Directory
	routes    routes
	incidents *postgres.Incidents
	reload    <-chan struct{}
	// replica names this notify in the claims it makes.
	replica  string
	senders  senders
	outcomes *prometheus.CounterVec
	// doubts and reconciled count deliveries in doubt and how they were
	// settled.
	doubts, reconciled *prometheus.CounterVec
	// look draws every message: notify's templates, links and default
	// locale.
	look message.Defaults
}

// New migrates notify's schema and builds the service.
func New(ctx context.Context, opts Options, deps Deps) (*Service, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	log := deps.Logger.With("service", "notify")
	err := db.Migrate(ctx, deps.Pool, Schema, db.Sub(postgres.Migrations, "migrations"))
	if err != nil {
		return nil, err
	}
	templates, err := message.LoadSets(opts.TemplatesDir, log)
	if err != nil {
		return nil, err
	}
	if len(templates.Named) > 0 {
		log.InfoContext(ctx, "template sets loaded", "sets", templates.Names())
	}
	s := &Service{
		opts: opts, log: log, pool: deps.Pool, deliveries: postgres.NewDeliveries(deps.Pool), cards: postgres.NewCards(deps.Pool),
		replica: bus.NewID(), incidents: postgres.NewIncidents(deps.Pool), reload: deps.Reload,
		look: message.Defaults{
			Templates: templates.Default, Sets: templates.Named, Links: message.Links{Base: opts.PublicURL},
			Locale: message.Locale{Language: opts.Language, Zone: opts.TimeZone},
		},
	}
	s.outcomes, s.doubts, s.reconciled = newMetrics(deps.Registry)
	s.routes.store = postgres.NewRoutes(deps.Pool)
	client := deps.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	var box *seal.Box
	if len(opts.EncryptionKey) > 0 {
		if box, err = seal.New(opts.EncryptionKey); err != nil {
			return nil, err
		}
	}
	store := postgres.NewChannels(deps.Pool, box)
	cdeps := channel.Deps{HTTPClient: client, Logger: log}
	if len(opts.EncryptionKey) > 0 && opts.PublicURL != "" {
		if cdeps.LinkKey, err = actionlink.Key(opts.EncryptionKey); err != nil {
			return nil, err
		}
		cdeps.PublicURL = opts.PublicURL
	} else {
		log.InfoContext(ctx, "emails carry no action links, only the CLI commands: set VIGIL_ENCRYPTION_KEY and VIGIL_PUBLIC_URL for them")
	}
	if s.channels, err = registry.New(store, opts.Channels, cdeps); err != nil {
		return nil, err
	}
	if err := s.channels.Load(ctx); err != nil {
		return nil, err
	}
	s.api = grpcapi.New(store, s.channels, s.deliveries, s.incidents, cdeps, s.look)
	if len(s.channels.Endpoints()) == 0 {
		// Consumers run anyway: a channel created later hears from then on.
		log.WarnContext(ctx, "no notification channel yet: add one with `vigil channels create`, or set VIGIL_TELEGRAM_BOT_TOKEN and VIGIL_TELEGRAM_CHAT_ID (or another kind's variables)")
	}
	s.dir = s.channels
	if opts.RoutesFile != "" {
		if err := s.applyFile(ctx, opts.RoutesFile); err != nil {
			return nil, err
		}
	}
	if err := s.loadRoutes(ctx); err != nil {
		return nil, err
	}

	incidents := bus.NewRouter[queueing]()
	on[*eventsv1.IncidentOpened](incidents, s)
	on[*eventsv1.IncidentResolved](incidents, s)
	on[*eventsv1.IncidentEscalated](incidents, s)
	bus.On(incidents, func(ctx context.Context, q queueing, e *eventsv1.IncidentUpdated) error {
		return s.handleUpdate(ctx, q, e)
	})
	analyses := bus.NewRouter[queueing]()
	on[*eventsv1.AnalysisCompleted](analyses, s)
	repairs := bus.NewRouter[queueing]()
	on[*eventsv1.RepairApprovalRequested](repairs, s)
	on[*eventsv1.RepairDecided](repairs, s)
	on[*eventsv1.RepairRequested](repairs, s)
	on[*eventsv1.RepairSucceeded](repairs, s)
	on[*eventsv1.RepairFailed](repairs, s)
	on[*eventsv1.RepairBlocked](repairs, s)
	deploys := bus.NewRouter[queueing]()
	on[*eventsv1.DeployRequested](deploys, s)
	on[*eventsv1.DeploySucceeded](deploys, s)
	on[*eventsv1.DeployFailed](deploys, s)
	on[*eventsv1.DeployRolledBack](deploys, s)
	for _, r := range []*bus.Router[queueing]{incidents, analyses, repairs, deploys} {
		c, err := s.newConsumer(ctx, deps, r)
		if err != nil {
			return nil, err
		}
		s.consumers = append(s.consumers, c)
	}
	return s, nil
}

// Register adds ChannelService and RouteService to srv, for a process
// without the gateway (which serves them through ChannelServer and
// RouteServer otherwise).
func (s *Service) Register(srv grpc.ServiceRegistrar) {
	notifyv1.RegisterChannelServiceServer(srv, s.api)
	notifyv1.RegisterRouteServiceServer(srv, s.RouteServer())
}

// ChannelServer is ChannelService, for the gateway of the same process.
func (s *Service) ChannelServer() notifyv1.ChannelServiceServer { return s.api }

// on routes events of type E to notify's one handler, which queues them.
func on[E bus.Event](r *bus.Router[queueing], s *Service) {
	bus.On(r, func(ctx context.Context, q queueing, e E) error { return s.queue(ctx, q, e) })
}

// newConsumer makes notify's durable consumer of the subjects of r (of
// one stream).
func (s *Service) newConsumer(ctx context.Context, deps Deps, r *bus.Router[queueing]) (*bus.Consumer, error) {
	c, err := bus.NewConsumer(deps.JetStream, bus.ConsumerConfig{
		Name:        "notify",
		Subjects:    r.Subjects(),
		BatchSize:   10,
		MaxDeliver:  s.opts.MaxDeliver,
		MaxEventAge: s.opts.MaxEventAge,
		// StartWithin 0: a notify started for the first time sends about
		// what happens from now on, not about the streams' history.
	}, s.queueBatch(r), s.log, deps.Metrics)
	if err != nil {
		return nil, err
	}
	// Created now, before the other services of the process start
	// publishing: an incident opened meanwhile is not missed.
	if err := c.Create(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Run queues notifications and sends them, a sender per channel, until
// ctx is cancelled, and prunes the delivery log past retention, at start
// and then hourly. A send in flight when ctx ends gets StopGrace to
// finish.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	retention := db.Retention{
		What: "deliveries, approval cards, parked replies and routed incidents",
		Prune: func(ctx context.Context) (int64, error) {
			before := time.Now().Add(-s.opts.Retention)
			n, err := s.deliveries.Prune(ctx, before)
			if err != nil {
				return n, err
			}
			cards, err := s.cards.Prune(ctx, before)
			if err != nil {
				return n + cards, err
			}
			incidents, err := s.incidents.Prune(ctx, before)
			return n + cards + incidents, err
		},
		Log: s.log,
	}
	g.Go(func() error { return retention.Run(gctx) })
	g.Go(func() error {
		s.refreshChannels(gctx)
		return nil
	})
	g.Go(func() error {
		s.refreshRoutes(gctx)
		return nil
	})
	if s.opts.RoutesFile != "" && s.reload != nil {
		g.Go(func() error {
			s.reloadFile(gctx)
			return nil
		})
	}
	s.senders.begin(gctx, s.send)
	defer s.senders.wg.Wait()
	for _, ep := range s.channels.Endpoints() {
		s.senders.start(ep.Name)
	}
	g.Go(func() error {
		s.superviseSenders(gctx)
		return nil
	})
	g.Go(func() error {
		s.repeat(gctx)
		return nil
	})
	for _, c := range s.consumers {
		g.Go(func() error { return c.Run(gctx) })
	}
	return g.Wait()
}
