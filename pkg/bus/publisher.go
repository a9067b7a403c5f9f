package bus

import (
	"context"
	"errors"
	"fmt"

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
	msgs := make([]Message, len(events))
	for i, e := range events {
		m, err := Encode(ctx, e)
		if err != nil {
			return err
		}
		msgs[i] = m
	}
	return p.PublishMessages(ctx, msgs...)
}

// PublishMessages is Publish for events already encoded.
func (p *Publisher) PublishMessages(ctx context.Context, msgs ...Message) error {
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
			p.metrics.published.WithLabelValues(ack.Stream).Inc()
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
