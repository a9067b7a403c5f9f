package notify

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
	"github.com/vigil-ops/vigil/services/notify/route"
)

// subjectRepeated is what the delivery log calls a re-announcement.
const subjectRepeated = "incident.repeated"

// errNotFiring: an incident was acknowledged or resolved while its
// re-announcement waited in its channel's queue.
var errNotFiring = errors.New("the incident was acknowledged or resolved before its re-announcement went out")

// repeat announces again, in their thread, the incidents still firing
// (neither resolved nor acknowledged) on each of their routes' repeat
// interval, every RepeatCheck until ctx ends.
func (s *Service) repeat(ctx context.Context) {
	every(ctx, s.opts.RepeatCheck, func() { s.repeatDue(ctx, time.Now()) })
}

// repeatDue queues the re-announcements due at now. A channel where the
// incident was not announced gets none.
func (s *Service) repeatDue(ctx context.Context, now time.Time) {
	tree := s.routes.current.Load().tree
	if tree == nil {
		return
	}
	incs, err := s.incidents.Firing(ctx, now.Add(-s.opts.Retention))
	if err != nil {
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "listing firing incidents failed", "error", err)
		}
		return
	}
	for _, inc := range incs {
		// A channel on two routes is repeated on the shorter interval, so
		// that an interval number means one thing per channel.
		every := map[string]time.Duration{}
		var eps []*channel.Endpoint
		for _, m := range tree.Match(incidentEvent(route.IncidentOpened, inc)) {
			if m.RepeatInterval <= 0 {
				continue
			}
			for _, ep := range s.endpointsOf(ctx, note{incidentID: inc.ID}, []route.Match{m}) {
				d, ok := every[ep.Name]
				if !ok {
					eps = append(eps, ep)
				}
				if !ok || m.RepeatInterval < d {
					every[ep.Name] = m.RepeatInterval
				}
			}
		}
		for _, ep := range eps {
			if n := int(now.Sub(inc.OpenedAt) / every[ep.Name]); n >= 1 {
				s.repeatOn(ctx, ep, inc, n, now)
			}
		}
	}
}

// repeatOn queues inc's n-th re-announcement on ep, in the channel's
// queue like every other message: a paused or rate-limited channel holds
// it back, a dead one holds back only itself, and it is retried as the
// others are. Its key (repeatID, one per incident, channel and interval)
// makes it one delivery whatever the replicas and the passes that see it
// due.
func (s *Service) repeatOn(ctx context.Context, ep *channel.Endpoint, inc postgres.Incident, n int, now time.Time) {
	parent, err := s.deliveries.Posted(ctx, incidentRef(inc.ID), ep.Name, ep.Target)
	if err != nil || parent.MessageID == "" {
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "looking up an incident's message failed", "incident_id", inc.ID, "channel", ep.Name, "error", err)
		}
		return
	}
	// The payload is the interval's time: the message is drawn when it
	// is sent, from the incident as it is then.
	at, err := proto.Marshal(timestamppb.New(now))
	if err != nil {
		s.log.ErrorContext(ctx, "encoding a re-announcement failed", "incident_id", inc.ID, "error", err)
		return
	}
	d := postgres.Delivery{
		EventID: repeatID(inc.ID, n), Channel: ep.Name, Subject: subjectRepeated, Target: ep.Target,
		IncidentID: inc.ID, Parent: incidentRef(inc.ID), Payload: at, OccurredAt: now,
		Language: ep.Locale.Language, TimeZone: zoneName(ep.Locale.Zone), Templates: ep.Locale.Templates,
	}
	if err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error { return s.deliveries.Enqueue(ctx, tx, d) }); err != nil {
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "queueing a re-announcement failed", "incident_id", inc.ID, "channel", ep.Name, "error", err)
		}
		return
	}
	s.senders.start(ep.Name)
	s.senders.wakeAll()
}

// repeatID is the key of the n-th re-announcement of incident id on a
// channel (the delivery's channel completes it).
func repeatID(id string, n int) string { return fmt.Sprintf("repeat/%s/%d", id, n) }

// repeatNote is the re-announcement of a claimed delivery, drawn from the
// incident as notify knows it now; a permanent error when the incident
// stopped firing meanwhile (it is not said again).
func (s *Service) repeatNote(ctx context.Context, c *postgres.Claimed) (note, error) {
	rest, _ := strings.CutPrefix(c.EventID, "repeat/")
	i := strings.LastIndex(rest, "/")
	var at timestamppb.Timestamp
	if i <= 0 || proto.Unmarshal(c.Payload, &at) != nil {
		return note{}, bus.Permanent(fmt.Errorf("queued re-announcement %s: not one", c.EventID))
	}
	if _, err := strconv.Atoi(rest[i+1:]); err != nil {
		return note{}, bus.Permanent(fmt.Errorf("queued re-announcement %s: not one", c.EventID))
	}
	inc, ok, err := s.incidents.Get(ctx, rest[:i])
	switch {
	case err != nil:
		return note{}, err
	case !ok || inc.Resolved || inc.Acknowledged:
		return note{}, bus.Permanent(errNotFiring)
	}
	n := note{
		eventID: c.EventID, subject: subjectRepeated, incidentID: inc.ID,
		msg: message.IncidentRepeated(message.Firing{ID: inc.ID, Title: inc.Title, Firing: inc.Firing, Alert: inc.Alerts, OpenedAt: inc.OpenedAt}, at.AsTime()),
	}
	n.after, n.thread = incidentRef(inc.ID), incidentRef(inc.ID)
	return n, nil
}
