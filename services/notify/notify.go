// Package notify is the service that tells people: it consumes incident,
// analysis and repair events and sends them to chat (Telegram, Slack), one
// conversation per incident -- the incident's message, then its analysis,
// its repair's approval card (with buttons, edited once decided) and the
// repair's progress as replies in its thread -- recording every attempt in
// its schema "notify".
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
	"github.com/vigil-ops/vigil/services/notify/internal/slack"
	"github.com/vigil-ops/vigil/services/notify/internal/telegram"
)

// Schema is notify's Postgres schema.
const Schema = "notify"

// TelegramOptions configure the Telegram channel; it is off without a token.
type TelegramOptions struct {
	BotToken string
	ChatID   string
	// APIURL is the Bot API's base URL (default https://api.telegram.org).
	APIURL string
}

// SlackOptions configure the Slack channel; it is off without a token.
type SlackOptions struct {
	// BotToken is the Slack app's bot token (xoxb-...), with the
	// chat:write scope.
	BotToken string
	// Channel is the id of the channel to post to (C0123ABCD); the bot
	// must be a member.
	Channel string
	// APIURL is the Web API's base URL (default https://slack.com/api).
	APIURL string
}

// Options configure notify.
type Options struct {
	Telegram TelegramOptions
	Slack    SlackOptions
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
}

const (
	defaultMaxDeliver  = 10
	defaultMaxEventAge = time.Hour
	defaultRetention   = 30 * 24 * time.Hour
)

var slackChannelID = regexp.MustCompile(`^[CGD][A-Z0-9]{2,}$`)

// Validate reports options a user must fix.
func (o Options) Validate() error {
	t, sl := o.Telegram, o.Slack
	switch {
	case t.BotToken != "" && t.ChatID == "":
		return errors.New("VIGIL_TELEGRAM_CHAT_ID: missing (VIGIL_TELEGRAM_BOT_TOKEN is set)")
	case t.BotToken == "" && t.ChatID != "":
		return errors.New("VIGIL_TELEGRAM_BOT_TOKEN: missing (VIGIL_TELEGRAM_CHAT_ID is set)")
	case sl.BotToken != "" && sl.Channel == "":
		return errors.New("VIGIL_SLACK_CHANNEL: missing (VIGIL_SLACK_BOT_TOKEN is set)")
	case sl.BotToken == "" && sl.Channel != "":
		return errors.New("VIGIL_SLACK_BOT_TOKEN: missing (VIGIL_SLACK_CHANNEL is set)")
	case sl.BotToken != "" && !strings.HasPrefix(sl.BotToken, "xoxb-"):
		return errors.New("VIGIL_SLACK_BOT_TOKEN: want the Slack app's bot token (xoxb-...; OAuth & Permissions → Bot User OAuth Token)")
	case sl.Channel != "" && !slackChannelID.MatchString(sl.Channel):
		return fmt.Errorf("VIGIL_SLACK_CHANNEL: %q is not a channel id: want its id (C0123ABCD; in Slack, at the bottom of the channel's details), not its name", sl.Channel)
	case o.MaxDeliver < 0:
		return errors.New("notify: MaxDeliver: must not be negative")
	case o.MaxEventAge < 0:
		return errors.New("VIGIL_NOTIFY_MAX_EVENT_AGE: must not be negative")
	case o.Retention < 0:
		return errors.New("VIGIL_RETENTION: must not be negative")
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
	// chats are where notify writes, each in its own markup.
	chats []chat
	// consumers read one stream each (a JetStream consumer reads one
	// stream): incidents, analyses, repairs.
	consumers []*bus.Consumer
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
	s := &Service{opts: opts, log: log, deliveries: postgres.NewDeliveries(deps.Pool), cards: postgres.NewCards(deps.Pool)}
	client := deps.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	if t := opts.Telegram; t.BotToken != "" {
		tg, err := telegram.New(telegram.Options{BaseURL: t.APIURL, Token: t.BotToken, HTTPClient: client, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("telegram: %w", err)
		}
		s.chats = append(s.chats, &telegramChat{client: tg, chatID: t.ChatID})
	}
	if sl := opts.Slack; sl.BotToken != "" {
		c, err := slack.New(slack.Options{BaseURL: sl.APIURL, Token: sl.BotToken, HTTPClient: client, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("VIGIL_SLACK_BOT_TOKEN or VIGIL_SLACK_API_URL: %w", err)
		}
		s.chats = append(s.chats, &slackChat{client: c, channel: sl.Channel})
	}
	if len(s.chats) == 0 {
		log.WarnContext(ctx, "no notification channel configured: set VIGIL_TELEGRAM_BOT_TOKEN and VIGIL_TELEGRAM_CHAT_ID, or VIGIL_SLACK_BOT_TOKEN and VIGIL_SLACK_CHANNEL")
		return s, nil
	}

	incidents := bus.NewRouter[int]()
	bus.On(incidents, s.incidentOpened)
	bus.On(incidents, s.incidentResolved)
	// Handlers of analyses and repairs know which delivery of the event
	// they handle: a message waits a little for the one it replies to.
	analyses := bus.NewRouter[int]()
	bus.On(analyses, s.analysisCompleted)
	repairs := bus.NewRouter[int]()
	bus.On(repairs, s.approvalRequested)
	bus.On(repairs, s.repairDecided)
	bus.On(repairs, s.repairRequested)
	bus.On(repairs, s.repairSucceeded)
	bus.On(repairs, s.repairFailed)
	bus.On(repairs, s.repairBlocked)
	for _, r := range []*bus.Router[int]{incidents, analyses, repairs} {
		c, err := s.newConsumer(ctx, deps, r)
		if err != nil {
			return nil, err
		}
		s.consumers = append(s.consumers, c)
	}
	return s, nil
}

// newConsumer makes notify's durable consumer of the subjects of r (of
// one stream); handlers get the delivery's attempt.
func (s *Service) newConsumer(ctx context.Context, deps Deps, r *bus.Router[int]) (*bus.Consumer, error) {
	c, err := bus.NewConsumer(deps.JetStream, bus.ConsumerConfig{
		Name:        "notify",
		Subjects:    r.Subjects(),
		BatchSize:   10,
		MaxDeliver:  s.opts.MaxDeliver,
		MaxEventAge: s.opts.MaxEventAge,
		// StartWithin 0: a notify started for the first time sends about
		// what happens from now on, not about the streams' history.
	}, bus.BatchHandlerFunc(func(_ context.Context, ds []*bus.Delivery) []error {
		errs := make([]error, len(ds))
		for i, d := range ds {
			errs[i] = r.Dispatch(d.Attempt, d)
		}
		return errs
	}), s.log, deps.Metrics)
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

// Run sends notifications until ctx is cancelled, and prunes the delivery
// log past retention, at start and then hourly.
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
	for _, c := range s.consumers {
		g.Go(func() error { return c.Run(gctx) })
	}
	return g.Wait()
}
