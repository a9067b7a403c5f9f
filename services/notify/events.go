package notify

import (
	"context"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
)

// incidentOpened starts the incident's conversation: a message of its own
// in every chat, which what follows replies to.
func (s *Service) incidentOpened(ctx context.Context, attempt int, e *eventsv1.IncidentOpened) error {
	return s.deliver(ctx, attempt, note{
		eventID: e.GetMeta().GetId(), subject: bus.SubjectIncidentOpened, incidentID: e.GetIncident().GetId(),
		render: text(func(m message.Markup) string { return message.IncidentOpened(e.GetIncident(), m) }),
	})
}

// incidentResolved ends the conversation: a reply that the channel sees
// too.
func (s *Service) incidentResolved(ctx context.Context, attempt int, e *eventsv1.IncidentResolved) error {
	return s.deliver(ctx, attempt, note{
		eventID: e.GetMeta().GetId(), subject: bus.SubjectIncidentResolved, incidentID: e.GetIncident().GetId(),
		thread: true, broadcast: true,
		render: text(func(m message.Markup) string { return message.IncidentResolved(e.GetIncident(), m) }),
	})
}

// analysisCompleted sends an analysis as a reply to the message that
// announced its incident, or on its own when there is none.
func (s *Service) analysisCompleted(ctx context.Context, attempt int, e *eventsv1.AnalysisCompleted) error {
	return s.deliver(ctx, attempt, note{
		eventID: e.GetMeta().GetId(), subject: bus.SubjectAnalysisCompleted, incidentID: e.GetIncidentId(),
		thread: true,
		render: text(func(m message.Markup) string { return message.Analysis(e, m) }),
	})
}
