// Package playbook is what analysis learns from repairs: the record of
// one action on one kind of incident (its signature), and how that record
// moves the confidence of the next proposal of the same action for the
// same kind of incident.
//
// The confidence an engine gives (after engine.Check) is taken as a prior
// worth PriorWeight outcomes, and the record updates it like a Beta
// posterior mean:
//
//	confidence = (PriorWeight·prior + successes) / (PriorWeight + successes + failures)
//
// so a few outcomes move it a little and many move it to the observed
// success rate. The floor of evidence is MinOutcomes: a record of fewer
// outcomes does not count at all, either way, because two lucky or
// unlucky repairs say more about those two incidents than about the
// action. Once it counts, the record may lower the confidence (failures)
// or raise it (successes) -- it is evidence of its own, gathered from
// repairs that ran and were verified -- but never above MaxConfidence,
// the cap every answer has (nothing gathered makes a repair certain).
// Action NONE, and a verdict that a person is needed, are not repairs and
// have no record: the caller leaves them alone.
package playbook

import (
	"fmt"
	"math"

	"github.com/vigil-ops/vigil/services/analysis/internal/engine"
)

// Record is how often an action, proposed for a kind of incident, was
// verified to work or not.
type Record struct {
	Successes, Failures int
}

// Outcomes is how many repairs the record holds.
func (r Record) Outcomes() int { return r.Successes + r.Failures }

func (r Record) String() string {
	return fmt.Sprintf("%d/%d succeeded", r.Successes, r.Outcomes())
}

// Policy is how much a record counts.
type Policy struct {
	// MinOutcomes is the floor of evidence: a record of fewer outcomes
	// leaves the confidence as the engine gave it.
	MinOutcomes int
	// PriorWeight is how many outcomes the engine's confidence is worth.
	PriorWeight float64
	// MaxConfidence caps what a record can raise a confidence to.
	MaxConfidence float64
}

// DefaultPolicy is the policy without configuration: a record counts from
// 3 outcomes; the engine's confidence weighs as much as 4 of them, so 3
// successes raise 0.80 to 0.89 and 3 failures lower it to 0.46, while 20
// of 20 reach the 0.95 cap and 2 of 10 bring it to 0.37; the cap is
// engine.DefaultLimits' (0.95).
func DefaultPolicy() Policy {
	return Policy{MinOutcomes: 3, PriorWeight: 4, MaxConfidence: engine.DefaultLimits().MaxConfidence}
}

// Counts says whether r is enough evidence to move a confidence.
func (p Policy) Counts(r Record) bool {
	return r.Outcomes() >= max(p.MinOutcomes, 1)
}

// Adjust is the confidence of a proposal whose engine said prior, given
// the record of the same action on the same kind of incident.
func (p Policy) Adjust(prior float64, r Record) float64 {
	if !p.Counts(r) || math.IsNaN(prior) {
		return prior
	}
	prior = min(max(prior, 0), 1)
	post := (p.PriorWeight*prior + float64(r.Successes)) / (p.PriorWeight + float64(r.Outcomes()))
	return min(post, p.MaxConfidence)
}

// Confidence is what the record alone supports: Adjust from an
// undecided prior of 0.5, and 0 below the floor of evidence (the record
// supports nothing yet).
func (p Policy) Confidence(r Record) float64 {
	if !p.Counts(r) {
		return 0
	}
	return p.Adjust(0.5, r)
}

// Explain is the line an analysis' reasoning gets about the record.
func (p Policy) Explain(r Record, before, after float64) string {
	if !p.Counts(r) {
		return fmt.Sprintf("playbook: %s, fewer than %d outcomes: confidence %.2f unchanged", r, p.MinOutcomes, before)
	}
	return fmt.Sprintf("playbook: %s: confidence %.2f -> %.2f", r, before, after)
}
