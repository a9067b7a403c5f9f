// Package notify is the service that tells people: it consumes incident
// events and analyses and sends them to chat (Telegram for now), an
// analysis as a reply to its incident's message, recording every attempt in
// its schema "notify".
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
	"github.com/vigil-ops/vigil/services/notify/internal/telegram"
)

// Schema is notify's Postgres schema.
const Schema = "notify"

const channelTelegram = "telegram"

// TelegramOptions configure the Telegram channel; it is off without a token.
type TelegramOptions struct {
	BotToken string
	ChatID   string
	// APIURL is the Bot API's base URL (default https://api.telegram.org).
	APIURL string
}

// Options configure notify.
type Options struct {
	Telegram TelegramOptions
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
	defaultMaxEventAge = time.Hour
	defaultRetention   = 30 * 24 * time.Hour
)

// Validate reports options a user must fix.
func (o Options) Validate() error {
	t := o.Telegram
	switch {
	case t.BotToken != "" && t.ChatID == "":
		return errors.New("VIGIL_TELEGRAM_CHAT_ID: missing (VIGIL_TELEGRAM_BOT_TOKEN is set)")
	case t.BotToken == "" && t.ChatID != "":
		return errors.New("VIGIL_TELEGRAM_BOT_TOKEN: missing (VIGIL_TELEGRAM_CHAT_ID is set)")
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
	telegram   *telegram.Client
	consumer   *bus.Consumer
	// analyses consumes analysis.completed, which lives in another stream
	// than the incident events (a JetStream consumer reads one stream).
	analyses *bus.Consumer
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
	s := &Service{opts: opts, log: log, deliveries: postgres.NewDeliveries(deps.Pool)}
	if opts.Telegram.BotToken == "" {
		log.WarnContext(ctx, "no notification channel configured: set VIGIL_TELEGRAM_BOT_TOKEN and VIGIL_TELEGRAM_CHAT_ID")
		return s, nil
	}
	client := deps.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	tg, err := telegram.New(telegram.Options{BaseURL: opts.Telegram.APIURL, Token: opts.Telegram.BotToken, HTTPClient: client})
	if err != nil {
		return nil, fmt.Errorf("telegram: %w", err)
	}
	s.telegram = tg
	router := bus.NewRouter[struct{}]()
	bus.On(router, func(ctx context.Context, _ struct{}, e *eventsv1.IncidentOpened) error {
		return s.send(ctx, delivery{
			eventID: e.GetMeta().GetId(), subject: bus.SubjectIncidentOpened, incidentID: e.GetIncident().GetId(),
			text: message.IncidentOpened(e.GetIncident(), telegram.EscapeHTML),
		})
	})
	bus.On(router, func(ctx context.Context, _ struct{}, e *eventsv1.IncidentResolved) error {
		return s.send(ctx, delivery{
			eventID: e.GetMeta().GetId(), subject: bus.SubjectIncidentResolved, incidentID: e.GetIncident().GetId(),
			text: message.IncidentResolved(e.GetIncident(), telegram.EscapeHTML),
		})
	})
	if s.consumer, err = s.newConsumer(ctx, deps, router.Subjects(), bus.Handler(router, struct{}{})); err != nil {
		return nil, err
	}
	// Handlers of analyses know which delivery of the event they handle:
	// an analysis waits a little for its incident's message to reply to.
	analyses := bus.NewRouter[int]()
	bus.On(analyses, s.analysisCompleted)
	if s.analyses, err = s.newConsumer(ctx, deps, analyses.Subjects(), bus.BatchHandlerFunc(func(_ context.Context, ds []*bus.Delivery) []error {
		errs := make([]error, len(ds))
		for i, d := range ds {
			errs[i] = analyses.Dispatch(d.Attempt, d)
		}
		return errs
	})); err != nil {
		return nil, err
	}
	return s, nil
}

// newConsumer makes notify's durable consumer of subjects (of one stream).
func (s *Service) newConsumer(ctx context.Context, deps Deps, subjects []string, h bus.BatchHandler) (*bus.Consumer, error) {
	c, err := bus.NewConsumer(deps.JetStream, bus.ConsumerConfig{
		Name:        "notify",
		Subjects:    subjects,
		BatchSize:   10,
		MaxDeliver:  s.opts.MaxDeliver,
		MaxEventAge: s.opts.MaxEventAge,
		// StartWithin 0: a notify started for the first time sends about
		// what happens from now on, not about the streams' history.
	}, h, s.log, deps.Metrics)
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
	g.Go(func() error {
		s.prune(gctx)
		return nil
	})
	if s.consumer == nil {
		<-gctx.Done()
	} else {
		g.Go(func() error { return s.consumer.Run(gctx) })
		g.Go(func() error { return s.analyses.Run(gctx) })
	}
	return g.Wait()
}

// prune deletes deliveries past retention, at start and then hourly, until
// ctx ends.
func (s *Service) prune(ctx context.Context) {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		before := time.Now().Add(-s.opts.Retention)
		n, err := s.deliveries.Prune(ctx, before)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.log.WarnContext(ctx, "pruning deliveries failed", "error", err)
		case n > 0:
			s.log.InfoContext(ctx, "pruned deliveries past retention", "deliveries", n, "before", before)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// openingWaits is how many deliveries of an analysis wait for its
// incident's message (in flight, or being retried) to reply to, openingWait
// apart, before the analysis goes out on its own: analysis.completed can
// overtake incident.opened, which another consumer sends.
const (
	openingWaits = 3
	openingWait  = 2 * time.Second
)

var errOpeningPending = errors.New("the incident's message is not sent yet")

// analysisCompleted sends an analysis as a reply to the message that
// announced its incident, or on its own when there is none.
func (s *Service) analysisCompleted(ctx context.Context, attempt int, e *eventsv1.AnalysisCompleted) error {
	d := delivery{
		eventID: e.GetMeta().GetId(), subject: bus.SubjectAnalysisCompleted, incidentID: e.GetIncidentId(),
		text: message.Analysis(e, telegram.EscapeHTML),
	}
	sent, err := s.deliveries.Sent(ctx, d.eventID, channelTelegram)
	if err != nil || sent {
		return err
	}
	opening, err := s.deliveries.Opening(ctx, e.GetIncidentId(), bus.SubjectIncidentOpened, channelTelegram, s.opts.Telegram.ChatID)
	if err != nil {
		return err
	}
	switch {
	case opening.Status == "sent":
		d.replyTo = opening.MessageID
	case opening.Status != "failed" && attempt < openingWaits:
		return bus.RetryAfter(errOpeningPending, openingWait)
	default:
		// Never sent (notify was off, the event too old, its record
		// pruned) or given up: the text names the incident.
		s.log.InfoContext(ctx, "analysis sent without its incident's message", "incident_id", e.GetIncidentId(), "opening", opening.Status)
	}
	return s.send(ctx, d)
}

// delivery is a message to send about one event.
type delivery struct {
	eventID, subject, incidentID, text string
	// replyTo, if not 0, is the message of the chat this one answers.
	replyTo int64
}

// send delivers text for one event once: a redelivered event that already
// reached the chat is not sent again. Each attempt is recorded; a rate
// limit is honoured through the bus's redelivery delay.
func (s *Service) send(ctx context.Context, d delivery) error {
	eventID, subject, text := d.eventID, d.subject, d.text
	sent, err := s.deliveries.Sent(ctx, eventID, channelTelegram)
	if err != nil {
		return err
	}
	if sent {
		return nil
	}
	text, err = telegram.TruncateHTML(text, telegram.MaxMessageLength)
	if err != nil {
		// Our own rendering produced markup Telegram would refuse: a bug
		// no retry fixes.
		return bus.Permanent(fmt.Errorf("render message: %w", err))
	}
	res, sendErr := s.telegram.SendMessage(ctx, telegram.Message{
		ChatID: s.opts.Telegram.ChatID, Text: text, ParseMode: telegram.ParseModeHTML, DisablePreview: true,
		// A message people deleted is no reason to keep the news from them.
		ReplyTo: d.replyTo, SendWithoutReply: true,
	})
	attempt := postgres.Attempt{
		EventID: eventID, Channel: channelTelegram, Subject: subject, Target: s.opts.Telegram.ChatID, IncidentID: d.incidentID,
	}
	var apiErr *telegram.APIError
	if errors.As(sendErr, &apiErr) {
		attempt.HTTPStatus = apiErr.StatusCode
		attempt.RetryAfter = apiErr.RetryAfter
	}
	switch {
	case sendErr == nil:
		attempt.Outcome = postgres.OutcomeSent
		attempt.MessageID = fmt.Sprint(res.MessageID)
		attempt.HTTPStatus = http.StatusOK
	case telegram.IsRetryable(sendErr):
		attempt.Outcome, attempt.Error = postgres.OutcomeRetry, sendErr.Error()
	default:
		attempt.Outcome, attempt.Error = postgres.OutcomeFailed, sendErr.Error()
	}
	if err := s.deliveries.Record(ctx, attempt); err != nil {
		if sendErr == nil {
			// Sent but not recorded: a redelivery would send it again, which
			// beats losing the record of what people were told.
			s.log.ErrorContext(ctx, "sent but not recorded", "event_id", eventID, "error", err)
		}
		return err
	}
	switch attempt.Outcome {
	case postgres.OutcomeSent:
		s.log.InfoContext(ctx, "notification sent", "channel", channelTelegram, "event_id", eventID, "subject", subject)
		return nil
	case postgres.OutcomeRetry:
		if attempt.RetryAfter > 0 {
			return bus.RetryAfter(sendErr, attempt.RetryAfter)
		}
		return sendErr
	}
	return bus.Permanent(sendErr)
}
