package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Delivery is one event handed to a handler.
type Delivery struct {
	Subject string
	Event   Event
	// Attempt counts deliveries of this message, from 1.
	Attempt int

	ctx context.Context
	msg jetstream.Msg
}

// Context carries the producer's trace, continued by a consumer span.
func (d *Delivery) Context() context.Context { return d.ctx }

// BatchHandler handles deliveries together (one database transaction for a
// whole batch, say) and returns one result per delivery, in order.
type BatchHandler interface {
	HandleBatch(ctx context.Context, ds []*Delivery) []error
}

// ConsumerConfig describes a durable pull consumer. Replicas of a service
// use the same Name and so share the work.
type ConsumerConfig struct {
	// Name of the durable consumer, e.g. "monitor".
	Name string
	// Subjects to receive; all must belong to one stream.
	Subjects []string
	// BatchSize is the most deliveries handed to the handler at once
	// (default 100).
	BatchSize int
	// MaxDeliver is how often a message is tried before it is
	// dead-lettered (default 10).
	MaxDeliver int
	// AckWait is how long a delivery may stay unacknowledged before
	// JetStream redelivers it; long work extends it (default 30s).
	AckWait time.Duration
	// MinBackoff and MaxBackoff bound the exponential delay before a
	// failed delivery is retried (defaults 1s and 5m).
	MinBackoff, MaxBackoff time.Duration
}

func (c *ConsumerConfig) defaults() error {
	if c.Name == "" {
		return errors.New("bus: consumer name is empty")
	}
	if len(c.Subjects) == 0 {
		return fmt.Errorf("bus: consumer %s has no subjects", c.Name)
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 100
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 10
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Minute
	}
	return nil
}

// Consumer pulls from one durable consumer and hands batches to a handler.
type Consumer struct {
	js      jetstream.JetStream
	cfg     ConsumerConfig
	stream  string
	h       BatchHandler
	log     *slog.Logger
	metrics *metrics
	tracer  trace.Tracer
}

// NewConsumer returns a Consumer; Run starts it.
func NewConsumer(js jetstream.JetStream, cfg ConsumerConfig, h BatchHandler, log *slog.Logger, m *Metrics) (*Consumer, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	stream := ""
	for _, s := range cfg.Subjects {
		st, err := streamFor(s)
		if err != nil {
			return nil, err
		}
		if stream != "" && st != stream {
			return nil, fmt.Errorf("bus: consumer %s spans streams %s and %s", cfg.Name, stream, st)
		}
		stream = st
	}
	return &Consumer{
		js: js, cfg: cfg, stream: stream, h: h,
		log:     log.With("component", "bus", "consumer", cfg.Name),
		metrics: m.get(),
		tracer:  otel.Tracer("github.com/vigil-ops/vigil/pkg/bus"),
	}, nil
}

// Run consumes until ctx is cancelled. Then it stops pulling, finishes the
// batch in hand, hands back what it had prefetched, and returns nil.
func (c *Consumer) Run(ctx context.Context) error {
	cons, err := c.js.CreateOrUpdateConsumer(ctx, c.stream, jetstream.ConsumerConfig{
		Durable:        c.cfg.Name,
		FilterSubjects: c.cfg.Subjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        c.cfg.AckWait,
		// One more than ours: a delivery whose handler died (ack wait
		// expired) on the last try still reaches us and is dead-lettered,
		// instead of being dropped by the server.
		MaxDeliver:    c.cfg.MaxDeliver + 1,
		MaxAckPending: max(1000, 4*c.cfg.BatchSize),
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("bus: create consumer %s on %s: %w", c.cfg.Name, c.stream, err)
	}

	msgs := make(chan jetstream.Msg, c.cfg.BatchSize)
	stopped := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-stopped:
			_ = m.Nak()
		}
	},
		jetstream.PullMaxMessages(c.cfg.BatchSize),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			c.log.WarnContext(ctx, "pull failed", "error", err)
		}),
	)
	if err != nil {
		return fmt.Errorf("bus: consume %s: %w", c.cfg.Name, err)
	}
	c.log.InfoContext(ctx, "consumer started", "stream", c.stream, "subjects", c.cfg.Subjects)

	for {
		select {
		case <-ctx.Done():
			cc.Stop()
			close(stopped)
			// Give back what was prefetched so another replica (or the
			// next start) takes it at once instead of after AckWait.
			for {
				select {
				case m := <-msgs:
					_ = m.Nak()
				default:
					<-cc.Closed()
					return nil
				}
			}
		case m := <-msgs:
			batch := []jetstream.Msg{m}
		fill:
			for len(batch) < c.cfg.BatchSize {
				select {
				case m := <-msgs:
					batch = append(batch, m)
				default:
					break fill
				}
			}
			// The batch in hand is finished even when ctx is cancelled
			// meanwhile: its work is bounded by AckWait.
			c.process(context.WithoutCancel(ctx), batch)
		}
	}
}

func (c *Consumer) process(ctx context.Context, batch []jetstream.Msg) {
	start := time.Now()
	ds := make([]*Delivery, 0, len(batch))
	spans := make([]trace.Span, 0, len(batch))
	for _, m := range batch {
		attempt := 1
		if md, err := m.Metadata(); err == nil {
			attempt = int(md.NumDelivered)
		}
		mctx := extractTrace(ctx, m.Headers())
		mctx, span := c.tracer.Start(mctx, "consume "+m.Subject(),
			trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(
				attribute.String("messaging.system", "nats"),
				attribute.String("messaging.destination.name", m.Subject()),
				attribute.String("messaging.consumer.group.name", c.cfg.Name),
				attribute.Int("messaging.delivery.attempt", attempt),
			))
		e, err := decode(m.Subject(), m.Data())
		if err != nil {
			d := &Delivery{Subject: m.Subject(), Attempt: attempt, ctx: mctx, msg: m}
			c.settle(d, Permanent(err))
			endSpan(span, err)
			continue
		}
		span.SetAttributes(attribute.String("messaging.message.id", e.GetMeta().GetId()))
		ds = append(ds, &Delivery{Subject: m.Subject(), Event: e, Attempt: attempt, ctx: mctx, msg: m})
		spans = append(spans, span)
	}
	if len(ds) == 0 {
		return
	}

	// Long work keeps its deliveries: tell JetStream we are still on them
	// before AckWait runs out.
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(c.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, d := range ds {
					_ = d.msg.InProgress()
				}
			}
		}
	}()
	results := c.h.HandleBatch(ctx, ds)
	close(done)
	wg.Wait()

	if len(results) != len(ds) {
		err := fmt.Errorf("bus: handler returned %d results for %d deliveries", len(results), len(ds))
		results = make([]error, len(ds))
		for i := range results {
			results[i] = err
		}
	}
	for i, d := range ds {
		c.settle(d, results[i])
		endSpan(spans[i], results[i])
	}
	c.metrics.batchSize.WithLabelValues(c.cfg.Name).Observe(float64(len(ds)))
	c.metrics.handleSeconds.WithLabelValues(c.cfg.Name).Observe(time.Since(start).Seconds())
}

func endSpan(s trace.Span, err error) {
	if err != nil {
		s.RecordError(err)
		s.SetStatus(codes.Error, err.Error())
	}
	s.End()
}

// settle acknowledges, retries or dead-letters one delivery according to
// its handler's result.
func (c *Consumer) settle(d *Delivery, err error) {
	ctx := d.Context()
	switch {
	case err == nil:
		if aerr := d.msg.Ack(); aerr != nil {
			// Redelivered later and skipped by the inbox: nothing lost.
			c.log.WarnContext(ctx, "ack failed", "subject", d.Subject, "error", aerr)
		}
		c.metrics.handled.WithLabelValues(c.cfg.Name, "ack").Inc()
	case IsPermanent(err):
		c.deadLetter(d, err.Error())
	case d.Attempt >= c.cfg.MaxDeliver:
		c.deadLetter(d, fmt.Sprintf("gave up after %d deliveries: %v", d.Attempt, err))
	default:
		delay, ok := retryDelay(err)
		if !ok {
			delay = c.backoff(d.Attempt)
		}
		c.log.WarnContext(ctx, "handler failed, will retry",
			"subject", d.Subject, "event_id", eventID(d), "attempt", d.Attempt, "retry_in", delay, "error", err)
		if nerr := d.msg.NakWithDelay(delay); nerr != nil {
			c.log.WarnContext(ctx, "nak failed", "subject", d.Subject, "error", nerr)
		}
		c.metrics.handled.WithLabelValues(c.cfg.Name, "retry").Inc()
	}
}

// backoff doubles from MinBackoff up to MaxBackoff, with jitter so retries
// of a batch spread out.
func (c *Consumer) backoff(attempt int) time.Duration {
	d := c.cfg.MinBackoff
	for i := 1; i < attempt && d < c.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.cfg.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// deadLetter copies the message to dlq.<subject> with the reason and then
// terminates it. If the copy cannot be stored the message is retried
// instead: it is never dropped.
func (c *Consumer) deadLetter(d *Delivery, reason string) {
	ctx := d.Context()
	m := d.msg
	h := nats.Header{}
	for k, v := range m.Headers() {
		// The original's publish controls (its atomic batch, expectations)
		// are not the copy's.
		if strings.HasPrefix(k, "Nats-Batch-") || strings.HasPrefix(k, "Nats-Expected-") {
			continue
		}
		h[k] = v
	}
	origID := h.Get(jetstream.MsgIDHeader)
	if origID == "" {
		if md, err := m.Metadata(); err == nil {
			origID = fmt.Sprintf("%s-%d", md.Stream, md.Sequence.Stream)
		}
	}
	// Each consumer's copy is its own: two consumers dead-lettering the
	// same event must not be deduplicated into one.
	h.Set(jetstream.MsgIDHeader, c.cfg.Name+":"+origID)
	h.Set(headerDLQReason, reason)
	h.Set(headerDLQConsumer, c.cfg.Name)
	h.Set(headerDLQSubject, m.Subject())
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.js.PublishMsg(pctx, &nats.Msg{Subject: DLQPrefix + m.Subject(), Data: m.Data(), Header: h}); err != nil {
		c.log.ErrorContext(ctx, "dead-letter copy failed, will retry", "subject", m.Subject(), "error", err)
		_ = m.NakWithDelay(c.cfg.MinBackoff)
		c.metrics.handled.WithLabelValues(c.cfg.Name, "retry").Inc()
		return
	}
	c.log.ErrorContext(ctx, "message dead-lettered",
		"subject", m.Subject(), "event_id", origID, "attempt", d.Attempt, "reason", reason)
	if len(reason) > 256 {
		reason = reason[:256]
	}
	if err := m.TermWithReason(reason); err != nil {
		c.log.WarnContext(ctx, "term failed", "subject", m.Subject(), "error", err)
	}
	c.metrics.handled.WithLabelValues(c.cfg.Name, "dead_letter").Inc()
}

func eventID(d *Delivery) string {
	if d.Event == nil {
		return ""
	}
	return d.Event.GetMeta().GetId()
}
