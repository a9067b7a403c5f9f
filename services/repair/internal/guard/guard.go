// Package guard holds the repair service's guardrails: the settings that say
// whether a proposed repair runs on its own, waits for a person, or never
// runs, and the rules that apply them.
//
// It is pure on purpose: no database, bus or cluster. The service brings
// the facts (counts of recent repairs, cooldowns, healthy replicas) and
// stores the guardrails of each scope; this package merges the scopes
// (Effective), checks what people set (Validate, Apply, LoadFile) and
// decides (Decide, Approvable). Everything here can be tested with tables,
// and the same rules answer in the API, at decision, at approval and just
// before execution.
//
// Choices beyond the API's comments, each explained where it is made:
//   - what a person cannot override (Approvable) is a deny-listed,
//     missing or unsupported action, a namespace not allowed or reserved
//     (kube-*, vigil-system, Vigil's own, ingress and monitoring, the
//     operator's list: pkg/reserved), a parameter
//     beyond max_replicas or max_memory_bytes, and too few healthy
//     replicas left; the cooldown, like the hourly limits, only holds
//     Vigil back (Decide blocks during it, a person may still approve);
//   - unknown healthy replicas and unknown risk ask a person; RISK_CRITICAL
//     is never automatic, whatever max_auto_risk says;
//   - the configuration file may hold scopes too (File.Scopes), layered
//     under the ones set through the API.
package guard

import (
	"slices"
	"time"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/reserved"
)

// Settings are guardrails as they apply: every field has a value. They are
// made by Defaults, overlaid with the configuration file and the scopes of a
// repair's target by Effective; the zero Settings deny nothing automatic but
// also allow nothing automatic (Auto is false).
type Settings struct {
	// MaxAutoPerHour bounds the automatic repairs executed in any hour,
	// over every resource; 0 leaves every repair to people.
	MaxAutoPerHour int
	// MaxAutoPerResource bounds the automatic repairs of one resource in
	// any hour.
	MaxAutoPerResource int
	// Cooldown is how long a resource rests after a failed repair: no
	// repair of it is decided meanwhile.
	Cooldown time.Duration
	// MinConfidence is the lowest confidence (0..1) of an analysis whose
	// repair runs without a person.
	MinConfidence float64
	// MaxAutoRisk is the highest risk repaired without a person;
	// RISK_CRITICAL is never automatic whatever it says.
	MaxAutoRisk typesv1.Risk
	// MaxPodsAffected is how many pods an automatic repair may touch.
	MaxPodsAffected int
	// MinHealthyReplicas is how many healthy replicas a repair must leave,
	// approved or not; 0 turns the check off.
	MinHealthyReplicas int
	// Deny lists the actions never executed, even when approved: the
	// built-in ones and those of every scope, sorted, each once.
	Deny []typesv1.RepairAction
	// AllowedNamespaces are the namespaces repairs may touch; empty means
	// every namespace but the reserved ones.
	AllowedNamespaces []string
	// Reserved are the namespaces no repair touches, even when
	// AllowedNamespaces lists them; nil means reserved.Default(). The
	// deploy service never grants them to the repair identity either.
	Reserved *reserved.Namespaces
	// DryRun executes repairs as Kubernetes server-side dry runs only.
	DryRun bool
	// Paused is the kill switch: nothing automatic runs, people are asked.
	Paused bool
	// ApprovalTTL is how long a person has to answer.
	ApprovalTTL time.Duration
	// UndoOnFailure undoes a repair whose verification failed.
	UndoOnFailure bool
	// VerifyWindow is how long verification waits for the workload to be
	// healthy.
	VerifyWindow time.Duration
	// MaxReplicas bounds SCALE_DEPLOYMENT, approved or not.
	MaxReplicas int
	// MaxMemoryBytes bounds INCREASE_MEMORY_LIMIT, approved or not.
	MaxMemoryBytes int64
	// Auto allows automatic repairs at all. Off by default: an app opts in
	// with --auto-repair, or a scope sets it.
	Auto bool
}

// builtinDeny are the actions no setting can allow: they destroy data or
// whole environments, and no analysis proposes them.
var builtinDeny = []typesv1.RepairAction{
	typesv1.RepairAction_REPAIR_ACTION_DELETE_NAMESPACE,
	typesv1.RepairAction_REPAIR_ACTION_DELETE_PVC,
	typesv1.RepairAction_REPAIR_ACTION_DELETE_SECRET,
	typesv1.RepairAction_REPAIR_ACTION_DROP_DATABASE,
}

// Defaults returns the guardrails that apply when nothing is configured:
// the ones documented on the Guardrails message of the repair API.
func Defaults() Settings {
	return Settings{
		MaxAutoPerHour:     5,
		MaxAutoPerResource: 3,
		Cooldown:           10 * time.Minute,
		MinConfidence:      0.85,
		MaxAutoRisk:        typesv1.Risk_RISK_LOW,
		MaxPodsAffected:    3,
		MinHealthyReplicas: 1,
		Deny:               slices.Clone(builtinDeny),
		ApprovalTTL:        30 * time.Minute,
		UndoOnFailure:      true,
		VerifyWindow:       5 * time.Minute,
		MaxReplicas:        10,
		MaxMemoryBytes:     4 << 30,
	}
}

// reservedOf returns why namespace is reserved under s, "" if it is not.
func (s Settings) reservedOf(namespace string) string {
	if s.Reserved == nil {
		return reserved.Default().Check(namespace)
	}
	return s.Reserved.Check(namespace)
}

// denyList returns the union of the built-in deny list and lists, sorted,
// each action once, without the values that are not actions.
func denyList(lists ...[]typesv1.RepairAction) []typesv1.RepairAction {
	out := slices.Clone(builtinDeny)
	for _, l := range lists {
		for _, a := range l {
			if deniable(a) {
				out = append(out, a)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// deniable reports whether a is an action a deny list may name.
func deniable(a typesv1.RepairAction) bool {
	return a != typesv1.RepairAction_REPAIR_ACTION_UNSPECIFIED &&
		a != typesv1.RepairAction_REPAIR_ACTION_NONE && definedAction(a)
}

func definedAction(a typesv1.RepairAction) bool {
	return a.Descriptor().Values().ByNumber(a.Number()) != nil
}

func definedRisk(r typesv1.Risk) bool {
	return r.Descriptor().Values().ByNumber(r.Number()) != nil
}
