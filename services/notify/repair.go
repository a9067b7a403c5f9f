package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
)

// approvalRequested puts a repair's approval card in the incident's
// thread, with its buttons -- or, when the decision came first, already
// decided.
func (s *Service) approvalRequested(ctx context.Context, attempt int, e *eventsv1.RepairApprovalRequested) error {
	dec, err := s.cards.SaveRequest(ctx, e)
	if err != nil {
		return err
	}
	return s.deliver(ctx, attempt, note{
		eventID: e.GetMeta().GetId(), subject: bus.SubjectRepairApprovalRequested,
		incidentID: e.GetIncidentId(), repairID: e.GetRepairId(), thread: true,
		render: func(c chat) content { return c.card(message.NewCard(e, dec, c.markup()), e.GetRepairId()) },
	})
}

// cardWaits is how many deliveries of a decision wait for its card (on
// its way: waiting for its incident's message, or rate limited), cardWait
// apart, before the decision goes out on its own.
const (
	cardWaits = 5
	cardWait  = 3 * time.Second
)

var errCardPending = errors.New("the approval card is not sent yet")

// repairDecided edits the approval card in every chat to show the
// outcome, who decided, where and when, without its buttons. A card that
// is not there (never sent, deleted) gets the decision as a reply in the
// thread instead.
func (s *Service) repairDecided(ctx context.Context, attempt int, e *eventsv1.RepairDecided) error {
	req, err := s.cards.SaveDecision(ctx, e)
	if err != nil {
		return err
	}
	n := note{
		eventID: e.GetMeta().GetId(), subject: bus.SubjectRepairDecided,
		incidentID: e.GetIncidentId(), repairID: e.GetRepairId(), thread: true,
		render: func(c chat) content {
			if req == nil {
				return content{text: message.Decided(e, c.markup())}
			}
			return c.card(message.NewCard(req, e, c.markup()), e.GetRepairId())
		},
	}
	errs := make([]error, 0, len(s.chats))
	for _, c := range s.chats {
		errs = append(errs, s.decide(ctx, attempt, c, n, req != nil))
	}
	return combine(errs)
}

// decide edits the card on c, or says the decision on its own.
func (s *Service) decide(ctx context.Context, attempt int, c chat, n note, known bool) error {
	if done, err := s.done(ctx, c, n.eventID); done || err != nil {
		return err
	}
	card, err := s.deliveries.Card(ctx, n.repairID, bus.SubjectRepairApprovalRequested, c.name(), c.target())
	switch {
	case err != nil:
		return err
	case card.Status == "sent" && known:
		editErr := c.edit(ctx, card.MessageID, n.render(c))
		v := c.judge(editErr)
		if v.notModified {
			editErr = nil // an edit before this one did it, unrecorded
		}
		if !v.gone {
			return s.record(ctx, c, n, card.MessageID, editErr)
		}
		s.log.InfoContext(ctx, "approval card gone, decision sent on its own", "channel", c.name(), "repair_id", n.repairID)
	case card.Status != "failed" && card.Status != "sent" && attempt < min(cardWaits, s.opts.MaxDeliver):
		return retryIn(fmt.Errorf("repair %s: %w", n.repairID, errCardPending), cardWait)
	}
	// Not done: checked above.
	return s.send(ctx, attempt, c, n)
}

// repairRequested says a repair starts: approved, or automatic and why
// nobody was asked.
func (s *Service) repairRequested(ctx context.Context, attempt int, e *eventsv1.RepairRequested) error {
	return s.deliver(ctx, attempt, note{
		eventID: e.GetMeta().GetId(), subject: bus.SubjectRepairRequested,
		incidentID: e.GetIncidentId(), repairID: e.GetRepairId(), thread: true,
		render: text(func(m message.Markup) string { return message.RepairRequested(e, m) }),
	})
}

func (s *Service) repairSucceeded(ctx context.Context, attempt int, e *eventsv1.RepairSucceeded) error {
	return s.deliver(ctx, attempt, note{
		eventID: e.GetMeta().GetId(), subject: bus.SubjectRepairSucceeded,
		incidentID: e.GetIncidentId(), repairID: e.GetRepairId(), thread: true,
		render: text(func(m message.Markup) string { return message.RepairSucceeded(e, m) }),
	})
}

// repairFailed is an escalation: the channel sees it too.
func (s *Service) repairFailed(ctx context.Context, attempt int, e *eventsv1.RepairFailed) error {
	return s.deliver(ctx, attempt, note{
		eventID: e.GetMeta().GetId(), subject: bus.SubjectRepairFailed,
		incidentID: e.GetIncidentId(), repairID: e.GetRepairId(), thread: true, broadcast: true,
		render: text(func(m message.Markup) string { return message.RepairFailed(e, m) }),
	})
}

// repairBlocked asks a person to look: the channel sees it too.
func (s *Service) repairBlocked(ctx context.Context, attempt int, e *eventsv1.RepairBlocked) error {
	return s.deliver(ctx, attempt, note{
		eventID: e.GetMeta().GetId(), subject: bus.SubjectRepairBlocked,
		incidentID: e.GetIncidentId(), repairID: e.GetRepairId(), thread: true, broadcast: true,
		render: text(func(m message.Markup) string { return message.RepairBlocked(e, m) }),
	})
}
