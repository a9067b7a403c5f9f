package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

// Message is an event encoded for the wire: what the outbox stores and the
// relay publishes later, unchanged.
type Message struct {
	ID      string
	Subject string
	Data    []byte
	// Headers besides the ones every message gets (trace context).
	Headers map[string]string
}

// Encode turns an event into a Message, carrying ctx's trace context.
func Encode(ctx context.Context, e Event) (Message, error) {
	subject, err := SubjectOf(e)
	if err != nil {
		return Message{}, err
	}
	id := e.GetMeta().GetId()
	if id == "" {
		return Message{}, fmt.Errorf("bus: %s has no meta.id", subject)
	}
	data, err := proto.Marshal(e)
	if err != nil {
		return Message{}, fmt.Errorf("bus: marshal %s: %w", subject, err)
	}
	h := nats.Header{}
	injectTrace(ctx, h)
	headers := make(map[string]string, len(h))
	for k := range h {
		headers[k] = h.Get(k)
	}
	return Message{ID: id, Subject: subject, Data: data, Headers: headers}, nil
}

func (m Message) natsMsg() *nats.Msg {
	h := nats.Header{}
	for k, v := range m.Headers {
		h.Set(k, v)
	}
	h.Set(jetstream.MsgIDHeader, m.ID)
	h.Set(HeaderContentType, contentType)
	if mt, ok := typeOf[m.Subject]; ok {
		h.Set(HeaderEventType, string(mt.Descriptor().FullName()))
	}
	return &nats.Msg{Subject: m.Subject, Data: m.Data, Header: h}
}

// Publisher stores events on their streams.
type Publisher struct {
	js      jetstream.JetStream
	metrics *metrics
}

// NewPublisher returns a Publisher over a JetStream context. Create the
// context with jetstream.WithPublishAsyncTimeout so a lost ack fails instead
// of waiting for ctx.
func NewPublisher(js jetstream.JetStream, m *Metrics) *Publisher {
	return &Publisher{js: js, metrics: m.get()}
}

// Publish stores events and returns once JetStream has acknowledged every
// one of them. All are sent at once and their acks awaited together, so a
// batch costs one round trip, not one per event.
func (p *Publisher) Publish(ctx context.Context, events ...Event) error {
	msgs, err := encodeAll(ctx, events)
	if err != nil {
		return err
	}
	return p.PublishMessages(ctx, msgs...)
}

func encodeAll(ctx context.Context, events []Event) ([]Message, error) {
	msgs := make([]Message, len(events))
	for i, e := range events {
		m, err := Encode(ctx, e)
		if err != nil {
			return nil, err
		}
		msgs[i] = m
	}
	return msgs, nil
}

// maxAtomicBatch is JetStream's default limit of messages in one atomic
// batch. minAtomicBatch is the smallest batch sent atomically: JetStream
// stages each atomic batch in a store of its own, a fixed cost that only a
// batch of several messages earns back in fsyncs saved (measured:
// docs/benchmarks.md).
const (
	maxAtomicBatch = 1000
	minAtomicBatch = 8
)

// PublishMessages is Publish for events already encoded.
//
// Messages bound for one stream are sent as one atomic batch (when there are
// at least minAtomicBatch of them): with
// sync_interval always, JetStream then fsyncs once for the batch instead of
// once per message, which is what makes durable ingest fast. A batch that
// JetStream refuses (one of its events is already stored, after a crash and
// a republish, say) is sent again message by message, where each duplicate
// is dropped on its own; the batch was all or nothing, so nothing is stored
// twice.
func (p *Publisher) PublishMessages(ctx context.Context, msgs ...Message) error {
	var errs []error
	for _, group := range byStream(msgs) {
		for len(group) > 0 {
			n := min(len(group), maxAtomicBatch)
			chunk := group[:n]
			group = group[n:]
			if len(chunk) >= minAtomicBatch {
				if err := p.publishAtomic(ctx, chunk); err == nil {
					continue
				} else if ctx.Err() != nil {
					return err
				}
			}
			if err := p.publishEach(ctx, chunk); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return markFull(errors.Join(errs...))
}

// maxBatchBytes caps an EventBatch below NATS's default max_payload (1 MiB);
// a server configured for less lowers it further.
const maxBatchBytes = 1 << 20

// PublishBatched is PublishMessages for events that may travel in EventBatch
// envelopes: the messages of a stream that has a batch subject go out in as
// few envelopes as fit in a message, each one a single stored message (one
// fsync) however many events it carries. producer names the publisher in
// the envelopes' meta.
//
// An envelope's id is new, so JetStream does not drop a republished
// envelope as a duplicate; consumers do, event by event, through the ids of
// the events inside (their inbox).
func (p *Publisher) PublishBatched(ctx context.Context, producer string, msgs ...Message) error {
	limit := maxBatchBytes
	if mp := int(p.js.Conn().MaxPayload()); mp > 0 {
		// Headers (trace context, ids) travel besides the payload.
		limit = min(limit, mp-4096)
	}
	out := make([]Message, 0, len(msgs))
	for _, group := range byStream(msgs) {
		stream, _ := streamFor(group[0].Subject)
		subject, ok := batchSubjects[stream]
		if !ok || len(group) < 2 {
			out = append(out, group...)
			continue
		}
		packed, err := pack(producer, subject, group, limit)
		if err != nil {
			return err
		}
		out = append(out, packed...)
	}
	return p.PublishMessages(ctx, out...)
}

// byStream splits msgs by the stream their subject belongs to, keeping their
// order; a subject on no stream gets a group of its own and fails there.
func byStream(msgs []Message) [][]Message {
	var groups [][]Message
	index := map[string]int{}
	for _, m := range msgs {
		stream, err := streamFor(m.Subject)
		if err != nil {
			groups = append(groups, []Message{m})
			continue
		}
		i, ok := index[stream]
		if !ok {
			i = len(groups)
			index[stream] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], m)
	}
	return groups
}

// publishAtomic sends msgs as one JetStream atomic batch and waits for the
// commit's acknowledgement.
func (p *Publisher) publishAtomic(ctx context.Context, msgs []Message) error {
	batchID := NewID()
	nc := p.js.Conn()
	for i, m := range msgs {
		nm := m.natsMsg()
		nm.Header.Set(headerBatchID, batchID)
		nm.Header.Set(headerBatchSeq, strconv.Itoa(i+1))
		if i < len(msgs)-1 {
			if err := nc.PublishMsg(nm); err != nil {
				return fmt.Errorf("publish batch %s: %w", batchID, err)
			}
			continue
		}
		nm.Header.Set(headerBatchCommit, "1")
		ack, err := p.js.PublishMsg(ctx, nm)
		if err != nil {
			return fmt.Errorf("commit batch %s of %d: %w", batchID, len(msgs), err)
		}
		for _, m := range msgs {
			p.metrics.published.WithLabelValues(ack.Stream, m.Subject).Inc()
		}
	}
	return nil
}

// publishEach sends msgs one by one, all in flight at once, and waits for
// every acknowledgement.
func (p *Publisher) publishEach(ctx context.Context, msgs []Message) error {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	var errs []error
	for _, m := range msgs {
		f, err := p.js.PublishMsgAsync(m.natsMsg(), jetstream.WithMsgID(m.ID))
		if err != nil {
			errs = append(errs, fmt.Errorf("publish %s %s: %w", m.Subject, m.ID, err))
			break
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			p.metrics.published.WithLabelValues(ack.Stream, f.Msg().Subject).Inc()
		case err := <-f.Err():
			errs = append(errs, fmt.Errorf("publish %s: %w", f.Msg().Subject, err))
		case <-ctx.Done():
			return fmt.Errorf("publish: waiting for acks: %w", ctx.Err())
		}
	}
	if len(errs) > 0 {
		p.metrics.publishErrors.Add(float64(len(errs)))
	}
	return errors.Join(errs...)
}
