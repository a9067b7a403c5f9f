package notify

import (
	"context"
	"fmt"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
)

// noteOf is what notify says about e, and where: for e's handler, and for
// a queued delivery, drawn anew from its event when it is sent.
//
// The incident's message starts its conversation; the rest are replies
// in its thread. The resolution, an escalation, a failed repair and a
// blocked one ask everyone to look: the channel sees them too. A deploy's
// messages are about an app, not an incident: each stands on its own. An
// approval card goes out with its buttons, or decided when the decision
// came first; a snooze edits the card, and its reminder is a card of its
// own; a decision edits the card, or is told on its own when the card is
// not there.
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
		n.msg = message.IncidentOpened(inc)
		n.msg.Actions = message.IncidentActions(inc)
	case *eventsv1.IncidentResolved:
		n.reply(e.GetIncident().GetId(), "")
		n.msg = message.IncidentResolved(e.GetIncident())
	case *eventsv1.IncidentEscalated:
		n.reply(e.GetIncident().GetId(), "")
		n.msg = message.IncidentEscalated(e)
	case *eventsv1.IncidentUpdated:
		// Only a flapping incident's update is queued (handleUpdate).
		n.reply(e.GetIncident().GetId(), "")
		n.msg = message.IncidentFlapping(e.GetIncident())
	case *eventsv1.AnalysisCompleted:
		n.reply(e.GetIncidentId(), "")
		n.msg = message.Analysis(e)
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
			n.msg = message.Decided(e)
		}
		n.msg.About.Kind = message.KindDecided
	case *eventsv1.RepairRequested:
		n.reply(e.GetIncidentId(), e.GetRepairId())
		n.msg = message.RepairRequested(e)
	case *eventsv1.RepairSucceeded:
		n.reply(e.GetIncidentId(), e.GetRepairId())
		n.msg = message.RepairSucceeded(e)
	case *eventsv1.RepairFailed:
		n.reply(e.GetIncidentId(), e.GetRepairId())
		n.msg = message.RepairFailed(e)
	case *eventsv1.RepairBlocked:
		n.reply(e.GetIncidentId(), e.GetRepairId())
		n.msg = message.RepairBlocked(e)
	case *eventsv1.DeployRequested:
		n.msg = message.DeployStarted(e)
	case *eventsv1.DeploySucceeded:
		n.msg = message.DeploySucceeded(e)
	case *eventsv1.DeployFailed:
		n.msg = message.DeployFailed(e)
	case *eventsv1.DeployRolledBack:
		n.msg = message.DeployRolledBack(e)
	default:
		return note{}, bus.Permanent(fmt.Errorf("notify: nothing to say about %s", subject))
	}
	n.msg.About.IncidentID, n.msg.About.RepairID = n.incidentID, n.repairID
	n.route = routeOf(subject, e)
	return n, nil
}
