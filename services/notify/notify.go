// Package notify is the service that tells people: it consumes incident,
// analysis and repair events and sends them to its channels (Telegram,
// Slack: package channel and one package under it per channel), one
// conversation per incident -- the incident's message, then its analysis,
// its repair's approval card (with buttons, edited once decided) and the
// repair's progress as replies in its thread -- recording every attempt in
// its schema "notify".
//
// Exactly one message per event per channel: the consumer turns each
// event into one queued delivery per channel, in the transaction that
// precedes its acknowledgement (a redelivered event finds them); a
// sender per channel claims a delivery -- committed -- before it calls the
// provider, so no replica sends it again. A reply waits in the queue until
// its parent's message id is known.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
)

// Schema is notify's Postgres schema.
const Schema = "notify"

// Options configure notify.
type Options struct {
	// Channels are where notify writes, each configured by its own
	// package (channel/telegram, channel/slack, ...); one left empty is
	// off.
	Channels []channel.Config
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
	defaultLease       = 10 * time.Second
	defaultStopGrace   = 3 * time.Second
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
	case o.Lease < 0:
		return errors.New("notify: Lease: must not be negative")
	case o.StopGrace < 0:
		return errors.New("notify: StopGrace: must not be negative")
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
	// endpoints are where notify writes, each drawing messages its own
	// way.
	endpoints []*channel.Endpoint
	// consumers read one stream each (a JetStream consumer reads one
	// stream): incidents, analyses, repairs.
	consumers []*bus.Consumer
	// replica names this notify in the claims it makes.
	replica  string
	senders  senders
	outcomes *prometheus.CounterVec
}

// New migrates notify's schema and builds the service.
func New(ctx context.Context, opts Options, deps Deps) (*Service, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	log := deps.Logger.With("service", "notify")
	if err := db.Migrate(ctx, deps.Pool, Schema, db.Sub(postgres.Migrations, "migrations")); err != nil {
		return nil, err
	}
	s := &Service{
		opts: opts, log: log, pool: deps.Pool, deliveries: postgres.NewDeliveries(deps.Pool), cards: postgres.NewCards(deps.Pool),
		replica: bus.NewID(), outcomes: newOutcomes(deps.Registry),
	}
	client := deps.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	for _, c := range opts.Channels {
		ep, err := c.Open(channel.Deps{HTTPClient: client, Logger: log})
		if err != nil {
			return nil, err
		}
		if ep == nil {
			continue
		}
		if slices.ContainsFunc(s.endpoints, func(o *channel.Endpoint) bool { return o.Name == ep.Name }) {
			return nil, fmt.Errorf("notify: two channels named %s", ep.Name)
		}
		s.endpoints = append(s.endpoints, ep)
	}
	if len(s.endpoints) == 0 {
		log.WarnContext(ctx, "no notification channel configured: set VIGIL_TELEGRAM_BOT_TOKEN and VIGIL_TELEGRAM_CHAT_ID, or VIGIL_SLACK_BOT_TOKEN and VIGIL_SLACK_CHANNEL")
		return s, nil
	}

	incidents := bus.NewRouter[queueing]()
	on[*eventsv1.IncidentOpened](incidents, s)
	on[*eventsv1.IncidentResolved](incidents, s)
	analyses := bus.NewRouter[queueing]()
	on[*eventsv1.AnalysisCompleted](analyses, s)
	repairs := bus.NewRouter[queueing]()
	on[*eventsv1.RepairApprovalRequested](repairs, s)
	on[*eventsv1.RepairDecided](repairs, s)
	on[*eventsv1.RepairRequested](repairs, s)
	on[*eventsv1.RepairSucceeded](repairs, s)
	on[*eventsv1.RepairFailed](repairs, s)
	on[*eventsv1.RepairBlocked](repairs, s)
	for _, r := range []*bus.Router[queueing]{incidents, analyses, repairs} {
		c, err := s.newConsumer(ctx, deps, r)
		if err != nil {
			return nil, err
		}
		s.consumers = append(s.consumers, c)
	}
	return s, nil
}

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
		What: "deliveries and approval cards",
		Prune: func(ctx context.Context) (int64, error) {
			before := time.Now().Add(-s.opts.Retention)
			n, err := s.deliveries.Prune(ctx, before)
			if err != nil {
				return n, err
			}
			cards, err := s.cards.Prune(ctx, before)
			return n + cards, err
		},
		Log: s.log,
	}
	g.Go(func() error { return retention.Run(gctx) })
	s.senders.begin(gctx, s.send)
	defer s.senders.wg.Wait()
	for _, ep := range s.endpoints {
		s.senders.start(ep.Name)
	}
	if len(s.endpoints) > 0 {
		g.Go(func() error {
			s.superviseSenders(gctx)
			return nil
		})
	}
	for _, c := range s.consumers {
		g.Go(func() error { return c.Run(gctx) })
	}
	return g.Wait()
}
