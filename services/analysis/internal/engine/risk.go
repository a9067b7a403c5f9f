package engine

import (
	"slices"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
)

// targetState is what the risk of an action depends on, read from the
// bundle (never from an engine's answer).
type targetState struct {
	// system: kube-system, kube-public or kube-node-lease, the cluster's
	// own machinery.
	system   bool
	stateful bool
	replicas int32 // desired
	ready    int32
	// othersReady are the ready pods other than the one a DELETE_POD
	// names.
	othersReady int
	scaleTo     int32
}

// riskTable: the first row whose action (UNSPECIFIED: any) and state
// match gives the risk. Rows are ordered most specific first.
var riskTable = []struct {
	action typesv1.RepairAction
	state  string
	when   func(s targetState) bool
	risk   typesv1.Risk
}{
	{typesv1.RepairAction_REPAIR_ACTION_NONE, "nothing is changed", always, typesv1.Risk_RISK_LOW},
	{typesv1.RepairAction_REPAIR_ACTION_UNSPECIFIED, "a system namespace", func(s targetState) bool { return s.system }, typesv1.Risk_RISK_CRITICAL},

	{typesv1.RepairAction_REPAIR_ACTION_DELETE_POD, "a StatefulSet's pod: identity and volumes move", func(s targetState) bool { return s.stateful }, typesv1.Risk_RISK_HIGH},
	{typesv1.RepairAction_REPAIR_ACTION_DELETE_POD, "other ready pods keep serving", func(s targetState) bool { return s.othersReady > 0 }, typesv1.Risk_RISK_LOW},
	{typesv1.RepairAction_REPAIR_ACTION_DELETE_POD, "no other ready pod", always, typesv1.Risk_RISK_MEDIUM},

	{typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT, "scale down", func(s targetState) bool { return s.scaleTo < s.replicas }, typesv1.Risk_RISK_HIGH},
	{typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT, "scale up from zero: traffic returns at once", func(s targetState) bool { return s.replicas == 0 }, typesv1.Risk_RISK_MEDIUM},
	{typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT, "scale up", always, typesv1.Risk_RISK_LOW},

	{typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, "any: returns code and config to an older revision", always, typesv1.Risk_RISK_MEDIUM},

	{typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, "a single replica", func(s targetState) bool { return s.replicas <= 1 }, typesv1.Risk_RISK_HIGH},
	{typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, "two or more ready replicas: a rolling restart keeps serving", func(s targetState) bool { return s.ready >= 2 }, typesv1.Risk_RISK_LOW},
	{typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, "several replicas, fewer than two ready", always, typesv1.Risk_RISK_MEDIUM},

	{typesv1.RepairAction_REPAIR_ACTION_INCREASE_MEMORY_LIMIT, "a single replica", func(s targetState) bool { return s.replicas <= 1 }, typesv1.Risk_RISK_HIGH},
	{typesv1.RepairAction_REPAIR_ACTION_INCREASE_MEMORY_LIMIT, "several replicas: a rolling update, pods may not fit their nodes", always, typesv1.Risk_RISK_MEDIUM},
}

var systemNamespaces = []string{"kube-system", "kube-public", "kube-node-lease"}

func always(targetState) bool { return true }

// risk is the table's answer for the proposal on the bundle's target;
// HIGH when no row matches.
func risk(b *evidence.Bundle, p *typesv1.RepairProposal) typesv1.Risk {
	s := stateOf(b, p)
	for _, row := range riskTable {
		if (row.action == typesv1.RepairAction_REPAIR_ACTION_UNSPECIFIED || row.action == p.GetAction()) && row.when(s) {
			return row.risk
		}
	}
	return typesv1.Risk_RISK_HIGH
}

func stateOf(b *evidence.Bundle, p *typesv1.RepairProposal) targetState {
	var s targetState
	ns := p.GetTarget().GetNamespace()
	if b.Target != nil {
		ns = b.Target.GetNamespace()
		s.stateful = b.Target.GetKind() == "StatefulSet"
	}
	s.system = slices.Contains(systemNamespaces, ns) || slices.Contains(systemNamespaces, p.GetTarget().GetNamespace())
	if w := b.Workload; w != nil {
		s.replicas, s.ready = w.Replicas, w.ReadyReplicas
	}
	s.scaleTo = p.GetScale().GetReplicas()
	for _, pod := range b.Pods {
		if pod.Name != p.GetTarget().GetName() && ready(pod) {
			s.othersReady++
		}
	}
	return s
}

func ready(p evidence.Pod) bool {
	return p.Conditions["Ready"].Status == "True" && p.DeletingSince.IsZero()
}
