package guard

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/human"
)

// ErrBlocked is what every *BlockedError is: a repair the guardrails never
// let run, whoever approves it. The gRPC port answers FailedPrecondition.
var ErrBlocked = errors.New("blocked by the guardrails")

// BlockedError says why a repair may not run even with a person's
// approval.
type BlockedError struct {
	// Reasons, one sentence per guardrail, as Decide words them.
	Reasons []string
}

func (e *BlockedError) Error() string {
	return "blocked by the guardrails: " + strings.Join(e.Reasons, "; ")
}

// Unwrap makes errors.Is(err, ErrBlocked) hold.
func (e *BlockedError) Unwrap() error { return ErrBlocked }

// Facts are what the service knows about one proposal when it decides. The
// zero Facts decide nothing automatic: unsupported, no namespace, and 0
// healthy replicas left.
type Facts struct {
	// Proposal is the typed repair: action, target, parameters.
	Proposal *typesv1.RepairProposal
	// Confidence of the analysis, 0..1.
	Confidence float64
	// Risk of the action on this target.
	Risk typesv1.Risk
	// Supported: an executor exists for the action on the target's kind.
	Supported bool
	// AutoLastHour counts the automatic repairs executed in the last hour,
	// over every resource.
	AutoLastHour int
	// AutoOnResourceLastHour counts those of the proposal's target.
	AutoOnResourceLastHour int
	// CooldownUntil is when the target's rest after a failed repair ends;
	// zero for none.
	CooldownUntil time.Time
	// Now is the time of the decision.
	Now time.Time
	// PodsAffected counts the pods the repair touches.
	PodsAffected int
	// HealthyAfter counts the healthy replicas the repair would leave; -1
	// when unknown.
	HealthyAfter int
}

// Decide applies the guardrails s to a proposal and returns the decision
// with every reason that applies, each a sentence with its numbers:
//
//   - DECISION_BLOCKED, never executed even if a person approves, when the
//     proposal has no action (NONE, UNSPECIFIED), its action is denied or
//     has no executor for the target, the target's namespace is not
//     allowed, a parameter is beyond its bound (max_replicas,
//     max_memory_bytes), the repair would leave fewer healthy replicas than
//     min_healthy_replicas, or the target is cooling down after a failed
//     repair. The reasons that would otherwise ask a person follow.
//   - DECISION_NEEDS_APPROVAL when automatic repairs are off (auto) or
//     paused (the kill switch), the risk is unknown, CRITICAL or above
//     max_auto_risk, the confidence is below min_confidence, an hourly
//     limit is reached (overall or on the target), more pods are touched
//     than max_pods_affected, or the healthy replicas left are unknown.
//   - DECISION_AUTO otherwise, with one reason that gives the numbers that
//     let it through, for the record.
//
// Call it again just before executing an automatic repair: counts and
// cooldowns change while a repair waits for a worker.
func Decide(s Settings, f Facts) (repairv1.Decision, []string) {
	blocked := hard(s, f, true)
	asked := soft(s, f)
	switch {
	case len(blocked) > 0:
		return repairv1.Decision_DECISION_BLOCKED, append(blocked, asked...)
	case len(asked) > 0:
		return repairv1.Decision_DECISION_NEEDS_APPROVAL, asked
	}
	return repairv1.Decision_DECISION_AUTO, []string{fmt.Sprintf(
		"within the guardrails: confidence %s (at least %s), risk %s (at most %s), "+
			"%d of %d automatic repairs in the last hour, %d of %d on %s, %s affected (at most %d)",
		num(f.Confidence), num(s.MinConfidence), riskName(f.Risk), riskName(s.MaxAutoRisk),
		f.AutoLastHour, s.MaxAutoPerHour, f.AutoOnResourceLastHour, s.MaxAutoPerResource,
		resourceName(f.Proposal.GetTarget()), plural(f.PodsAffected, "pod"), s.MaxPodsAffected)}
}

// Approvable re-checks, when a person approves and again just before an
// approved repair is executed, the guardrails nobody can override: a
// missing, denied or unsupported action, a namespace not allowed, a
// parameter beyond its bound, too few healthy replicas left. It returns a
// *BlockedError with every reason, or nil.
//
// The cooldown is not among them: it stops Vigil from retrying on its own
// after a failure, and Decide blocks new proposals meanwhile, but a person
// who approves a repair already waiting for an answer has seen the failure
// and takes the call. Neither are the kill switch, the hourly limits, risk
// and confidence: they decide what runs without a person.
func Approvable(s Settings, f Facts) error {
	if reasons := hard(s, f, false); len(reasons) > 0 {
		return &BlockedError{Reasons: reasons}
	}
	return nil
}

// hard returns the reasons a repair may not run at all; the cooldown only
// when cooldown is true.
func hard(s Settings, f Facts, cooldown bool) []string {
	var r []string
	p := f.Proposal
	action := p.GetAction()
	target := p.GetTarget()
	switch action {
	case typesv1.RepairAction_REPAIR_ACTION_UNSPECIFIED:
		r = append(r, "the proposal names no action")
	case typesv1.RepairAction_REPAIR_ACTION_NONE:
		r = append(r, "the analysis proposes no repair (NONE)")
	default:
		switch {
		case !definedAction(action):
			r = append(r, fmt.Sprintf("unknown action %d", action))
		case slices.Contains(builtinDeny, action):
			r = append(r, actionName(action)+" is on the built-in deny list")
		case slices.Contains(s.Deny, action):
			r = append(r, actionName(action)+" is on the deny list")
		}
		if !f.Supported {
			r = append(r, actionName(action)+" is not supported on this target")
		}
	}

	ns := target.GetNamespace()
	switch {
	case target == nil:
		r = append(r, "the proposal names no target")
	case ns == "":
		r = append(r, "the target "+resourceName(target)+" names no namespace")
	case s.reservedOf(ns) != "":
		// Whatever allowed_namespaces says: the repair identity is never
		// granted there either (pkg/reserved).
		r = append(r, fmt.Sprintf("namespace %s is %s: reserved, Vigil never repairs there", ns, s.reservedOf(ns)))
	case len(s.AllowedNamespaces) > 0 && !slices.Contains(s.AllowedNamespaces, ns):
		r = append(r, fmt.Sprintf("namespace %s is not among the allowed namespaces (%s)", ns, listed(s.AllowedNamespaces)))
	}

	healthyChecked := false
	switch action {
	case typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT:
		switch n := int(p.GetScale().GetReplicas()); {
		case n < 0:
			r = append(r, fmt.Sprintf("scaling to %d replicas: a count cannot be negative", n))
			healthyChecked = true
		case n > s.MaxReplicas:
			r = append(r, fmt.Sprintf("scaling to %d replicas is above the limit of %d", n, s.MaxReplicas))
		case n < s.MinHealthyReplicas:
			r = append(r, fmt.Sprintf("scaling to %s would leave fewer than the %s required", plural(n, "replica"), plural(s.MinHealthyReplicas, "healthy replica")))
			healthyChecked = true
		}
	case typesv1.RepairAction_REPAIR_ACTION_INCREASE_MEMORY_LIMIT:
		switch b := p.GetMemoryLimit().GetLimitBytes(); {
		case b <= 0:
			r = append(r, fmt.Sprintf("memory limit %d is not a positive number of bytes", b))
		case b > s.MaxMemoryBytes:
			r = append(r, fmt.Sprintf("memory limit %s is above the limit of %s", quantity(b), quantity(s.MaxMemoryBytes)))
		}
	}
	if !healthyChecked && f.HealthyAfter >= 0 && f.HealthyAfter < s.MinHealthyReplicas {
		r = append(r, fmt.Sprintf("would leave %s (at least %d required)", plural(f.HealthyAfter, "healthy replica"), s.MinHealthyReplicas))
	}

	if cooldown && f.CooldownUntil.After(f.Now) {
		left := f.CooldownUntil.Sub(f.Now).Round(time.Second)
		r = append(r, fmt.Sprintf("%s is cooling down after a failed repair (%s left)", resourceName(target), human.Duration(max(left, time.Second))))
	}
	return r
}

// soft returns the reasons a repair needs a person.
func soft(s Settings, f Facts) []string {
	var r []string
	if !s.Auto {
		r = append(r, "automatic repairs are off here (auto-repair not enabled)")
	}
	if s.Paused {
		r = append(r, "kill switch on: automatic repairs paused")
	}
	switch risk := f.Risk; {
	case risk == typesv1.Risk_RISK_UNSPECIFIED:
		r = append(r, "risk unknown")
	case !definedRisk(risk):
		r = append(r, fmt.Sprintf("unknown risk %d", risk))
	case risk == typesv1.Risk_RISK_CRITICAL:
		r = append(r, "risk CRITICAL is never automatic")
	case risk > s.MaxAutoRisk:
		r = append(r, fmt.Sprintf("risk %s is above %s", riskName(risk), riskName(s.MaxAutoRisk)))
	}
	// Written so that NaN, in either, asks a person.
	if !(f.Confidence >= s.MinConfidence) {
		r = append(r, fmt.Sprintf("confidence %s is below %s", num(f.Confidence), num(s.MinConfidence)))
	}
	if f.AutoLastHour >= s.MaxAutoPerHour {
		r = append(r, fmt.Sprintf("%s in the last hour (limit %d)", plural(f.AutoLastHour, "automatic repair"), s.MaxAutoPerHour))
	}
	if f.AutoOnResourceLastHour >= s.MaxAutoPerResource {
		r = append(r, fmt.Sprintf("%s of %s in the last hour (limit %d)",
			plural(f.AutoOnResourceLastHour, "automatic repair"), resourceName(f.Proposal.GetTarget()), s.MaxAutoPerResource))
	}
	if f.PodsAffected > s.MaxPodsAffected {
		r = append(r, fmt.Sprintf("%s affected (limit %d)", plural(f.PodsAffected, "pod"), s.MaxPodsAffected))
	}
	scaling := f.Proposal.GetAction() == typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT
	if f.HealthyAfter < 0 && s.MinHealthyReplicas > 0 && !scaling {
		r = append(r, fmt.Sprintf("healthy replicas left unknown (at least %d required)", s.MinHealthyReplicas))
	}
	return r
}

// resourceName names a target as people read it: "Deployment/shop/api".
func resourceName(t *typesv1.ResourceRef) string {
	if t == nil {
		return "the target"
	}
	kind := t.GetKind()
	if kind == "" {
		kind = "object"
	}
	if t.GetNamespace() == "" {
		return kind + "/" + t.GetName()
	}
	return kind + "/" + t.GetNamespace() + "/" + t.GetName()
}

// num writes x with as many digits as it needs: 0.85, 0.849, 1.
func num(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// plural writes "1 pod", "3 pods".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// quantity writes bytes as Kubernetes does: 4Gi, 512Mi.
func quantity(b int64) string { return resource.NewQuantity(b, resource.BinarySI).String() }

// listed writes a list of names, shortened after a few.
func listed(names []string) string {
	const shown = 5
	if len(names) <= shown {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:shown], ", ") + fmt.Sprintf(" and %d more", len(names)-shown)
}
