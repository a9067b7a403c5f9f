package repair

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
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
	now := s.now()
	r := &repairv1.Repair{
		Id: uuid.Must(uuid.NewV7()).String(), IncidentId: e.GetIncidentId(), AnalysisId: e.GetAnalysisId(),
		Proposal: p, Confidence: e.GetConfidence(), Risk: e.GetRisk(), App: subj.GetApp(), Team: subj.GetTeam(), Subject: subj,
		PodsAffected: e.GetBlastRadiusPods(), ExpectedDowntime: e.GetExpectedDowntime(),
		Summary: e.GetSummary(), Engine: e.GetEngine(), Model: e.GetModel(),
		InputTokens: e.GetInputTokens(), OutputTokens: e.GetOutputTokens(), CostUsd: e.GetCostUsd(),
		IncidentTitle: e.GetIncidentTitle(),
		CreateTime:    timestamppb.New(now), UpdateTime: timestamppb.New(now),
	}
	created, err := s.store.Insert(ctx, tx, r, resource(p.GetTarget()), now)
	if err != nil || !created {
		return err
	}
	s.log.InfoContext(ctx, "repair proposed", "repair_id", r.GetId(), "incident_id", r.GetIncidentId(),
		"action", a.String(), "target", resource(p.GetTarget()))
	return s.step(ctx, tx, r.GetId(), repairv1.StepKind_STEP_KIND_PROPOSED, "analysis", "", fmt.Sprintf(
		"%s of %s proposed by %s (confidence %.2f, risk %s): %s", actionName(a), targetName(p.GetTarget()),
		e.GetEngine(), e.GetConfidence(), riskName(e.GetRisk()), e.GetSummary()))
}

// step appends to a repair's timeline, in tx.
func (s *Service) step(ctx context.Context, tx pgx.Tx, id string, kind repairv1.StepKind, actor, channel, msg string) error {
	return s.store.AddStep(ctx, tx, id, &repairv1.RepairStep{
		Time: timestamppb.New(s.now()), Kind: kind, Actor: actor, Channel: channel, Message: msg,
	})
}

// resource is what counters and cooldowns count by.
func resource(t *typesv1.ResourceRef) string {
	return strings.Join([]string{t.GetCluster(), t.GetNamespace(), t.GetKind(), t.GetName()}, "/")
}

func targetName(t *typesv1.ResourceRef) string {
	return t.GetKind() + " " + t.GetNamespace() + "/" + t.GetName()
}

func actionName(a typesv1.RepairAction) string {
	return strings.TrimPrefix(a.String(), "REPAIR_ACTION_")
}

func riskName(r typesv1.Risk) string { return strings.TrimPrefix(r.String(), "RISK_") }
