package notify

import (
	"context"
	"fmt"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
)

// noteOf is what notify says about e, and where: for e's handler, and for
// a reply that was parked and is drawn anew from its event.
//
// The incident's message starts its conversation; the rest are replies
// in its thread. The resolution, a failed repair and a blocked one ask
// everyone to look: the channel sees them too. An approval card goes out
// with its buttons, or decided when the decision came first; a decision
// edits the card, or is told on its own when the card is not there.
func (s *Service) noteOf(ctx context.Context, e bus.Event) (note, error) {
	subject, err := bus.SubjectOf(e)
	if err != nil {
		return note{}, bus.Permanent(err)
	}
	n := note{event: e, eventID: e.GetMeta().GetId(), subject: subject}
	switch e := e.(type) {
	case *eventsv1.IncidentOpened:
		inc := e.GetIncident()
		n.incidentID, n.ref = inc.GetId(), incidentRef(inc.GetId())
		n.msg = message.Text(func(m message.Markup) string { return message.IncidentOpened(inc, m) })
		n.msg.About = message.IncidentAbout(message.KindIncidentOpened, inc)
		n.msg.Actions = message.IncidentActions(inc)
	case *eventsv1.IncidentResolved:
		n.reply(e.GetIncident().GetId(), "")
		n.msg = message.Text(func(m message.Markup) string { return message.IncidentResolved(e.GetIncident(), m) })
		n.msg.Broadcast = true
		n.msg.About = message.IncidentAbout(message.KindIncidentResolved, e.GetIncident())
	case *eventsv1.AnalysisCompleted:
		n.reply(e.GetIncidentId(), "")
		n.msg = message.Text(func(m message.Markup) string { return message.Analysis(e, m) })
		n.msg.About.Kind = message.KindAnalysis
	case *eventsv1.RepairApprovalRequested:
		dec, err := s.cards.SaveRequest(ctx, e)
		if err != nil {
			return note{}, err
		}
		n.reply(e.GetIncidentId(), e.GetRepairId())
		switch {
		case e.GetReminder():
			// Asked again after a snooze: a card of its own in the
			// thread; a decision edits the first one.
		case e.GetSnoozedUntil() != nil:
			// Snoozed: the card says so, where it can be edited.
			n.after, n.edit = cardRef(e.GetRepairId()), true
		default:
			n.ref = cardRef(e.GetRepairId())
		}
		n.msg = message.ApprovalCard(e, dec)
		n.msg.About.Kind = message.KindApprovalCard
	case *eventsv1.RepairDecided:
		req, err := s.cards.SaveDecision(ctx, e)
		if err != nil {
			return note{}, err
		}
		n.reply(e.GetIncidentId(), e.GetRepairId())
		n.after, n.edit = cardRef(e.GetRepairId()), req != nil
		if req != nil {
			n.msg = message.ApprovalCard(req, e)
		} else {
			n.msg = message.Text(func(m message.Markup) string { return message.Decided(e, m) })
		}
		n.msg.About.Kind = message.KindDecided
	case *eventsv1.RepairRequested:
		n.reply(e.GetIncidentId(), e.GetRepairId())
		n.msg = message.Text(func(m message.Markup) string { return message.RepairRequested(e, m) })
		n.msg.About.Kind = message.KindRepairRequested
	case *eventsv1.RepairSucceeded:
		n.reply(e.GetIncidentId(), e.GetRepairId())
		n.msg = message.Text(func(m message.Markup) string { return message.RepairSucceeded(e, m) })
		n.msg.About.Kind = message.KindRepairSucceeded
	case *eventsv1.RepairFailed:
		n.reply(e.GetIncidentId(), e.GetRepairId())
		n.msg = message.Text(func(m message.Markup) string { return message.RepairFailed(e, m) })
		n.msg.Broadcast = true
		n.msg.About.Kind = message.KindRepairFailed
	case *eventsv1.RepairBlocked:
		n.reply(e.GetIncidentId(), e.GetRepairId())
		n.msg = message.Text(func(m message.Markup) string { return message.RepairBlocked(e, m) })
		n.msg.Broadcast = true
		n.msg.About.Kind = message.KindRepairBlocked
	default:
		return note{}, bus.Permanent(fmt.Errorf("notify: nothing to say about %s", subject))
	}
	n.msg.About.IncidentID, n.msg.About.RepairID = n.incidentID, n.repairID
	n.route = routeOf(subject, e)
	return n, nil
}
