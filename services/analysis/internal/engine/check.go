package engine

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
)

// Limits bound what a proposal may ask for. The rules engine proposes
// within the same limits Check enforces.
type Limits struct {
	// MaxReplicas is the most replicas a scale may ask for.
	MaxReplicas int32
	// MaxScaleStep is how many replicas a scale up may add when that is
	// more than doubling (from 0 or 1 replica doubling alone is too
	// tight to be useful).
	MaxScaleStep int32
	// MemoryCeiling is the largest memory limit an increase may set, in
	// bytes. Past it, memory is a capacity decision a person makes.
	MemoryCeiling int64
	// UnsupportedCap caps the confidence of an answer the rules' evidence
	// does not support (the rules propose another action, or none).
	UnsupportedCap float64
	// MaxConfidence caps every answer: nothing gathered makes a repair
	// certain.
	MaxConfidence float64
}

// DefaultLimits are the limits without configuration: at most 20
// replicas, +3 or ×2 per scale, 8 GiB of memory (nodes of 16-32 GiB are
// common; a single container wanting more is a capacity decision),
// unsupported answers at 0.5.
func DefaultLimits() Limits {
	return Limits{
		MaxReplicas:    20,
		MaxScaleStep:   3,
		MemoryCeiling:  8 << 30,
		UnsupportedCap: 0.5,
		MaxConfidence:  0.95,
	}
}

// MaxScale is the most replicas a scale up from current may ask for.
func (l Limits) MaxScale(current int32) int32 {
	return min(max(2*current, current+l.MaxScaleStep), l.MaxReplicas)
}

// Supports says whether an action applies to a workload of the kind:
// rollback is a Deployment's (ReplicaSet revisions), scale needs a
// replica count, a Job is never repaired.
func Supports(a typesv1.RepairAction, kind string) bool {
	kinds := map[typesv1.RepairAction][]string{
		typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT:    {"Deployment", "StatefulSet", "DaemonSet"},
		typesv1.RepairAction_REPAIR_ACTION_DELETE_POD:            {"Deployment", "StatefulSet", "DaemonSet"},
		typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT:      {"Deployment", "StatefulSet"},
		typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT:   {"Deployment"},
		typesv1.RepairAction_REPAIR_ACTION_INCREASE_MEMORY_LIMIT: {"Deployment", "StatefulSet", "DaemonSet"},
	}
	if a == typesv1.RepairAction_REPAIR_ACTION_NONE {
		return true
	}
	return slices.ContainsFunc(kinds[a], func(k string) bool { return strings.EqualFold(k, kind) })
}

// Check is where nothing an engine says is trusted. It validates r
// against the bundle it was drawn from and against verdict, the rules
// engine's result for the same bundle, and returns r with what Check owns
// set:
//
//   - the target must be the incident's own workload (bundle.Target), or
//     for DELETE_POD one of its pods in the bundle;
//   - the action must be in the enum and apply to the workload's kind,
//     with parameters in bounds (Limits; a scale within the bounds of the
//     HorizontalPodAutoscaler that owns the count) and a rollback only to
//     the last good revision (pkg/workload; revision 0 is resolved to it);
//   - an action against a verdict that needs a person is refused;
//   - confidence is capped: at the verdict's own confidence when the
//     verdict proposes the same action, at Limits.UnsupportedCap when it
//     does not, at Limits.MaxConfidence always. Check never raises it, and
//     checking a checked result changes nothing;
//   - risk comes from the (action, target state) table and the blast
//     radius from the workload's state, whatever the engine said;
//   - evidence is limited to the bundle's items.
//
// An answer that fails returns an error wrapping ErrUnusable with the
// reason: the next engine runs.
func Check(b *evidence.Bundle, r Result, verdict Result, lim Limits) (Result, error) {
	p := r.Proposal
	if p == nil {
		return Result{}, unusable("no proposal")
	}
	a := p.GetAction()
	if _, known := typesv1.RepairAction_name[int32(a)]; !known || a == typesv1.RepairAction_REPAIR_ACTION_UNSPECIFIED {
		return Result{}, unusable("action %d is not a repair Vigil knows", int32(a))
	}
	if math.IsNaN(r.Confidence) || r.Confidence < 0 || r.Confidence > 1 {
		return Result{}, unusable("confidence %v is outside 0..1", r.Confidence)
	}
	p = proto.Clone(p).(*typesv1.RepairProposal)
	if a == typesv1.RepairAction_REPAIR_ACTION_NONE {
		if p.GetParams() != nil {
			return Result{}, unusable("NONE with parameters")
		}
		if t := p.GetTarget(); t != nil && proto.Size(t) > 0 && !ownWorkload(b, t) && !ownPod(b, t) {
			return Result{}, unusable("target %s is not the incident's resource", refString(t))
		}
	} else if err := checkAction(b, p, verdict, lim); err != nil {
		return Result{}, err
	}

	r.Proposal = p
	r.Evidence = known(b, r.Evidence)
	r.Risk = risk(b, p)
	r.BlastRadius = blastRadius(b, p)
	r.Confidence = min(r.Confidence, confidenceCap(p, verdict, lim))
	return r, nil
}

// checkAction checks an action's shape (target, kind, parameters) and
// then that the verdict does not need a person: nothing found wrong
// (no-finding) needs one too, so no engine acts on a healthy workload.
func checkAction(b *evidence.Bundle, p *typesv1.RepairProposal, verdict Result, lim Limits) error {
	if err := checkShape(b, p, verdict, lim); err != nil {
		return err
	}
	if verdict.NeedsPerson {
		return unusable("the evidence shows what a person must fix (%s): %s is refused", verdict.Summary, p.GetAction())
	}
	return nil
}

func checkShape(b *evidence.Bundle, p *typesv1.RepairProposal, verdict Result, lim Limits) error {
	a := p.GetAction()
	if b.Target == nil {
		return unusable("the incident is not tied to a workload: only NONE can be proposed")
	}
	w := b.Workload
	if w == nil {
		return unusable("the state of %s is unknown: only NONE can be proposed", refString(b.Target))
	}
	if !Supports(a, b.Target.GetKind()) {
		return unusable("%s does not apply to a %s", a, b.Target.GetKind())
	}
	t := p.GetTarget()
	if t == nil {
		return unusable("%s without a target", a)
	}
	if a == typesv1.RepairAction_REPAIR_ACTION_DELETE_POD {
		if !ownPod(b, t) {
			return unusable("target %s is not a pod of %s", refString(t), refString(b.Target))
		}
	} else {
		if !ownWorkload(b, t) {
			return unusable("target %s is not the incident's resource %s", refString(t), refString(b.Target))
		}
		p.Target = proto.Clone(b.Target).(*typesv1.ResourceRef)
	}

	switch a {
	case typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, typesv1.RepairAction_REPAIR_ACTION_DELETE_POD:
		if p.GetParams() != nil {
			return unusable("%s takes no parameters", a)
		}
	case typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT:
		return checkScale(w, p, verdict, lim)
	case typesv1.RepairAction_REPAIR_ACTION_INCREASE_MEMORY_LIMIT:
		return checkMemory(w, p, lim)
	case typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT:
		return checkRollback(w, p)
	}
	return nil
}

func checkScale(w *evidence.Workload, p *typesv1.RepairProposal, verdict Result, lim Limits) error {
	sp := p.GetScale()
	if sp == nil {
		return unusable("scale without replicas")
	}
	to, from := sp.GetReplicas(), w.Replicas
	// The one exception to the step is the rules' own restore of a
	// known previous count (a workload scaled to zero by mistake).
	restore := sameAction(p, verdict) && verdict.Proposal.GetScale().GetReplicas() == to
	switch {
	case to < 1 || to > lim.MaxReplicas:
		return unusable("scale to %d replicas: outside 1..%d", to, lim.MaxReplicas)
	case to == from:
		return unusable("scale to %d replicas: it already has %d", to, from)
	case to < from && 2*to < from:
		return unusable("scale from %d down to %d replicas: more than halves it", from, to)
	case to > lim.MaxScale(from) && !restore:
		return unusable("scale from %d up to %d replicas: more than %d", from, to, lim.MaxScale(from))
	case w.Autoscaler != nil && (to < w.Autoscaler.Min || to > w.Autoscaler.Max):
		return unusable("scale to %d replicas: HorizontalPodAutoscaler %s owns the count, between %d and %d", to, w.Autoscaler.Name, w.Autoscaler.Min, w.Autoscaler.Max)
	}
	return nil
}

func checkMemory(w *evidence.Workload, p *typesv1.RepairProposal, lim Limits) error {
	mp := p.GetMemoryLimit()
	if mp == nil {
		return unusable("memory limit increase without a limit")
	}
	i := slices.IndexFunc(w.Containers, func(c evidence.ContainerSpec) bool { return c.Name == mp.GetContainer() })
	if i < 0 {
		return unusable("no container %q in the pod template", mp.GetContainer())
	}
	cur, to := w.Containers[i].MemoryLimit, mp.GetLimitBytes()
	switch {
	case cur <= 0:
		return unusable("container %q has no memory limit to raise", mp.GetContainer())
	case to <= cur:
		return unusable("memory limit %d is not above the current %d", to, cur)
	case to > 2*cur:
		return unusable("memory limit %d more than doubles the current %d", to, cur)
	case to > lim.MemoryCeiling:
		return unusable("memory limit %d is above the ceiling %d", to, lim.MemoryCeiling)
	}
	return nil
}

func checkRollback(w *evidence.Workload, p *typesv1.RepairProposal) error {
	rev := p.GetRollback().GetRevision()
	switch {
	case w.LastGood == 0:
		return unusable("rollback: no kept revision is known good")
	case rev == 0:
		rev = w.LastGood
	case rev == w.Revision:
		return unusable("rollback to revision %d: it is the current one", rev)
	case rev != w.LastGood:
		return unusable("rollback to revision %d: the last good revision is %d", rev, w.LastGood)
	}
	// What repair executes is what was checked, not "the previous one"
	// at the time it runs; repair refuses it if the last good revision
	// is another by then.
	p.Params = &typesv1.RepairProposal_Rollback{Rollback: &typesv1.RollbackParams{Revision: rev}}
	return nil
}

// confidenceCap is how sure an answer may be, given the rules' verdict.
func confidenceCap(p *typesv1.RepairProposal, verdict Result, lim Limits) float64 {
	c := lim.UnsupportedCap
	if sameAction(p, verdict) {
		c = verdict.Confidence
	}
	return min(c, lim.MaxConfidence)
}

// sameAction: the verdict proposes the same action (and the same pod).
func sameAction(p *typesv1.RepairProposal, verdict Result) bool {
	v := verdict.Proposal
	if v == nil || v.GetAction() != p.GetAction() {
		return false
	}
	if p.GetAction() == typesv1.RepairAction_REPAIR_ACTION_DELETE_POD {
		return v.GetTarget().GetName() == p.GetTarget().GetName()
	}
	return true
}

func ownWorkload(b *evidence.Bundle, t *typesv1.ResourceRef) bool {
	o := b.Target
	return o != nil && t.GetCluster() == o.GetCluster() && t.GetNamespace() == o.GetNamespace() &&
		strings.EqualFold(t.GetKind(), o.GetKind()) && t.GetName() == o.GetName()
}

func ownPod(b *evidence.Bundle, t *typesv1.ResourceRef) bool {
	o := b.Target
	if o == nil || t.GetCluster() != o.GetCluster() || t.GetNamespace() != o.GetNamespace() || !strings.EqualFold(t.GetKind(), "Pod") {
		return false
	}
	return slices.ContainsFunc(b.Pods, func(p evidence.Pod) bool { return p.Name == t.GetName() })
}

// known keeps the evidence IDs that are items of the bundle.
func known(b *evidence.Bundle, ids []string) []string {
	var out []string
	for _, id := range ids {
		if slices.ContainsFunc(b.Items, func(it evidence.Item) bool { return it.ID == id }) && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func refString(r *typesv1.ResourceRef) string {
	return fmt.Sprintf("%s/%s/%s/%s", r.GetCluster(), r.GetNamespace(), r.GetKind(), r.GetName())
}

func unusable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnusable, fmt.Sprintf(format, args...))
}
