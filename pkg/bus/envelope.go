package bus

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
)

// SubjectAlertBatched carries EventBatch envelopes of alert.fired and
// alert.resolved events (see proto/vigil/events/v1/batch.proto).
const SubjectAlertBatched = "alert.batched"

// batchSubjects names the batch subject of each stream whose events may be
// published in EventBatch envelopes. A consumer of such a stream receives
// its batch subject as well and unpacks it.
var batchSubjects = map[string]string{
	"ALERTS": SubjectAlertBatched,
}

func isBatchSubject(subject string) bool {
	for _, s := range batchSubjects {
		if s == subject {
			return true
		}
	}
	return false
}

// envelopeOverhead bounds what an EventBatch adds around its events' own
// bytes (field tags and lengths, the batch's meta), so a batch can be cut
// to fit a message size before it is encoded.
const (
	envelopeOverhead   = 256
	batchedOverheadPer = 32
)

func batchedSize(m Message) int {
	n := len(m.Subject) + len(m.Data) + batchedOverheadPer
	for k, v := range m.Headers {
		n += len(k) + len(v) + 8
	}
	return n
}

// pack puts msgs, all of one stream, into as few EventBatch messages on
// subject as fit in maxBytes each. A message too big to share a batch is
// returned as it is.
func pack(producer, subject string, msgs []Message, maxBytes int) ([]Message, error) {
	var out []Message
	var batch []Message
	size := envelopeOverhead
	flush := func() error {
		switch len(batch) {
		case 0:
			return nil
		case 1:
			out = append(out, batch[0])
		default:
			env, err := envelope(producer, subject, batch)
			if err != nil {
				return err
			}
			out = append(out, env)
		}
		batch, size = nil, envelopeOverhead
		return nil
	}
	for _, m := range msgs {
		n := batchedSize(m)
		if size+n > maxBytes {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		batch = append(batch, m)
		size += n
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

func envelope(producer, subject string, msgs []Message) (Message, error) {
	b := &eventsv1.EventBatch{
		Meta:   NewMeta(producer, nil),
		Events: make([]*eventsv1.BatchedEvent, len(msgs)),
	}
	for i, m := range msgs {
		b.Events[i] = &eventsv1.BatchedEvent{Subject: m.Subject, Data: m.Data, Headers: m.Headers}
	}
	data, err := proto.Marshal(b)
	if err != nil {
		return Message{}, fmt.Errorf("bus: marshal batch of %d: %w", len(msgs), err)
	}
	return Message{ID: b.GetMeta().GetId(), Subject: subject, Data: data}, nil
}

// unpack decodes an EventBatch. The batch is unusable (a permanent error)
// only when it cannot be decoded at all; an event inside it that cannot be
// decoded is reported in its own entry, so the rest are still handled.
//
// Every event must be of the batch's own stream: a batch cannot smuggle
// events past a consumer's subject filter into another stream's handlers.
func unpack(subject string, data []byte) ([]unpacked, error) {
	var b eventsv1.EventBatch
	if err := proto.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("decode %s: %w", subject, err)
	}
	if len(b.GetEvents()) == 0 {
		return nil, fmt.Errorf("decode %s %s: no events", subject, b.GetMeta().GetId())
	}
	stream, err := streamFor(subject)
	if err != nil {
		return nil, err
	}
	out := make([]unpacked, len(b.GetEvents()))
	for i, be := range b.GetEvents() {
		out[i].raw = be
		if st, err := streamFor(be.GetSubject()); err != nil || st != stream || isBatchSubject(be.GetSubject()) {
			out[i].foreign = true
			out[i].err = fmt.Errorf("event %d of batch %s: subject %q is not an event of stream %s", i, b.GetMeta().GetId(), be.GetSubject(), stream)
			continue
		}
		out[i].event, out[i].err = decode(be.GetSubject(), be.GetData())
	}
	return out, nil
}

type unpacked struct {
	raw   *eventsv1.BatchedEvent
	event Event
	err   error
	// foreign: the subject is not one of the batch's stream, so no
	// consumer's filter would take it; every consumer dead-letters it
	// rather than all of them dropping it.
	foreign bool
}

// Decode returns the events a stored message carries: the one event of its
// subject, or every event of an EventBatch, in order. It is for readers
// that do not go through a Consumer (tools, tests); an event that cannot be
// decoded fails the whole call.
func Decode(subject string, data []byte) ([]Event, error) {
	if !isBatchSubject(subject) {
		e, err := decode(subject, data)
		if err != nil {
			return nil, err
		}
		return []Event{e}, nil
	}
	entries, err := unpack(subject, data)
	if err != nil {
		return nil, err
	}
	out := make([]Event, len(entries))
	for i, e := range entries {
		if e.err != nil {
			return nil, e.err
		}
		out[i] = e.event
	}
	return out, nil
}
