package notify

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
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

// queueBatch is notify's consumer: it queues every event of a batch for
// the channels that hear about it, in one transaction (one Enqueue, which
// orders the rows so that two replicas never deadlock), and wakes the
// senders. The bus acknowledges an event only once this transaction is
// committed, and nothing is sent here: a channel that hangs holds back
// only its own queue, never the stream.
func (s *Service) queueBatch(r *bus.Router[queueing]) bus.BatchHandler {
	return bus.BatchHandlerFunc(func(ctx context.Context, ds []*bus.Delivery) []error {
		errs := make([]error, len(ds))
		var queued []string
		var deliveries []postgres.Delivery
		err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
			clear(errs)
			queued, deliveries = queued[:0], deliveries[:0]
			for i, d := range ds {
				errs[i] = r.Dispatch(queueing{&deliveries, &queued}, d)
				if errs[i] != nil && !bus.IsPermanent(errs[i]) {
					return errs[i] // the transaction is of no use now
				}
			}
			return s.deliveries.Enqueue(ctx, tx, deliveries...)
		})
		if err != nil {
			for i := range errs {
				if errs[i] == nil || !bus.IsPermanent(errs[i]) {
					errs[i] = err
				}
			}
			return errs
		}
		for _, name := range queued {
			s.senders.start(name)
		}
		s.senders.wakeAll()
		return errs
	})
}

// queueing is a batch's deliveries, queued together at its end, and the
// channels they are for.
type queueing struct {
	deliveries *[]postgres.Delivery
	channels   *[]string
}

// queue queues e's message, with q's batch, for each channel that hears
// about it and does not have it yet (a redelivered event finds its
// deliveries).
func (s *Service) queue(ctx context.Context, q queueing, e bus.Event) error {
	n, err := s.noteOf(ctx, e)
	if err != nil {
		return err
	}
	eps, err := s.targets(ctx, n)
	if err != nil {
		return err
	}
	if len(eps) == 0 {
		return nil
	}
	payload, err := proto.Marshal(n.event)
	if err != nil {
		return bus.Permanent(fmt.Errorf("encode %s: %w", n.subject, err))
	}
	at := time.Now()
	if t := e.GetMeta().GetOccurredAt(); t != nil {
		at = t.AsTime()
	}
	for _, ep := range eps {
		parent, err := s.parentOn(ctx, n, ep)
		if err != nil {
			return err
		}
		*q.deliveries = append(*q.deliveries, postgres.Delivery{
			EventID: n.eventID, Channel: ep.Name, Subject: n.subject, Target: ep.Target,
			IncidentID: n.incidentID, RepairID: n.repairID, Ref: n.ref, Parent: parent, Payload: payload,
			OccurredAt: at, Language: ep.Locale.Language, TimeZone: zoneName(ep.Locale.Zone), Templates: ep.Locale.Templates,
		})
		*q.channels = append(*q.channels, ep.Name)
	}
	return nil
}

// parentOn is the message n waits for on ep. An escalation pages people
// in their own channels, which never hear of the incident's opening: there
// it waits for nothing, or the page would go out only after ReplyWait.
// Where the incident was announced (queued well before: a step comes a
// response target after the opening), it is threaded under it.
func (s *Service) parentOn(ctx context.Context, n note, ep *channel.Endpoint) (string, error) {
	if _, ok := n.event.(*eventsv1.IncidentEscalated); !ok || n.after == "" {
		return n.after, nil
	}
	p, err := s.deliveries.Posted(ctx, n.after, ep.Name, ep.Target)
	if err != nil {
		return "", err
	}
	if p.Status == "" {
		return "", nil
	}
	return n.after, nil
}

// endpoint is the channel called name as it is now, nil when there is
// none any more: the queue keeps channels by name, not by the endpoint
// they had when the event came.
func (s *Service) endpoint(name string) *channel.Endpoint {
	if ep, ok := s.channels.Channel(name); ok {
		return ep
	}
	return nil
}

// queuedNote is the message of a claimed delivery's event, drawn anew: an
// approval card that waited shows the decision that came meanwhile. What
// it waits for stays what parentOn decided when it was queued: an
// escalation's page queued to wait for nothing (a personal channel never
// told of the incident) goes on its own, without looking up a message
// that is not there.
func (s *Service) queuedNote(ctx context.Context, c *postgres.Claimed) (note, error) {
	if c.Subject == subjectRepeated {
		return s.repeatNote(ctx, c)
	}
	events, err := bus.Decode(c.Subject, c.Payload)
	if err == nil && len(events) != 1 {
		err = fmt.Errorf("%d events, want one", len(events))
	}
	if err != nil {
		return note{}, bus.Permanent(fmt.Errorf("decode queued %s: %w", c.Subject, err))
	}
	n, err := s.noteOf(ctx, events[0])
	if err == nil && c.Parent == "" {
		n.after, n.thread = "", ""
	}
	return n, err
}

// threads are the messages on a channel a note goes with, by their ids
// there ("" for none): after, the message it answers (a card it edits),
// sent or not; parent, the message whose thread it goes to.
type threads struct{ after, parent string }

// threadsOf looks up the messages n goes with on ep.
func (s *Service) threadsOf(ctx context.Context, ep *channel.Endpoint, n note) (threads, error) {
	var t threads
	if n.after != "" {
		p, err := s.deliveries.Posted(ctx, n.after, ep.Name, ep.Target)
		if err != nil {
			return t, err
		}
		t.after = p.MessageID
	}
	t.parent = t.after
	if n.thread != n.after && n.thread != "" {
		// A decision goes to the incident's thread, not under its card.
		p, err := s.deliveries.Posted(ctx, n.thread, ep.Name, ep.Target)
		if err != nil {
			return t, err
		}
		t.parent = p.MessageID
	}
	return t, nil
}

// findMargin widens the look for a message in doubt: the provider's
// clock and the database's may differ by this much.
const findMargin = time.Minute

// post sends n on ep, with the messages it goes with, and returns the
// message's id: a reply whose parent was not sent (it failed for good,
// or the reply waited long enough) goes out on its own. A delivery in
// doubt since since (not zero) is looked up first on a channel that can
// (found: its id, nothing sent), sent again with its key on one that
// dedupes, and marked as a possible repeat elsewhere. An edit is the same
// however often it is made.
func (s *Service) post(ctx context.Context, ep *channel.Endpoint, n note, t threads, since time.Time) (id string, found bool, err error) {
	key := n.eventID + "/" + ep.Name + "/" + ep.Target
	ctx = channel.WithDeliveryKey(ctx, key)
	if n.after != "" && t.after == "" {
		s.log.InfoContext(ctx, "sent without the message it answers", "channel", ep.Name, "event_id", n.eventID, "parent", n.after)
	}
	// Drawn now, in the channel's locale (a route's over the channel's,
	// notify's default where both leave it unset).
	msg := s.look.For(n.msg, ep.Locale)
	if n.edit && t.after != "" {
		err := ep.Edit(ctx, t.after, msg)
		if !channel.Judge(err).Gone {
			return t.after, false, err
		}
		s.log.InfoContext(ctx, "approval card gone, decision sent on its own", "channel", ep.Name, "repair_id", n.repairID)
	}
	if !since.IsZero() && !ep.Idempotent {
		f, ok := ep.Channel.(channel.Finder)
		if ok {
			id, err = f.Find(ctx, key, since.Add(-findMargin), t.parent)
			switch {
			case err == nil && id != "":
				s.log.InfoContext(ctx, "delivery in doubt found at its provider: not sent again", "channel", ep.Name, "event_id", n.eventID)
				return id, true, nil
			case err != nil && channel.Judge(err).Retry:
				return "", false, err
			case err != nil:
				s.log.ErrorContext(ctx, "looking up a delivery in doubt failed: sent again marked as a possible repeat", "channel", ep.Name, "event_id", n.eventID, "error", err)
			}
		}
		msg.Repeat = !ok || err != nil
	}
	id, err = ep.Send(ctx, msg, t.parent)
	return id, false, err
}

// zoneName is z's IANA name, "" for none.
func zoneName(z *time.Location) string {
	if z == nil {
		return ""
	}
	return z.String()
}
