package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
	"github.com/vigil-ops/vigil/services/notify/route"
)

// note is one message about an event, for every channel.
type note struct {
	event                                  bus.Event
	eventID, subject, incidentID, repairID string
	// ref is what later messages call this one ("" for nothing): the
	// incident's message, an approval card.
	ref string
	// after is the ref of the message this one waits for ("" for none):
	// the incident's message, whose thread it goes to; for a decision, the
	// approval card, which it edits when edit is set.
	after string
	edit  bool
	// thread is the ref of the message whose thread this one goes to
	// ("" for a top-level message).
	thread string
	msg    message.Message
	// route is what routes look at (routing.go).
	route route.Event
}

// incidentRef and cardRef name the messages others refer to; "" for no
// id, which nothing refers to.
func incidentRef(id string) string   { return ref("incident/", id) }
func cardRef(repairID string) string { return ref("card/", repairID) }

func ref(kind, id string) string {
	if id == "" {
		return ""
	}
	return kind + id
}

// reply makes n a reply in the thread of incidentID's message, about
// repairID if that is set.
func (n *note) reply(incidentID, repairID string) {
	n.incidentID, n.repairID = incidentID, repairID
	n.after = incidentRef(incidentID)
	n.thread = n.after
}

// handle sends e's message to the channels that hear about it, each once:
// a channel that already has it (a redelivered event) is skipped.
func (s *Service) handle(ctx context.Context, e bus.Event) error {
	n, err := s.noteOf(ctx, e)
	if err != nil {
		return err
	}
	eps, err := s.targets(ctx, n)
	if err != nil {
		return err
	}
	return s.deliver(ctx, n, eps)
}

// deliver sends n on each of eps at once, each once.
func (s *Service) deliver(ctx context.Context, n note, eps []*channel.Endpoint) error {
	// Each channel on its own: one that hangs until its timeout (a dead
	// webhook) does not hold back the others' message.
	errs := make([]error, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Go(func() { errs[i] = s.deliverTo(ctx, ep, n) })
	}
	wg.Wait()
	return combine(errs)
}

// deliverTo sends n on ep, unless ep has it; a reply whose parent is not
// sent on ep yet is parked until it is, and the event needs nothing more.
func (s *Service) deliverTo(ctx context.Context, ep *channel.Endpoint, n note) error {
	if done, err := s.deliveries.Done(ctx, n.eventID, ep.Name); done || err != nil {
		return err
	}
	var after string
	if n.after != "" {
		payload, err := proto.Marshal(n.event)
		if err != nil {
			return bus.Permanent(fmt.Errorf("encode %s: %w", n.subject, err))
		}
		p, parked, err := s.deliveries.Park(ctx, postgres.Reply{
			EventID: n.eventID, Channel: ep.Name, Target: ep.Target, Parent: n.after, Subject: n.subject, Payload: payload,
		})
		if err != nil {
			return err
		}
		if parked {
			s.log.InfoContext(ctx, "reply parked until its parent is sent", "channel", ep.Name, "event_id", n.eventID, "parent", n.after)
			return nil
		}
		after = p.MessageID
	}
	return s.post(ctx, ep, n, after, false)
}

// post sends n on ep -- the message it waits for was sent as after, or
// was not ("") -- and records the attempt. last: no retry follows, so a
// failure that could be retried is given up.
func (s *Service) post(ctx context.Context, ep *channel.Endpoint, n note, after string, last bool) error {
	ctx = channel.WithDeliveryKey(ctx, n.eventID+"/"+ep.Name+"/"+ep.Target)
	if n.after != "" && after == "" {
		s.log.InfoContext(ctx, "sent without the message it answers", "channel", ep.Name, "event_id", n.eventID, "parent", n.after)
	}
	if n.edit && after != "" {
		msg := n.msg
		msg.Locale = ep.Locale
		err := ep.Edit(ctx, after, msg)
		if !channel.Judge(err).Gone {
			return s.record(ctx, ep, n, after, err, last)
		}
		s.log.InfoContext(ctx, "approval card gone, decision sent on its own", "channel", ep.Name, "repair_id", n.repairID)
		after = ""
	}
	parent := after
	if n.thread != n.after && n.thread != "" {
		// A decision goes to the incident's thread, not under its card.
		p, err := s.deliveries.Posted(ctx, n.thread, ep.Name, ep.Target)
		if err != nil {
			return err
		}
		parent = p.MessageID
	}
	msg := n.msg
	msg.Locale = ep.Locale
	id, err := ep.Send(ctx, msg, parent)
	return s.record(ctx, ep, n, id, err, last)
}

// record logs an attempt at n on ep, and says what the bus should do: a
// rate limit is honoured through the bus's redelivery delay.
func (s *Service) record(ctx context.Context, ep *channel.Endpoint, n note, id string, sendErr error, last bool) error {
	a := postgres.Attempt{
		EventID: n.eventID, Channel: ep.Name, Subject: n.subject, Target: ep.Target,
		IncidentID: n.incidentID, RepairID: n.repairID, Ref: n.ref,
	}
	v := channel.Judge(sendErr)
	a.HTTPStatus, a.RetryAfter = v.Status, v.RetryAfter
	switch {
	case sendErr == nil:
		a.Outcome, a.MessageID, a.HTTPStatus = postgres.OutcomeSent, id, http.StatusOK
	case v.Retry && !last:
		a.Outcome, a.Error = postgres.OutcomeRetry, sendErr.Error()
	default:
		a.Outcome, a.Error = postgres.OutcomeFailed, sendErr.Error()
	}
	if err := s.deliveries.Record(ctx, a); err != nil {
		if sendErr == nil {
			// Sent but not recorded: a redelivery would send it again, which
			// beats losing the record of what people were told.
			s.log.ErrorContext(ctx, "sent but not recorded", "channel", ep.Name, "event_id", n.eventID, "error", err)
		}
		return err
	}
	if a.Outcome != postgres.OutcomeRetry && n.ref != "" {
		s.wake() // its replies are due
	}
	switch a.Outcome {
	case postgres.OutcomeSent:
		s.log.InfoContext(ctx, "notification sent", "channel", ep.Name, "event_id", n.eventID, "subject", n.subject)
		return nil
	case postgres.OutcomeRetry:
		return retryIn(sendErr, a.RetryAfter)
	}
	return bus.Permanent(fmt.Errorf("%s: %w", ep.Name, sendErr))
}

// retryError asks for the event again, after delay if it is set.
type retryError struct {
	err   error
	delay time.Duration
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

func retryIn(err error, delay time.Duration) error { return &retryError{err: err, delay: delay} }

// combine is what the bus should do with an event after every channel
// had its go: redeliver it while any channel may still take it (after the
// longest delay a channel asked for), give it up when every channel that
// failed failed for good (the channels that have it are not sent it
// again).
func combine(errs []error) error {
	var (
		retry, permanent []error
		delay            time.Duration
	)
	for _, err := range errs {
		switch {
		case err == nil:
		case bus.IsPermanent(err):
			permanent = append(permanent, err)
		default:
			retry = append(retry, err)
			if r, ok := errors.AsType[*retryError](err); ok {
				delay = max(delay, r.delay)
			}
		}
	}
	switch {
	case len(retry) > 0 && delay > 0:
		return bus.RetryAfter(errors.Join(retry...), delay)
	case len(retry) > 0:
		return errors.Join(retry...)
	case len(permanent) > 0:
		return errors.Join(permanent...)
	}
	return nil
}
