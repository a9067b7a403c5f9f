package notify

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
	"github.com/vigil-ops/vigil/services/notify/route"
)

// subjectRepeated is what the delivery log calls a re-announcement.
const subjectRepeated = "incident.repeated"

// repeat announces again, in their thread, the incidents still firing
// (neither resolved nor acknowledged) on each of their routes' repeat
// interval, every RepeatCheck until ctx ends.
func (s *Service) repeat(ctx context.Context) {
	every(ctx, s.opts.RepeatCheck, func() { s.repeatDue(ctx, time.Now()) })
}

// repeatDue sends the re-announcements due at now. The n-th interval of
// an incident on a channel is claimed before it is sent, so that it goes
// out at most once whatever the replicas and restarts; a send that fails
// is not tried again (the next interval's will be). A channel where the
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

// repeatOn sends inc's n-th re-announcement on ep, unless it was.
func (s *Service) repeatOn(ctx context.Context, ep *channel.Endpoint, inc postgres.Incident, n int, now time.Time) {
	parent, err := s.deliveries.Posted(ctx, incidentRef(inc.ID), ep.Name, ep.Target)
	if err != nil || parent.MessageID == "" {
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "looking up an incident's message failed", "incident_id", inc.ID, "channel", ep.Name, "error", err)
		}
		return
	}
	claimed, err := s.incidents.ClaimRepeat(ctx, inc.ID, ep.Name, n)
	if err != nil || !claimed {
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "claiming a re-announcement failed", "incident_id", inc.ID, "channel", ep.Name, "error", err)
		}
		return
	}
	nt := note{
		eventID: fmt.Sprintf("repeat/%s/%d", inc.ID, n), subject: subjectRepeated,
		incidentID: inc.ID,
		msg:        message.IncidentRepeated(message.Firing{ID: inc.ID, Title: inc.Title, Firing: inc.Firing, Alert: inc.Alerts, OpenedAt: inc.OpenedAt}, now),
	}
	nt.after, nt.thread = incidentRef(inc.ID), incidentRef(inc.ID)
	// Sent here, not through the channel's queue: the claim above makes it
	// at most once, and the next interval's replaces one that failed.
	if _, err := s.post(ctx, ep, nt, threads{after: parent.MessageID, parent: parent.MessageID}); err != nil {
		s.log.WarnContext(ctx, "re-announcing an incident failed", "incident_id", inc.ID, "channel", ep.Name, "error", err)
	}
}
