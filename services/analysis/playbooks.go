package analysis

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/services/analysis/internal/engine"
	"github.com/vigil-ops/vigil/services/analysis/internal/playbook"
)

// playbooks is how much a record of repairs counts (see package playbook).
var playbooks = playbook.DefaultPolicy()

// repairConsumer learns from repair.succeeded and repair.failed: each
// outcome counts once (the inbox) for the action on the kind of incident
// the incident's analysis was about.
func (s *Service) repairConsumer() (*bus.Consumer, error) {
	r := bus.NewRouter[pgx.Tx]()
	bus.On(r, func(ctx context.Context, tx pgx.Tx, e *eventsv1.RepairSucceeded) error {
		return s.learn(ctx, tx, e.GetMeta(), e.GetRepairId(), e.GetIncidentId(), e.GetProposal(), true)
	})
	bus.On(r, func(ctx context.Context, tx pgx.Tx, e *eventsv1.RepairFailed) error {
		return s.learn(ctx, tx, e.GetMeta(), e.GetRepairId(), e.GetIncidentId(), e.GetProposal(), false)
	})
	return bus.NewConsumer(s.deps.JetStream, bus.ConsumerConfig{
		Name: "analysis", Subjects: r.Subjects(), BatchSize: 50,
		// Like a read model: outcomes of the last day are of incidents
		// whose analyses a service started now may still hold.
		StartWithin: 24 * time.Hour,
	}, outbox.NewHandler(s.deps.Pool, "analysis-repairs", r), s.log, s.deps.Metrics)
}

// learn counts one repair's outcome, in tx.
func (s *Service) learn(ctx context.Context, tx pgx.Tx, meta *eventsv1.EventMeta, repairID, incidentID string, p *typesv1.RepairProposal, succeeded bool) error {
	log := s.log.With("repair_id", repairID, "incident_id", incidentID)
	a := p.GetAction()
	if a == typesv1.RepairAction_REPAIR_ACTION_NONE || a == typesv1.RepairAction_REPAIR_ACTION_UNSPECIFIED {
		log.InfoContext(ctx, "repair outcome without an action: nothing to learn", "action", a.String())
		return nil
	}
	if err := uuid.Validate(incidentID); err != nil {
		return bus.Permanent(fmt.Errorf("repair %s: incident id %q: %w", repairID, incidentID, err))
	}
	at := s.now()
	if meta.GetOccurredAt() != nil {
		at = meta.GetOccurredAt().AsTime()
	}
	sig, found, err := s.store.AddOutcome(ctx, tx, incidentID, a, succeeded, at)
	if err != nil {
		return err
	}
	if !found {
		log.InfoContext(ctx, "repair outcome of an incident without a kept analysis: nothing to learn", "action", a.String())
		return nil
	}
	log.InfoContext(ctx, "repair outcome learned", "signature", sig, "action", a.String(), "succeeded", succeeded)
	return nil
}

// playbook moves res's confidence by the record of its action on the
// incident's kind, and says so in its reasoning. NONE, and a verdict that
// a person is needed, are not repairs: they are left alone.
func (s *Service) playbook(ctx context.Context, inc *typesv1.Incident, target *typesv1.ResourceRef, res engine.Result) (engine.Result, error) {
	a := res.Proposal.GetAction()
	if a == typesv1.RepairAction_REPAIR_ACTION_NONE || a == typesv1.RepairAction_REPAIR_ACTION_UNSPECIFIED || res.NeedsPerson {
		return res, nil
	}
	rec, err := s.store.Record(ctx, signature(inc, target), a)
	if err != nil {
		return res, err
	}
	if rec.Outcomes() == 0 {
		return res, nil
	}
	before := res.Confidence
	res.Confidence = playbooks.Adjust(before, rec)
	note := playbooks.Explain(rec, before, res.Confidence)
	if res.Reasoning != "" {
		note = res.Reasoning + "\n" + note
	}
	res.Reasoning = note
	return res, nil
}
