// Package rules is the default analysis engine: deterministic, no network,
// a table of rules over the evidence bundle, each an evidence predicate,
// the action it proposes with its parameters, a base confidence and the
// reason. The first rule that matches answers. The rules that find what a
// repair cannot fix (unschedulable, a missing Secret, an unbound claim, a
// bad image with nothing to return to...) come before the ones that act,
// so Vigil never restarts what a restart cannot fix; the last rule always
// matches, so the engine always answers.
//
// A result points at the bundle's items by ID. The IDs it cites are the
// ones gatherers give (see ids.go); an ID not in the bundle is not cited.
package rules

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/analysis/internal/engine"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
)

// Name is the engine's name in results and records.
const Name = "rules"

// Options configure the engine.
type Options struct {
	// Limits bound the engine's proposals, as Check bounds everyone's.
	Limits engine.Limits
	// Now is the clock a pod's time terminating or unready is measured
	// against; nil is time.Now.
	Now func() time.Time
	// Language of the findings people read (summary, root cause, what
	// was ruled out): a BCP 47 tag, "en" or "zh-TW" ("": English).
	Language string
}

// Engine is the rules engine.
type Engine struct {
	lim  engine.Limits
	now  func() time.Time
	lang string
}

// New returns the engine; zero Limits are engine.DefaultLimits.
func New(o Options) *Engine {
	if o.Limits == (engine.Limits{}) {
		o.Limits = engine.DefaultLimits()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Engine{lim: o.Limits, now: o.Now, lang: language(o.Language)}
}

// Name is "rules".
func (*Engine) Name() string { return Name }

// Analyze answers from the first rule of the table that matches b. It
// fails only when ctx is done.
func (e *Engine) Analyze(ctx context.Context, b *evidence.Bundle) (engine.Result, error) {
	if err := ctx.Err(); err != nil {
		return engine.Result{}, fmt.Errorf("rules: %w", err)
	}
	f := newFacts(b, e.now(), e.lim, e.lang)
	for _, r := range table {
		if d, ok := r.match(f); ok {
			return f.result(r, d), nil
		}
	}
	panic("rules: the table's last rule always matches")
}

// result turns a rule's finding into the engine's answer.
func (f *facts) result(r rule, d finding) engine.Result {
	b := f.b
	action, needsPerson := r.action, r.needsPerson
	summary, conf := d.summary, r.confidence+d.adjust
	reasoning := []string{fmt.Sprintf("rule %s: %s", r.name, r.when)}
	if d.adjustWhy != "" {
		reasoning = append(reasoning, d.adjustWhy)
	}
	if action != typesv1.RepairAction_REPAIR_ACTION_NONE && !engine.Supports(action, b.Target.GetKind()) {
		summary = f.tr("%s; %s does not apply to a %s: needs a person", summary, action, b.Target.GetKind())
		action, needsPerson = typesv1.RepairAction_REPAIR_ACTION_NONE, true
		d.pod, d.params = "", nil
	}
	if action != typesv1.RepairAction_REPAIR_ACTION_NONE && b.Reserved != "" {
		// Said here, not refused later by the guardrails: the cause
		// stands, the repair is a person's.
		summary = f.tr("%s; namespace %s is %s, where Vigil never repairs: needs a person", summary, b.Target.GetNamespace(), b.Reserved)
		action, needsPerson = typesv1.RepairAction_REPAIR_ACTION_NONE, true
		d.pod, d.params = "", nil
	}
	if action != typesv1.RepairAction_REPAIR_ACTION_NONE && len(b.Gaps) > 0 {
		conf -= 0.1
		reasoning = append(reasoning, "confidence lowered: part of the evidence is missing")
	}
	if len(b.Gaps) > 0 {
		reasoning = append(reasoning, "missing evidence: "+strings.Join(b.Gaps, "; "))
	}
	p := &typesv1.RepairProposal{Action: action, Target: b.Target}
	if d.pod != "" {
		p.Target = &typesv1.ResourceRef{Cluster: b.Target.GetCluster(), Namespace: b.Target.GetNamespace(), Kind: "Pod", Name: d.pod}
	}
	switch params := d.params.(type) {
	case *typesv1.ScaleParams:
		p.Params = &typesv1.RepairProposal_Scale{Scale: params}
	case *typesv1.MemoryLimitParams:
		p.Params = &typesv1.RepairProposal_MemoryLimit{MemoryLimit: params}
	case *typesv1.RollbackParams:
		p.Params = &typesv1.RepairProposal_Rollback{Rollback: params}
	}
	return engine.Result{
		Summary:     summary,
		RootCause:   d.rootCause,
		Evidence:    f.cite(d.evidence...),
		RuledOut:    f.ruledOut(),
		Proposal:    p,
		Confidence:  math.Round(max(0, min(1, conf))*100) / 100,
		NeedsPerson: needsPerson,
		Reasoning:   strings.Join(reasoning, "\n"),
		Engine:      Name,
		Rule:        r.name,
	}
}

// ruledOut are the hypotheses the evidence rejects, each with why.
func (f *facts) ruledOut() []string {
	var out []string
	for _, h := range hypotheses {
		if why, rejected := h(f); rejected {
			out = append(out, why)
		}
	}
	return out
}
