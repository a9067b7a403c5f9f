package engine_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/analysis/internal/engine"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
	"github.com/vigil-ops/vigil/services/analysis/internal/rules"
)

var (
	opened = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now    = opened.Add(2 * time.Minute)
)

const mi = int64(1) << 20

func ref(ns, kind, name string) *typesv1.ResourceRef {
	return &typesv1.ResourceRef{Cluster: "dev", Namespace: ns, Kind: kind, Name: name}
}

func podName(i int) string { return fmt.Sprintf("checkout-6f7d8-%c", 'a'+i) }

// checkout is the incident's target: shop/checkout, a Deployment of 3
// ready replicas at revision 2 (revision 1 kept, healthy), its app
// limited to 512Mi, pods ready 20 s after they start.
func checkout(changes ...func(b *evidence.Bundle)) *evidence.Bundle {
	b := &evidence.Bundle{
		Incident: evidence.Incident{ID: "inc-1", OpenedAt: opened, Labels: map[string]string{"namespace": "shop", "deployment": "checkout"}},
		Target:   ref("shop", "Deployment", "checkout"),
		Workload: &evidence.Workload{
			Ref: ref("shop", "Deployment", "checkout"), Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3, Revision: 2, LastGood: 1,
			Revisions: []evidence.Revision{
				{Number: 2, Images: []string{"checkout:1.2"}, CreatedAt: opened.Add(-72 * time.Hour), Healthy: true},
				{Number: 1, Images: []string{"checkout:1.1"}, CreatedAt: opened.Add(-240 * time.Hour), Healthy: true},
			},
			Containers: []evidence.ContainerSpec{{Name: "app", Image: "checkout:1.2", MemoryLimit: 512 * mi}},
		},
	}
	for i := range 3 {
		b.Pods = append(b.Pods, evidence.Pod{
			Name: podName(i), Phase: "Running", Revision: 2, CreatedAt: opened.Add(-time.Hour),
			Conditions: map[string]evidence.Condition{
				"PodScheduled": {Status: "True"},
				"Ready":        {Status: "True", Since: opened.Add(-time.Hour + 20*time.Second)},
			},
			Containers: []evidence.Container{{Name: "app", Image: "checkout:1.2", Ready: true, State: "running"}},
		})
	}
	for _, c := range changes {
		c(b)
	}
	b.Items = []evidence.Item{{ID: "alert/labels", Source: "incident"}}
	if b.Target != nil {
		b.Items = append(b.Items, evidence.Item{ID: strings.ToLower(b.Target.GetKind()) + "/" + b.Target.GetName(), Source: "kubernetes"})
	}
	for _, p := range b.Pods {
		b.Items = append(b.Items, evidence.Item{ID: "pod/" + p.Name, Source: "kubernetes:pod"},
			evidence.Item{ID: "pod/" + p.Name + "/container/app", Source: "kubernetes:pod"})
	}
	return b
}

// replicas sets the desired count and keeps that many ready pods.
func replicas(n int) func(b *evidence.Bundle) {
	return func(b *evidence.Bundle) {
		b.Workload.Replicas, b.Workload.ReadyReplicas = int32(n), int32(n)
		b.Pods = b.Pods[:min(n, len(b.Pods))]
	}
}

func unreadyAll(b *evidence.Bundle) {
	for i := range b.Pods {
		b.Pods[i].Conditions["Ready"] = evidence.Condition{Status: "False", Since: opened.Add(-5 * time.Minute)}
	}
	b.Workload.ReadyReplicas = 0
}

func crashAfterDeploy(b *evidence.Bundle) {
	w := b.Workload
	w.Revision = 3
	w.Revisions = append([]evidence.Revision{{Number: 3, Images: []string{"checkout:1.3"}, CreatedAt: opened.Add(-10 * time.Minute)}}, w.Revisions...)
	w.LastGood = 2
	w.ReadyReplicas = 0
	for i := range b.Pods {
		p := &b.Pods[i]
		p.Revision = 3
		p.Conditions["Ready"] = evidence.Condition{Status: "False"}
		p.Containers[0] = evidence.Container{Name: "app", State: "waiting", Reason: "CrashLoopBackOff", RestartCount: 5, LastReason: "Error", LastExitCode: 1}
	}
}

func missingSecret(b *evidence.Bundle) {
	for i := range b.Pods {
		b.Pods[i].Conditions["Ready"] = evidence.Condition{Status: "False"}
		b.Pods[i].Containers[0] = evidence.Container{Name: "app", State: "waiting", Reason: "CreateContainerConfigError", Message: `secret "checkout-db" not found`}
	}
	b.Workload.ReadyReplicas = 0
}

func kind(k string) func(b *evidence.Bundle) {
	return func(b *evidence.Bundle) { b.Target.Kind, b.Workload.Ref.Kind = k, k }
}

func noTarget(b *evidence.Bundle) { b.Target, b.Workload, b.Pods = nil, nil, nil }

// verdict is the rules engine's result on b.
func verdict(b *evidence.Bundle) engine.Result {
	r, err := rules.New(rules.Options{Now: func() time.Time { return now }}).Analyze(context.Background(), b)
	if err != nil {
		panic(err)
	}
	return r
}

func proposal(a typesv1.RepairAction, target *typesv1.ResourceRef) *typesv1.RepairProposal {
	return &typesv1.RepairProposal{Action: a, Target: target}
}

func scaleTo(n int32, target *typesv1.ResourceRef) *typesv1.RepairProposal {
	p := proposal(typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT, target)
	p.Params = &typesv1.RepairProposal_Scale{Scale: &typesv1.ScaleParams{Replicas: n}}
	return p
}

func memoryTo(container string, n int64) *typesv1.RepairProposal {
	p := proposal(typesv1.RepairAction_REPAIR_ACTION_INCREASE_MEMORY_LIMIT, ref("shop", "Deployment", "checkout"))
	p.Params = &typesv1.RepairProposal_MemoryLimit{MemoryLimit: &typesv1.MemoryLimitParams{Container: container, LimitBytes: n}}
	return p
}

func rollbackTo(rev int64) *typesv1.RepairProposal {
	p := proposal(typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, ref("shop", "Deployment", "checkout"))
	p.Params = &typesv1.RepairProposal_Rollback{Rollback: &typesv1.RollbackParams{Revision: rev}}
	return p
}
