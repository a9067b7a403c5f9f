// Package engine is what decides: an Engine reads an evidence bundle and
// proposes what is wrong and what would fix it. Engines run in a
// configured order (LLM providers, then rules, which always answers), and
// every result is checked (Check) before it is trusted.
package engine

import (
	"context"
	"errors"
	"time"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
)

// Engine analyses an incident.
type Engine interface {
	// Name is "rules", or "<provider>" of an LLM ("ollama", "openai",
	// "anthropic", "gemini").
	Name() string
	Analyze(ctx context.Context, b *evidence.Bundle) (Result, error)
}

// Result is an engine's conclusion.
type Result struct {
	Summary   string
	RootCause string
	// Evidence are the bundle items (by Item.ID) the conclusion rests on.
	Evidence []string
	// RuledOut are hypotheses considered and rejected, with why.
	RuledOut []string
	// Proposal: Action NONE (with Target possibly empty) when nothing
	// should be repaired, or a person must decide.
	Proposal *typesv1.RepairProposal
	// Confidence 0..1, as the engine claims it (Check caps it).
	Confidence float64
	// NeedsPerson is a finding no automatic repair can fix (unschedulable,
	// missing Secret, unbound PVC, a bad image with nothing to return
	// to...): set by rules only; Check refuses a model's action against it.
	NeedsPerson bool
	// Risk is set by Check from the (action, target state) table, never by
	// a model.
	Risk        typesv1.Risk
	BlastRadius BlastRadius
	Reasoning   string
	// Engine and Model that answered; Usage what it cost.
	Engine string
	Model  string
	Usage  Usage
	// Rule is the rule that matched (rules engine), for the record.
	Rule string
}

// BlastRadius is what a repair could touch.
type BlastRadius struct {
	Pods             int
	ExpectedDowntime time.Duration
	Note             string
}

// Usage is what an LLM call cost.
type Usage struct {
	InputTokens, OutputTokens int
	// Cost in US dollars, from the configured prices.
	Cost     float64
	Duration time.Duration
	// Sent is what left the house for this call (after redaction), kept
	// with the analysis and shown to admins.
	Sent string
}

// ErrUnusable is an answer that failed validation: the next engine runs.
var ErrUnusable = errors.New("unusable answer")
