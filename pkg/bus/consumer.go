package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
)

// Delivery is one event handed to a handler.
type Delivery struct {
	Subject string
	Event   Event
	// Attempt counts the tries of this event, from 1: each delivery of
	// its message, and each try in place of a batch held while a
	// dependency was unavailable (see handle). Above 1, an earlier try
	// may have done part of the work and died or been cut off by the
	// outage: a handler that commits its work in steps resumes it then.
	// Dead letters count deliveries only (MaxDeliver).
	Attempt int

	ctx context.Context
	// in is the message the event came in; raw and index locate it in an
	// EventBatch (raw is nil for a single event).
	in    *inbound
	raw   *eventsv1.BatchedEvent
	index int
	// err is the handler's result.
	err error
}

// Context carries the producer's trace, continued by a consumer span.
func (d *Delivery) Context() context.Context { return d.ctx }

// BatchHandler handles deliveries together (one database transaction for a
// whole batch, say) and returns one result per delivery, in order.
//
// ctx is not cancelled when the consumer stops, so the unit of work in
// progress finishes; a handler that does several units checks Stopping(ctx)
// between them and answers ErrStopped for the deliveries it did not start.
type BatchHandler interface {
	HandleBatch(ctx context.Context, ds []*Delivery) []error
}

// ErrStopped is the result, wrapped or not, of a delivery a handler did not
// start because its consumer is stopping (Stopping): the message goes back
// at once, for another replica or the next start, without counting as a
// failure.
var ErrStopped = errors.New("bus: consumer stopping")

type stoppingKey struct{}

// withStopping returns ctx without its cancellation, so the work in hand can
// finish, carrying the cancellation as the signal Stopping reads instead.
func withStopping(ctx context.Context) context.Context {
	return context.WithValue(context.WithoutCancel(ctx), stoppingKey{}, ctx.Done())
}

// Stopping reports whether the consumer that handed over ctx (to a
// BatchHandler, or as a Delivery's context) is shutting down: its Run
// context was cancelled. For any other ctx it reports whether ctx is done.
func Stopping(ctx context.Context) bool {
	done, ok := ctx.Value(stoppingKey{}).(<-chan struct{})
	if !ok {
		return ctx.Err() != nil
	}
	select {
	case <-done:
		return true
	default:
		return false
	}
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
	// dead-lettered (default 10). Tries held for an unavailable
	// dependency (see handle) are not deliveries and do not count.
	MaxDeliver int
	// AckWait is how long JetStream waits before it redelivers a message
	// whose consumer went silent (default DefaultAckWait): the consumer
	// reports every message it holds in progress well within it, however
	// long the work, so it bounds only the takeover of a dead replica's
	// work.
	AckWait time.Duration
	// MinBackoff and MaxBackoff bound the exponential delay before a
	// failed delivery is retried (defaults 1s and 5m), and before a batch
	// held for an unavailable dependency is tried again (then at most
	// 30s; see handle).
	MinBackoff, MaxBackoff time.Duration
	// Workers is how many batches are handled at once (default 1).
	Workers int
	// MaxBytes, when set, bounds the bytes of messages pulled ahead and of
	// one batch: for consumers of EventBatch envelopes, where one message
	// may hold thousands of events, so a batch of BatchSize messages would
	// hold hundreds of thousands (and their memory).
	MaxBytes int
	// StartWithin is where a consumer created for the first time starts:
	// at the events stored in the last StartWithin, or at new events only
	// when 0 -- never at the beginning of a stream's history, which a new
	// service would otherwise replay (and act on) in full. A consumer that
	// exists keeps its position whatever this says.
	StartWithin time.Duration
	// MaxEventAge, when set, skips events older than this (by their
	// meta.occurred_at, or when JetStream stored them if that is unset):
	// they are acknowledged without reaching the handler and counted in
	// vigil_bus_stale_events_total. For consumers that act on the world,
	// where acting hours late (paging about an incident long over) is
	// worse than not acting.
	MaxEventAge time.Duration
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
		c.AckWait = DefaultAckWait
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

	mu   sync.Mutex
	cons jetstream.Consumer // the durable consumer, once Create made it

	outages outages // dependencies its held batches wait for
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
	// Events of the stream may also come in EventBatch envelopes.
	if bs, ok := batchSubjects[stream]; ok {
		if !slices.ContainsFunc(cfg.Subjects, func(p string) bool { return subjectMatches(p, bs) }) {
			cfg.Subjects = append(slices.Clone(cfg.Subjects), bs)
		}
	}
	c := &Consumer{
		js: js, cfg: cfg, stream: stream, h: h,
		log:     log.With("component", "bus", "consumer", cfg.Name),
		metrics: m.get(),
		tracer:  otel.Tracer("github.com/vigil-ops/vigil/pkg/bus"),
	}
	if trimmed[stream] {
		// At zero from the start, so that a rate over them is defined.
		c.metrics.trimmed.WithLabelValues(stream)
		c.metrics.trimErrors.WithLabelValues(stream)
	}
	m.track(c)
	return c, nil
}

// Create creates the durable consumer on the server, or brings the one that
// exists up to this configuration. Call it before publishing anything the
// consumer must see, since a consumer created for the first time starts at
// new events (see StartWithin); Run calls it when it was not called.
//
// An existing consumer keeps its position and the deliver policy it was
// created with (JetStream refuses to change them): only the fields the
// configuration owns -- subjects, ack wait, deliveries, ack pending -- are
// updated.
func (c *Consumer) Create(ctx context.Context) error {
	_, err := c.durable(ctx)
	return err
}

func (c *Consumer) durable(ctx context.Context) (jetstream.Consumer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cons != nil {
		return c.cons, nil
	}
	cons, err := c.createOrUpdate(ctx)
	if err != nil {
		return nil, fmt.Errorf("bus: create consumer %s on %s: %w", c.cfg.Name, c.stream, err)
	}
	c.cons = cons
	return cons, nil
}

func (c *Consumer) createOrUpdate(ctx context.Context) (jetstream.Consumer, error) {
	start := time.Now().Add(-c.cfg.StartWithin)
	// A race to create it, lost to another replica, ends at the next
	// lookup; the rounds are bounded all the same.
	for range 3 {
		existing, err := c.js.Consumer(ctx, c.stream, c.cfg.Name)
		if err == nil {
			have := existing.CachedInfo().Config
			want := c.owned(have)
			if reflect.DeepEqual(have, want) {
				return existing, nil
			}
			return c.js.UpdateConsumer(ctx, c.stream, want)
		}
		if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, err
		}
		want := c.owned(jetstream.ConsumerConfig{Durable: c.cfg.Name, DeliverPolicy: jetstream.DeliverNewPolicy})
		if c.cfg.StartWithin > 0 {
			want.DeliverPolicy = jetstream.DeliverByStartTimePolicy
			want.OptStartTime = &start
		}
		cons, err := c.js.CreateConsumer(ctx, c.stream, want)
		if !errors.Is(err, jetstream.ErrConsumerExists) {
			return cons, err
		}
		// Another replica created it meanwhile, with a start time of its
		// own clock: take that one, as it is.
	}
	return nil, errors.New("another process keeps deleting and creating it")
}

// owned returns cfg with the fields the ConsumerConfig owns set from it.
func (c *Consumer) owned(cfg jetstream.ConsumerConfig) jetstream.ConsumerConfig {
	// JetStream refuses both a filter subject and filter subjects.
	cfg.FilterSubject = ""
	cfg.FilterSubjects = c.cfg.Subjects
	cfg.AckPolicy = jetstream.AckExplicitPolicy
	cfg.AckWait = c.cfg.AckWait
	// One more than ours: a delivery whose handler died (ack wait
	// expired) on the last try still reaches us and is dead-lettered,
	// instead of being dropped by the server.
	cfg.MaxDeliver = c.cfg.MaxDeliver + 1
	cfg.MaxAckPending = max(1000, 4*c.cfg.BatchSize)
	return cfg
}

// Run consumes until ctx is cancelled. Then it finishes the unit of work in
// hand (see Stopping), stops pulling, hands back what it had prefetched and
// what the handler did not start, and returns nil.
func (c *Consumer) Run(ctx context.Context) error {
	cons, err := c.durable(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started: not a failure
		}
		return err
	}

	q := newQueue(c.cfg.BatchSize)
	held := newHold()
	keepCtx, stopKeeping := context.WithCancel(context.WithoutCancel(ctx))
	var keeping sync.WaitGroup
	keeping.Go(func() { held.keep(keepCtx, keepInterval(c.cfg.AckWait)) })
	defer func() { stopKeeping(); keeping.Wait() }()

	// What is given back once stopping (Nak) -- the handler's ErrStopped
	// deliveries -- waits until pulling has ended: given back while a
	// pull request of ours still stood, a message would be redelivered
	// into it at once and given back again, an attempt burnt each time,
	// and at the server's last attempt never delivered again: lost.
	var (
		backMu sync.Mutex
		back   []jetstream.Msg
	)
	giveBack := func(m jetstream.Msg) {
		if ctx.Err() == nil {
			c.nak(m)
			return
		}
		backMu.Lock()
		defer backMu.Unlock()
		back = append(back, m)
	}
	c.log.InfoContext(ctx, "consumer started", "stream", c.stream, "subjects", c.cfg.Subjects)

	var pulling sync.WaitGroup
	pulling.Go(func() { c.pull(ctx, cons, q, held) })
	if trimmed[c.stream] {
		pulling.Go(func() { c.trim(ctx) })
	}
	// Each worker takes the next batch as soon as it is free: with two,
	// one batch's database round trips overlap the other's decoding and
	// planning. Batches of one consumer are then handled concurrently, as
	// they are by replicas.
	var wg sync.WaitGroup
	for range max(1, c.cfg.Workers) {
		wg.Go(func() { c.work(ctx, q, giveBack) })
	}
	wg.Wait()
	pulling.Wait()

	// Give back what was prefetched or not started so another replica (or
	// the next start) takes it at once instead of after AckWait.
	for _, m := range back {
		c.nak(m)
	}
	for done := false; !done; {
		select {
		case m := <-q.ch:
			c.nak(m)
		default:
			done = true
		}
	}
	// The Naks are on their way before Run returns, not left in the
	// connection's buffer for a process about to exit. Waiting longer than
	// AckWait would gain nothing: by then what was given back is
	// redelivered anyway.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.AckWait)
	defer cancel()
	if err := c.js.Conn().FlushWithContext(fctx); err != nil {
		c.log.WarnContext(ctx, "flush on stop failed: what was given back is redelivered after AckWait", "error", err)
	}
	return nil
}

// nak gives m back for redelivery at once.
func (c *Consumer) nak(m jetstream.Msg) {
	if err := m.Nak(); err != nil {
		// Redelivered after AckWait instead: nothing lost.
		c.log.Warn("nak failed", "subject", m.Subject(), "error", err)
	}
}

// work handles batches from q until ctx is cancelled; giveBack takes the
// messages of deliveries the handler did not start (ErrStopped).
func (c *Consumer) work(ctx context.Context, q *queue, giveBack func(jetstream.Msg)) {
	for {
		// Once stopping, no new batch starts, though messages wait.
		if ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case m := <-q.ch:
			batch := []jetstream.Msg{m}
			size := len(m.Data())
		fill:
			for len(batch) < c.cfg.BatchSize && (c.cfg.MaxBytes <= 0 || size < c.cfg.MaxBytes) {
				select {
				case m := <-q.ch:
					batch = append(batch, m)
					size += len(m.Data())
				default:
					break fill
				}
			}
			q.took(size)
			// The batch's context is not cancelled with ctx, so database
			// work in progress completes; the handler sees the
			// cancellation through Stopping and ends between units of
			// work (ErrStopped), not after the whole batch.
			c.process(withStopping(ctx), batch, giveBack)
		}
	}
}

// inbound is one JetStream message of a pulled batch: a single event, or an
// EventBatch whose events are handled one by one, as if each had arrived
// alone. The message is settled once, from the results of all of them.
type inbound struct {
	msg     jetstream.Msg
	attempt int
	// stored is when JetStream stored the message (zero if unknown).
	stored time.Time
	ctx    context.Context
	span   trace.Span
	// batchID is the EventBatch's id; empty for a single event.
	batchID string
	// ds are the events for this consumer; err of one that could not be
	// decoded is set before handling.
	ds []*Delivery
}

// process hands a batch's events to the handler and settles each message.
// Events older than MaxEventAge are not handed over: they count as handled
// (acknowledged) and are logged once for the batch, not one line each, as a
// backlog after an outage may hold thousands. Inside an EventBatch the age
// is each event's own.
func (c *Consumer) process(ctx context.Context, batch []jetstream.Msg, giveBack func(jetstream.Msg)) {
	start := time.Now()
	ins := make([]*inbound, 0, len(batch))
	var ds []*Delivery // what the handler gets: the decoded, fresh events
	stale := 0
	for _, m := range batch {
		in := c.receive(ctx, m)
		ins = append(ins, in)
		for _, d := range in.ds {
			switch {
			case d.err != nil:
			case c.isStale(d, start):
				stale++
				c.metrics.stale.WithLabelValues(c.cfg.Name, d.Subject).Inc()
			default:
				ds = append(ds, d)
			}
		}
	}
	if stale > 0 {
		c.log.InfoContext(ctx, "stale events skipped", "count", stale, "max_event_age", c.cfg.MaxEventAge)
	}

	if len(ds) > 0 {
		results := c.handle(ctx, ds)

		if len(results) != len(ds) {
			err := fmt.Errorf("bus: handler returned %d results for %d deliveries", len(results), len(ds))
			results = make([]error, len(ds))
			for i := range results {
				results[i] = err
			}
		}
		for i, d := range ds {
			d.err = results[i]
		}
		c.metrics.batchSize.WithLabelValues(c.cfg.Name).Observe(float64(len(ds)))
	}
	for _, in := range ins {
		err := c.settle(in, giveBack)
		endSpan(in.span, err)
	}
	c.metrics.handleSeconds.WithLabelValues(c.cfg.Name).Observe(time.Since(start).Seconds())
}

// receive decodes one message into the deliveries it carries for this
// consumer. An EventBatch's events of subjects outside the consumer's
// filter are left out, as the filter would have left them out on their own.
func (c *Consumer) receive(ctx context.Context, m jetstream.Msg) *inbound {
	in := &inbound{msg: m, attempt: 1}
	if md, err := m.Metadata(); err == nil {
		in.attempt = int(md.NumDelivered)
		in.stored = md.Timestamp
	}
	mctx := extractTrace(ctx, m.Headers())
	in.ctx, in.span = c.tracer.Start(mctx, "consume "+m.Subject(),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", m.Subject()),
			attribute.String("messaging.consumer.group.name", c.cfg.Name),
			attribute.Int("messaging.delivery.attempt", in.attempt),
		))
	in.span.SetAttributes(attribute.String("messaging.message.id", m.Headers().Get(jetstream.MsgIDHeader)))

	if !isBatchSubject(m.Subject()) {
		d := &Delivery{Subject: m.Subject(), Attempt: in.attempt, ctx: in.ctx, in: in}
		d.Event, d.err = decode(m.Subject(), m.Data())
		if d.err == nil {
			d.err = checkProducer(m.Subject(), d.Event)
		}
		if d.err != nil {
			d.err = Permanent(d.err)
		}
		in.ds = []*Delivery{d}
		return in
	}

	in.batchID = m.Headers().Get(jetstream.MsgIDHeader)
	entries, err := unpack(m.Subject(), m.Data())
	if err != nil {
		// Nothing inside can be read: the message itself is dead.
		in.batchID = ""
		in.ds = []*Delivery{{Subject: m.Subject(), Attempt: in.attempt, ctx: in.ctx, in: in, err: Permanent(err)}}
		return in
	}
	for i, e := range entries {
		if !e.foreign && !c.wants(e.raw.GetSubject()) {
			continue
		}
		d := &Delivery{
			Subject: e.raw.GetSubject(), Event: e.event, Attempt: in.attempt,
			ctx: extractTrace(in.ctx, nats.Header(headerMap(e.raw.GetHeaders()))),
			in:  in, raw: e.raw, index: i,
		}
		if e.err == nil {
			e.err = checkProducer(d.Subject, e.event)
		}
		if e.err != nil {
			d.err = Permanent(e.err)
		}
		in.ds = append(in.ds, d)
	}
	return in
}

// isStale reports whether d's event is older than MaxEventAge at now: by
// when it occurred, or, when its producer did not say, by when JetStream
// stored the message that carried it. An event whose age cannot be told is
// fresh: it is handled rather than dropped.
func (c *Consumer) isStale(d *Delivery, now time.Time) bool {
	if c.cfg.MaxEventAge <= 0 {
		return false
	}
	at := d.in.stored
	// A nil or zero timestamp is unset (a nil one would read as 1970).
	if ts := d.Event.GetMeta().GetOccurredAt(); ts != nil && (ts.GetSeconds() != 0 || ts.GetNanos() != 0) && ts.IsValid() {
		at = ts.AsTime()
	}
	return !at.IsZero() && now.Sub(at) > c.cfg.MaxEventAge
}

// wants reports whether subject passes the consumer's filter.
func (c *Consumer) wants(subject string) bool {
	return slices.ContainsFunc(c.cfg.Subjects, func(p string) bool { return subjectMatches(p, subject) })
}

func headerMap(m map[string]string) map[string][]string {
	h := make(map[string][]string, len(m))
	for k, v := range m {
		h[k] = []string{v}
	}
	return h
}

func endSpan(s trace.Span, err error) {
	if err != nil {
		s.RecordError(err)
		s.SetStatus(codes.Error, err.Error())
	}
	s.End()
}

// settle acknowledges, retries or dead-letters a message according to the
// results of the events it carries, and returns the error it settled on
// (for the span):
//   - an event the handler did not start because the consumer is stopping
//     (ErrStopped): the whole message is given back (Nak'ed as soon as
//     the pull subscription is closed), without delay, warning or dead
//     letter whatever its attempt count, so another replica or the next
//     start takes it; the events of an EventBatch
//     already handled are skipped then by the handlers' inbox. Only on the
//     server's last delivery (attempt MaxDeliver+1), where a Nak would drop
//     the message, does it go the way of a failure below and get
//     dead-lettered;
//   - every event handled, or skipped as older than MaxEventAge: Ack;
//   - an event failed with a transient error and attempts are left: the
//     whole message is retried with backoff (the events already handled are
//     skipped then by the handlers' inbox);
//   - otherwise each failed event (permanent error, or attempts used up) is
//     copied to dlq.<its subject> with the reason, and the message is
//     terminated (a single event) or acknowledged (a batch: the others were
//     handled). A copy that cannot be stored retries the message instead:
//     nothing is dropped.
func (c *Consumer) settle(in *inbound, giveBack func(jetstream.Msg)) error {
	if in.attempt <= c.cfg.MaxDeliver && slices.ContainsFunc(in.ds, func(d *Delivery) bool { return errors.Is(d.err, ErrStopped) }) {
		giveBack(in.msg)
		c.metrics.handled.WithLabelValues(c.cfg.Name, "stopped").Add(float64(len(in.ds)))
		return ErrStopped
	}
	var failed []*Delivery
	var transient error
	for _, d := range in.ds {
		if d.err == nil {
			continue
		}
		failed = append(failed, d)
		if transient == nil && !IsPermanent(d.err) {
			transient = d.err
		}
	}
	if len(failed) == 0 {
		if err := in.msg.Ack(); err != nil {
			// Redelivered later and skipped by the inbox: nothing lost.
			c.log.WarnContext(in.ctx, "ack failed", "subject", in.msg.Subject(), "error", err)
		}
		c.metrics.handled.WithLabelValues(c.cfg.Name, "ack").Add(float64(len(in.ds)))
		return nil
	}
	if transient != nil && in.attempt < c.cfg.MaxDeliver {
		delay, ok := retryDelay(transient)
		if !ok {
			delay = c.backoff(in.attempt)
		}
		d := failed[0]
		c.log.WarnContext(d.Context(), "handler failed, will retry",
			"subject", d.Subject, "event_id", eventID(d), "batch_id", in.batchID, "failed", len(failed),
			"attempt", in.attempt, "retry_in", delay, "error", d.err)
		c.retry(in, delay)
		return transient
	}
	for _, d := range failed {
		reason := d.err.Error()
		if !IsPermanent(d.err) {
			reason = fmt.Sprintf("gave up after %d deliveries: %v", in.attempt, d.err)
		}
		if err := c.deadLetter(d, reason); err != nil {
			c.log.ErrorContext(d.Context(), "dead-letter copy failed, will retry", "subject", d.Subject, "error", err)
			c.retry(in, c.cfg.MinBackoff)
			return err
		}
	}
	if in.batchID == "" {
		reason := failed[0].err.Error()
		if len(reason) > 256 {
			reason = reason[:256]
		}
		if err := in.msg.TermWithReason(reason); err != nil {
			c.log.WarnContext(in.ctx, "term failed", "subject", in.msg.Subject(), "error", err)
		}
	} else {
		if err := in.msg.Ack(); err != nil {
			c.log.WarnContext(in.ctx, "ack failed", "subject", in.msg.Subject(), "error", err)
		}
		c.metrics.handled.WithLabelValues(c.cfg.Name, "ack").Add(float64(len(in.ds) - len(failed)))
	}
	return failed[0].err
}

func (c *Consumer) retry(in *inbound, delay time.Duration) {
	if err := in.msg.NakWithDelay(delay); err != nil {
		c.log.WarnContext(in.ctx, "nak failed", "subject", in.msg.Subject(), "error", err)
	}
	c.metrics.handled.WithLabelValues(c.cfg.Name, "retry").Add(float64(len(in.ds)))
}

// backoff doubles from MinBackoff up to MaxBackoff, with jitter so retries
// of a batch spread out.
func (c *Consumer) backoff(attempt int) time.Duration {
	return jittered(c.cfg.MinBackoff, c.cfg.MaxBackoff, attempt)
}

// jittered is lo doubled n-1 times, at most hi, of which a random half.
func jittered(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

// deadLetter stores a copy of d's event on dlq.<subject> with the reason:
// the message itself, or for an event of a batch that event alone, as it
// would have been published on its own.
func (c *Consumer) deadLetter(d *Delivery, reason string) error {
	m := d.in.msg
	// The copy goes to dlq.<subject>, which the consumer may publish for
	// the subjects of its own stream only: an event smuggled into a batch
	// from another stream is dead-lettered under the batch's subject.
	subject, data := m.Subject(), m.Data()
	dlqSubject := subject
	h := nats.Header{}
	var origID string
	if d.raw == nil {
		for k, v := range m.Headers() {
			// The original's publish controls (its atomic batch,
			// expectations) are not the copy's.
			if strings.HasPrefix(k, "Nats-Batch-") || strings.HasPrefix(k, "Nats-Expected-") {
				continue
			}
			h[k] = v
		}
		origID = h.Get(jetstream.MsgIDHeader)
		if origID == "" {
			if md, err := m.Metadata(); err == nil {
				origID = fmt.Sprintf("%s-%d", md.Stream, md.Sequence.Stream)
			}
		}
	} else {
		subject, data = d.raw.GetSubject(), d.raw.GetData()
		if st, err := streamFor(subject); err == nil && st == c.stream && !isBatchSubject(subject) {
			dlqSubject = subject
		}
		for k, v := range d.raw.GetHeaders() {
			h.Set(k, v)
		}
		h.Set(HeaderContentType, contentType)
		h.Set(headerDLQBatch, d.in.batchID)
		origID = eventID(d)
		if origID == "" {
			origID = fmt.Sprintf("%s#%d", d.in.batchID, d.index)
		}
	}
	// Each consumer's copy is its own: two consumers dead-lettering the
	// same event must not be deduplicated into one.
	h.Set(jetstream.MsgIDHeader, c.cfg.Name+":"+origID)
	h.Set(headerDLQReason, reason)
	h.Set(headerDLQConsumer, c.cfg.Name)
	h.Set(headerDLQSubject, subject)
	pctx, cancel := context.WithTimeout(d.Context(), 10*time.Second)
	defer cancel()
	if _, err := c.js.PublishMsg(pctx, &nats.Msg{Subject: DLQPrefix + dlqSubject, Data: data, Header: h}); err != nil {
		return err
	}
	c.log.ErrorContext(d.Context(), "event dead-lettered",
		"subject", subject, "event_id", origID, "batch_id", d.in.batchID, "attempt", d.Attempt, "reason", reason)
	c.metrics.handled.WithLabelValues(c.cfg.Name, "dead_letter").Inc()
	return nil
}

func eventID(d *Delivery) string {
	if d.Event == nil {
		return ""
	}
	return d.Event.GetMeta().GetId()
}
