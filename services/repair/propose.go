package repair

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/repair/internal/lifecycle"
)

// propose records the repair an analysis proposes, in the inbox's
// transaction: one per analysis (a redelivery makes none). Planning and
// deciding read the cluster, so a worker does them after the commit.
func (s *Service) propose(ctx context.Context, tx pgx.Tx, e *eventsv1.AnalysisCompleted) error {
	p := e.GetProposal()
	a := p.GetAction()
	if p == nil || a == typesv1.RepairAction_REPAIR_ACTION_NONE || a == typesv1.RepairAction_REPAIR_ACTION_UNSPECIFIED {
		// "Needs a person": nothing to repair; notify has told people.
		return nil
	}
	if uuid.Validate(e.GetAnalysisId()) != nil || uuid.Validate(e.GetIncidentId()) != nil {
		return bus.Permanent(fmt.Errorf("analysis %q of incident %q: ids must be UUIDs", e.GetAnalysisId(), e.GetIncidentId()))
	}
	// What the repair may touch, and whose it is, come from the incident's
	// subject as this service recorded it, not from the analysis.
	subj, err := s.subjectOf(ctx, tx, e.GetIncidentId(), e.GetMeta().GetOccurredAt().AsTime())
	if err != nil {
		return err
	}
	r := lifecycle.Propose(&repairv1.Repair{
		Id: uuid.Must(uuid.NewV7()).String(), IncidentId: e.GetIncidentId(), AnalysisId: e.GetAnalysisId(),
		Proposal: p, Confidence: e.GetConfidence(), Risk: e.GetRisk(), App: subj.GetApp(), Team: subj.GetTeam(), Subject: subj,
		PodsAffected: e.GetBlastRadiusPods(), ExpectedDowntime: e.GetExpectedDowntime(),
		Summary: e.GetSummary(), Engine: e.GetEngine(), Model: e.GetModel(),
		InputTokens: e.GetInputTokens(), OutputTokens: e.GetOutputTokens(), CostUsd: e.GetCostUsd(),
		IncidentTitle: e.GetIncidentTitle(),
	}, s.now())
	created, err := s.store.Repairs(tx).Add(ctx, r)
	if err != nil || !created {
		return err
	}
	s.log.InfoContext(ctx, "repair proposed", "repair_id", r.ID(), "incident_id", e.GetIncidentId(),
		"action", a.String(), "target", r.Resource())
	return nil
}
