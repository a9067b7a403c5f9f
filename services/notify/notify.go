// Package notify is the service that tells people: it consumes incident,
// analysis, repair and deploy events and sends them to its channels (Telegram,
// Slack: package channel and one package under it per channel), one
// conversation per incident -- the incident's message, then its analysis,
// its repair's approval card (with buttons, edited once decided) and the
// repair's progress as replies in its thread -- recording every attempt in
// its schema "notify". A reply whose parent is not sent yet is parked in
// that schema and sent when the parent's delivery is recorded.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
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
	// MaxDeliver is how often a message is tried before it is given up and
	// dead-lettered (default 10).
	MaxDeliver int
	// MaxEventAge: an incident event or analysis older than this is not
	// sent (default 1h). Notify acts on the world: after an outage or a long backlog,
	// paging people about incidents hours old does more harm than good.
	MaxEventAge time.Duration
	// Retention: deliveries and their attempts last touched longer ago than
	// this are deleted, hourly (default 30 days). It is never shorter than
	// MaxEventAge, so an event whose delivery was deleted is too old to be
	// sent again.
	Retention time.Duration
	// ReplyWait is how long a reply waits, parked, for the message it
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
}

const (
	defaultMaxDeliver  = 10
	defaultMaxEventAge = time.Hour
	defaultRetention   = 30 * 24 * time.Hour
	defaultReplyWait   = 2 * time.Minute
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
	return o
}

// Deps are what notify runs on.
type Deps struct {
	Pool       *pgxpool.Pool
	JetStream  jetstream.JetStream
	Metrics    *bus.Metrics
	Logger     *slog.Logger
	HTTPClient *http.Client
}

// Service is a running notify.
type Service struct {
	opts       Options
	log        *slog.Logger
	deliveries *postgres.Deliveries
	cards      *postgres.Cards
	// endpoints are where notify writes, each drawing messages its own
	// way.
	endpoints []*channel.Endpoint
	// consumers read one stream each (a JetStream consumer reads one
	// stream): incidents, analyses, repairs, deploys.
	consumers []*bus.Consumer
	// due wakes the sending of parked replies: a parent was recorded.
	due chan struct{}
	// templates draw every message; links are where they link to.
	templates *message.Templates
	links     message.Links
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
	templates, err := message.NewTemplates(opts.TemplatesDir, log)
	if err != nil {
		return nil, err
	}
	s := &Service{
		opts: opts, log: log, deliveries: postgres.NewDeliveries(deps.Pool), cards: postgres.NewCards(deps.Pool),
		due: make(chan struct{}, 1), templates: templates, links: message.Links{Base: opts.PublicURL},
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
		// A channel that names no language or zone of its own speaks
		// the default.
		if ep.Locale.Language == "" {
			ep.Locale.Language = opts.Language
		}
		if ep.Locale.Zone == nil {
			ep.Locale.Zone = opts.TimeZone
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

	incidents := bus.NewRouter[struct{}]()
	on[*eventsv1.IncidentOpened](incidents, s)
	on[*eventsv1.IncidentResolved](incidents, s)
	on[*eventsv1.IncidentEscalated](incidents, s)
	analyses := bus.NewRouter[struct{}]()
	on[*eventsv1.AnalysisCompleted](analyses, s)
	repairs := bus.NewRouter[struct{}]()
	on[*eventsv1.RepairApprovalRequested](repairs, s)
	on[*eventsv1.RepairDecided](repairs, s)
	on[*eventsv1.RepairRequested](repairs, s)
	on[*eventsv1.RepairSucceeded](repairs, s)
	on[*eventsv1.RepairFailed](repairs, s)
	on[*eventsv1.RepairBlocked](repairs, s)
	deploys := bus.NewRouter[struct{}]()
	on[*eventsv1.DeployRequested](deploys, s)
	on[*eventsv1.DeploySucceeded](deploys, s)
	on[*eventsv1.DeployFailed](deploys, s)
	on[*eventsv1.DeployRolledBack](deploys, s)
	for _, r := range []*bus.Router[struct{}]{incidents, analyses, repairs, deploys} {
		c, err := s.newConsumer(ctx, deps, r)
		if err != nil {
			return nil, err
		}
		s.consumers = append(s.consumers, c)
	}
	return s, nil
}

// on routes events of type E to notify's one handler.
func on[E bus.Event](r *bus.Router[struct{}], s *Service) {
	bus.On(r, func(ctx context.Context, _ struct{}, e E) error { return s.handle(ctx, e) })
}

// newConsumer makes notify's durable consumer of the subjects of r (of
// one stream).
func (s *Service) newConsumer(ctx context.Context, deps Deps, r *bus.Router[struct{}]) (*bus.Consumer, error) {
	c, err := bus.NewConsumer(deps.JetStream, bus.ConsumerConfig{
		Name:        "notify",
		Subjects:    r.Subjects(),
		BatchSize:   10,
		MaxDeliver:  s.opts.MaxDeliver,
		MaxEventAge: s.opts.MaxEventAge,
		// StartWithin 0: a notify started for the first time sends about
		// what happens from now on, not about the streams' history.
	}, bus.Handler(r, struct{}{}), s.log, deps.Metrics)
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

// Run sends notifications until ctx is cancelled, sends the replies that
// waited for their parent once it is recorded (or they waited long
// enough), and prunes the delivery log past retention, at start and then
// hourly.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	retention := db.Retention{
		What: "deliveries, approval cards and parked replies",
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
			parked, err := s.deliveries.PruneParked(ctx, before)
			return n + cards + parked, err
		},
		Log: s.log,
	}
	g.Go(func() error { return retention.Run(gctx) })
	if len(s.endpoints) > 0 {
		g.Go(func() error {
			s.sendParked(gctx)
			return nil
		})
	}
	for _, c := range s.consumers {
		g.Go(func() error { return c.Run(gctx) })
	}
	return g.Wait()
}
