package engine

import (
	"fmt"
	"slices"
	"time"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
)

// defaultStartup is how long a pod takes to become ready when the bundle
// does not show it.
const defaultStartup = 30 * time.Second

// blastRadius is what the proposal touches, from the workload's state:
// pods replaced, added or removed, and the downtime to expect (none while
// other ready pods serve, else one pod's start).
func blastRadius(b *evidence.Bundle, p *typesv1.RepairProposal) BlastRadius {
	w := b.Workload
	if p.GetAction() == typesv1.RepairAction_REPAIR_ACTION_NONE || w == nil {
		return BlastRadius{Note: "nothing is changed"}
	}
	start := startup(b.Pods)
	switch p.GetAction() {
	case typesv1.RepairAction_REPAIR_ACTION_DELETE_POD:
		s := stateOf(b, p)
		if s.othersReady > 0 {
			return BlastRadius{Pods: 1, Note: fmt.Sprintf("one pod replaced; %d other ready pods keep serving", s.othersReady)}
		}
		return BlastRadius{Pods: 1, ExpectedDowntime: start, Note: "one pod replaced; no other ready pod serves meanwhile"}
	case typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT:
		to, from := p.GetScale().GetReplicas(), w.Replicas
		if to < from {
			return BlastRadius{Pods: int(from - to), Note: fmt.Sprintf("%d pods removed", from-to)}
		}
		return BlastRadius{Pods: int(to - from), Note: fmt.Sprintf("%d pods added; running pods untouched", to-from)}
	default: // restart, rollback, memory: every pod is replaced
		pods := int(max(w.Replicas, int32(len(b.Pods))))
		if w.ReadyReplicas >= 2 {
			return BlastRadius{Pods: pods, Note: "every pod replaced by a rolling update while the others serve"}
		}
		return BlastRadius{Pods: pods, ExpectedDowntime: start, Note: "every pod replaced; fewer than two ready pods, so service may stop while one starts"}
	}
}

// startup is the median time the bundle's ready pods took from creation
// to ready, or defaultStartup.
func startup(pods []evidence.Pod) time.Duration {
	var ds []time.Duration
	for _, p := range pods {
		r := p.Conditions["Ready"]
		if d := r.Since.Sub(p.CreatedAt); r.Status == "True" && !p.CreatedAt.IsZero() && d > 0 && d < 10*time.Minute {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		return defaultStartup
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}
