package rules

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/analysis/internal/engine"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
)

type want struct {
	rule   string
	action typesv1.RepairAction
	// target is "Kind/name" ("" when the proposal has none).
	target      string
	params      proto.Message // ScaleParams, MemoryLimitParams, RollbackParams; nil: none
	conf        [2]float64    // inclusive range
	needsPerson bool
	evidence    []string // included, in any order
	ruledOut    []string // included
	says        string   // in the summary or the root cause
}

type ruleCase struct {
	name   string
	bundle *evidence.Bundle
	want   want
}

var (
	podA = "Pod/" + podName(0)
	podB = "Pod/" + podName(1)
)

func ruleCases() []ruleCase {
	deployment := "Deployment/checkout"
	return []ruleCase{
		// The rules that act.
		{"oom-killed: +50 %", build(oomKill(0)), want{
			rule: "oom-killed", action: memory, target: deployment,
			params: &typesv1.MemoryLimitParams{Container: "app", LimitBytes: 768 * mi}, conf: [2]float64{0.85, 0.85},
			evidence: []string{containerID(podName(0), "app"), "deployment/checkout"},
			ruledOut: []string{"not a bad release: no deploy or new revision in the 30m0s before the incident", "not an image problem: no ImagePullBackOff or ErrImagePull"},
			says:     "768Mi",
		}},
		{"oom-killed: capped at the ceiling", build(memoryLimit(6<<30), oomKill(0)), want{
			rule: "oom-killed", action: memory, target: deployment,
			params: &typesv1.MemoryLimitParams{Container: "app", LimitBytes: 8 << 30}, conf: [2]float64{0.85, 0.85},
			evidence: []string{containerID(podName(0), "app")}, says: "8Gi",
		}},
		{"oom-killed: shortly after a deploy, less sure", build(deployed(10*time.Minute, "1.3", true), oomKill(0, 1)), want{
			rule: "oom-killed", action: memory, target: deployment,
			params: &typesv1.MemoryLimitParams{Container: "app", LimitBytes: 768 * mi}, conf: [2]float64{0.7, 0.7},
			evidence: []string{containerID(podName(0), "app"), containerID(podName(1), "app"), "deploy/dep-7", "deployment/checkout/revision/3"},
		}},
		{"rollback: crash loop after a deploy", build(deployed(10*time.Minute, "1.3", true), crashLoop(0, 1, 2)), want{
			rule: "rollback-after-deploy", action: rollback, target: deployment,
			params: &typesv1.RollbackParams{Revision: 2}, conf: [2]float64{0.8, 0.8},
			evidence: []string{containerID(podName(0), "app"), "logs/" + podName(0) + "/app", "deploy/dep-7", "deployment/checkout/revision/3", "deployment/checkout/revision/2"},
			ruledOut: []string{"not OOM: no container was OOMKilled", "not a missing Secret or ConfigMap: no CreateContainerConfigError, no mount failing on one"},
			says:     "Roll back to revision 2",
		}},
		// A crash loop is read from what lasts across restarts, whatever
		// the moment: between two crashes the container runs, Ready
		// without a readiness probe, and just after one it is terminated.
		{"rollback: crash loop after a deploy, read while running between crashes", build(deployed(10*time.Minute, "1.3", true), crashRunning(1, 3*time.Second, 0, 1, 2)), want{
			rule: "rollback-after-deploy", action: rollback, target: deployment,
			params: &typesv1.RollbackParams{Revision: 2}, conf: [2]float64{0.8, 0.8},
			evidence: []string{containerID(podName(0), "app")}, says: "restarting after Error (exit 1, 1 restarts)",
		}},
		{"rollback: crash loop after a deploy, read as its first crash ends", build(deployed(10*time.Minute, "1.3", true), crashExited(0, 0, 1, 2)), want{
			rule: "rollback-after-deploy", action: rollback, target: deployment,
			params: &typesv1.RollbackParams{Revision: 2}, conf: [2]float64{0.8, 0.8},
			evidence: []string{containerID(podName(0), "app")}, says: podName(0) + "/app Error (exit 1, 0 restarts)",
		}},
		{"rollback: crash loop after a deploy, read as a later crash ends", build(deployed(10*time.Minute, "1.3", true), crashExited(2, 0, 1, 2)), want{
			rule: "rollback-after-deploy", action: rollback, target: deployment,
			params: &typesv1.RollbackParams{Revision: 2}, conf: [2]float64{0.8, 0.8},
			evidence: []string{containerID(podName(0), "app")}, says: podName(0) + "/app Error (exit 1, 2 restarts)",
		}},
		{"rollback: image pull failure after a deploy", build(deployed(5*time.Minute, "1.3-typo", true), imagePull(0, 1, 2)), want{
			rule: "rollback-after-deploy", action: rollback, target: deployment,
			params: &typesv1.RollbackParams{Revision: 2}, conf: [2]float64{0.85, 0.85},
			evidence: []string{containerID(podName(2), "app"), "deploy/dep-7"}, says: "ImagePullBackOff",
		}},
		{"rollback: readiness failing after a deploy", build(deployed(20*time.Minute, "1.3", true), failReadiness(opened.Add(-15*time.Minute), 0, 1, 2)), want{
			rule: "rollback-after-deploy", action: rollback, target: deployment,
			params: &typesv1.RollbackParams{Revision: 2}, conf: [2]float64{0.8, 0.8},
			evidence: []string{"pod/" + podName(0), "event/" + podA + "/Unhealthy"}, says: "failing readiness",
		}},
		{"rollback: rollout past its deadline", build(deployed(25*time.Minute, "1.3", true), func(b *evidence.Bundle) {
			b.Workload.Progressing = evidence.Condition{Status: "False", Reason: "ProgressDeadlineExceeded"}
		}), want{
			rule: "rollback-after-deploy", action: rollback, target: deployment,
			params: &typesv1.RollbackParams{Revision: 2}, conf: [2]float64{0.8, 0.8},
			evidence: []string{"deploy/dep-7"}, says: "progress deadline",
		}},
		{"rollback: two bad releases in a row, past both to the last good one", build(deployed(10*time.Minute, "1.3", true), crashLoop(0, 1, 2), func(b *evidence.Bundle) {
			b.Workload.Revisions[1].Healthy = false // revision 2
			b.Workload.LastGood = 1
		}), want{
			rule: "rollback-after-deploy", action: rollback, target: deployment,
			params: &typesv1.RollbackParams{Revision: 1}, conf: [2]float64{0.8, 0.8},
			evidence: []string{"deployment/checkout/revision/1"},
		}},
		{"bad replica: one of three fails on a release whose others serve, delete it", build(deployed(10*time.Minute, "1.3", true), crashLoop(2), func(b *evidence.Bundle) {
			b.Workload.FailingPods = []string{podName(2)}
		}), want{
			rule: "bad-replica", action: deletePo, target: "Pod/" + podName(2), conf: [2]float64{0.6, 0.6},
			evidence: []string{"pod/" + podName(2), containerID(podName(2), "app"), "deployment/checkout/revision/3"},
			says:     "a rollback is not the fix",
		}},
		{"saturation: within the autoscaler's maximum", build(cpu(0.93), autoscaler(2, 4)), want{
			rule: "saturation", action: scale, target: deployment,
			params: &typesv1.ScaleParams{Replicas: 4}, conf: [2]float64{0.7, 0.7},
			evidence: []string{"metric/cpu_utilization", "deployment/checkout/autoscaler"}, says: "the maximum of HorizontalPodAutoscaler checkout",
		}},
		{"stuck terminating: delete the pod", build(func(b *evidence.Bundle) {
			b.Pods[1].DeletingSince = now.Add(-25 * time.Minute)
		}), want{
			rule: "stuck-terminating", action: deletePo, target: podB, conf: [2]float64{0.8, 0.8},
			evidence: []string{"pod/" + podName(1)}, says: "terminating for 25m",
		}},
		{"scaled to zero: back to the count before", build(scaledToZero(4)), want{
			rule: "scaled-to-zero", action: scale, target: deployment,
			params: &typesv1.ScaleParams{Replicas: 4}, conf: [2]float64{0.75, 0.75},
			evidence: []string{"deployment/checkout", "metric/replicas", "event/Deployment/checkout/ScalingReplicaSet"},
		}},
		{"scaled to zero: back within the autoscaler's bounds", build(scaledToZero(4), autoscaler(1, 3)), want{
			rule: "scaled-to-zero", action: scale, target: deployment,
			params: &typesv1.ScaleParams{Replicas: 3}, conf: [2]float64{0.75, 0.75},
		}},
		{"scaled to zero: count unknown, 1", build(scaledToZero(0)), want{
			rule: "scaled-to-zero", action: scale, target: deployment,
			params: &typesv1.ScaleParams{Replicas: 1}, conf: [2]float64{0.5, 0.5},
			evidence: []string{"deployment/checkout"},
		}},
		{"wedged pod: delete it", build(failReadiness(opened.Add(-30*time.Minute), 1)), want{
			rule: "wedged-pod", action: deletePo, target: podB, conf: [2]float64{0.7, 0.7},
			evidence: []string{"pod/" + podName(1), "event/" + podB + "/Unhealthy"},
		}},
		{"saturation: +50 %", build(cpu(0.93)), want{
			rule: "saturation", action: scale, target: deployment,
			params: &typesv1.ScaleParams{Replicas: 5}, conf: [2]float64{0.7, 0.7},
			evidence: []string{"metric/cpu_utilization", "deployment/checkout"},
			ruledOut: []string{"not OOM: no container was OOMKilled"},
		}},
		{"restart: readiness failing with no change", build(failReadiness(opened.Add(-5*time.Minute), 0, 1, 2)), want{
			rule: "restart-unhealthy", action: restart, target: deployment, conf: [2]float64{0.6, 0.6},
			evidence: []string{"pod/" + podName(0), "deployment/checkout"},
			ruledOut: []string{"not a bad release: no deploy or new revision in the 30m0s before the incident"},
		}},
		{"restart: crash loop with no change, less sure", build(crashLoop(0, 1, 2)), want{
			rule: "restart-unhealthy", action: restart, target: deployment, conf: [2]float64{0.45, 0.45},
			evidence: []string{containerID(podName(0), "app")},
		}},

		// The rules that know when not to act.
		{"none: no target", finish(&evidence.Bundle{Incident: healthy().Incident}), want{
			rule: "no-target", action: none, needsPerson: true, conf: [2]float64{0.9, 0.9},
			evidence: []string{"alert/labels"}, says: "deployment=checkout",
		}},
		{"none: missing Secret", build(func(b *evidence.Bundle) {
			for i := range b.Pods {
				c := container(b, i)
				c.State, c.Reason, c.Message = "waiting", "CreateContainerConfigError", `secret "checkout-db" not found`
				setReady(b, i, false, opened)
			}
		}), want{
			rule: "missing-config", action: none, target: deployment, needsPerson: true, conf: [2]float64{0.9, 0.9},
			evidence: []string{containerID(podName(0), "app")}, says: `secret "checkout-db" not found`,
		}},
		{"none: missing ConfigMap mount", build(func(b *evidence.Bundle) {
			p := &b.Pods[0]
			p.Phase = "Pending"
			p.Containers[0].State, p.Containers[0].Reason = "waiting", "ContainerCreating"
			setReady(b, 0, false, opened)
		}, event(podA, "FailedMount", `MountVolume.SetUp failed for volume "config" : configmap "checkout-config" not found`)), want{
			rule: "missing-config", action: none, target: deployment, needsPerson: true, conf: [2]float64{0.9, 0.9},
			evidence: []string{"event/" + podA + "/FailedMount"}, says: `configmap "checkout-config" not found`,
		}},
		{"none: unbound PVC", build(pending("0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.", 0)), want{
			rule: "unbound-pvc", action: none, target: deployment, needsPerson: true, conf: [2]float64{0.85, 0.85},
			evidence: []string{"pod/" + podName(0), "event/" + podA + "/FailedScheduling"},
		}},
		{"none: quota exceeded", build(func(b *evidence.Bundle) { b.Workload.Replicas = 4 },
			event("ReplicaSet/checkout-6f7d8", "FailedCreate", `Error creating: pods "checkout-6f7d8-x" is forbidden: exceeded quota: compute, requested: limits.memory=512Mi, used: limits.memory=1536Mi, limited: limits.memory=1536Mi`)), want{
			rule: "quota-exceeded", action: none, target: deployment, needsPerson: true, conf: [2]float64{0.9, 0.9},
			evidence: []string{"deployment/checkout", "event/ReplicaSet/checkout-6f7d8/FailedCreate"}, says: "exceeded quota",
		}},
		{"none: insufficient memory", build(pending("0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.", 2)), want{
			rule: "unschedulable-resources", action: none, target: deployment, needsPerson: true, conf: [2]float64{0.85, 0.85},
			evidence: []string{"pod/" + podName(2), "event/Pod/" + podName(2) + "/FailedScheduling"}, says: "Insufficient memory",
		}},
		{"none: node selector matches no node", build(pending("0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.", 0, 1, 2)), want{
			rule: "unschedulable-placement", action: none, target: deployment, needsPerson: true, conf: [2]float64{0.85, 0.85},
			evidence: []string{"pod/" + podName(0)}, says: "node affinity/selector",
		}},
		{"none: unschedulable, cordoned nodes", build(pending("0/3 nodes are available: 3 node(s) were unschedulable.", 2)), want{
			rule: "unschedulable", action: none, target: deployment, needsPerson: true, conf: [2]float64{0.7, 0.7},
			evidence: []string{"pod/" + podName(2)}, says: "were unschedulable",
		}},
		{"none: workload unreadable", build(func(b *evidence.Bundle) {
			b.Workload = nil
			b.Gaps = []string{`workload: deployments.apps "checkout" is forbidden`}
		}), want{
			rule: "workload-unknown", action: none, target: deployment, needsPerson: true, conf: [2]float64{0.5, 0.5},
			says: "forbidden",
		}},
		{"none: OOMKilled without a limit", build(memoryLimit(0), oomKill(0)), want{
			rule: "oom-no-limit", action: none, target: deployment, needsPerson: true, conf: [2]float64{0.75, 0.75},
			evidence: []string{containerID(podName(0), "app")}, says: "no memory limit",
		}},
		{"none: OOMKilled at the ceiling", build(memoryLimit(8<<30), oomKill(0)), want{
			rule: "oom-at-ceiling", action: none, target: deployment, needsPerson: true, conf: [2]float64{0.75, 0.75},
			evidence: []string{containerID(podName(0), "app")}, says: "8Gi",
		}},
		{"none: bad image, no deploy to undo", build(imagePull(0, 1, 2)), want{
			rule: "bad-image", action: none, target: deployment, needsPerson: true, conf: [2]float64{0.85, 0.85},
			evidence: []string{containerID(podName(0), "app"), "event/" + podA + "/Failed"},
		}},
		{"none: bad image after a deploy, no healthy revision", build(deployed(5*time.Minute, "1.3", false), imagePull(0, 1, 2)), want{
			rule: "bad-image", action: none, target: deployment, needsPerson: true, conf: [2]float64{0.85, 0.85},
			evidence: []string{containerID(podName(0), "app")},
		}},
		{"none: broken release, no healthy revision", build(deployed(10*time.Minute, "1.3", false), crashLoop(0, 1, 2)), want{
			rule: "broken-release", action: none, target: deployment, needsPerson: true, conf: [2]float64{0.7, 0.7},
			evidence: []string{containerID(podName(0), "app"), "deploy/dep-7"}, says: "a restart would run the same release",
		}},
		{"none: saturated at the replica limit", build(cpu(0.95), func(b *evidence.Bundle) {
			b.Workload.Replicas, b.Workload.ReadyReplicas = 20, 20
		}), want{
			rule: "saturated-at-max", action: none, target: deployment, needsPerson: true, conf: [2]float64{0.7, 0.7},
			evidence: []string{"metric/cpu_utilization"},
		}},
		{"none: saturated at the autoscaler's maximum", build(cpu(0.95), autoscaler(1, 3)), want{
			rule: "saturated-at-max", action: none, target: deployment, needsPerson: true, conf: [2]float64{0.7, 0.7},
			evidence: []string{"metric/cpu_utilization", "deployment/checkout/autoscaler"}, says: "the maximum of HorizontalPodAutoscaler checkout",
		}},
		{"none: a crash after an image change in a reserved namespace", build(deployed(10*time.Minute, "1.3", true), crashLoop(0, 1, 2), func(b *evidence.Bundle) {
			b.Reserved = "the cluster's own (kube-*)"
		}), want{
			rule: "rollback-after-deploy", action: none, target: deployment, needsPerson: true, conf: [2]float64{0.8, 0.8},
			says: "namespace shop is the cluster's own (kube-*), where Vigil never repairs: needs a person",
		}},
		{"none: a crash loop read between two crashes in a reserved namespace", build(deployed(10*time.Minute, "1.3", true), crashRunning(2, 2*time.Second, 0), func(b *evidence.Bundle) {
			b.Reserved = "the cluster's own (kube-*)"
		}), want{
			rule: "rollback-after-deploy", action: none, target: deployment, needsPerson: true, conf: [2]float64{0.8, 0.8},
			says: "revision 3 fails: " + podName(0) + "/app restarting after Error",
		}},
		{"none: a container that failed long ago and has run since is not crashing", build(deployed(10*time.Minute, "1.3", true), crashRunning(4, time.Hour, 0, 1, 2)), want{
			rule: "no-finding", action: none, needsPerson: true, target: deployment, conf: [2]float64{0.3, 0.3},
			ruledOut: []string{"not a crash loop: no container crashing or in CrashLoopBackOff"},
		}},
		{"none: a Job is not restarted", build(crashLoop(0), asJob), want{
			rule: "restart-unhealthy", action: none, target: "Job/checkout", needsPerson: true, conf: [2]float64{0.45, 0.45},
			says: "does not apply to a Job",
		}},
		{"none: a StatefulSet is not rolled back", build(deployed(10*time.Minute, "1.3", true), crashLoop(0, 1, 2), func(b *evidence.Bundle) {
			b.Target.Kind, b.Workload.Ref.Kind = "StatefulSet", "StatefulSet"
		}), want{
			rule: "rollback-after-deploy", action: none, target: "StatefulSet/checkout", needsPerson: true, conf: [2]float64{0.8, 0.8},
			says: "does not apply to a StatefulSet",
		}},
		{"none: a finished Job is not scaled to zero", build(asJob, func(b *evidence.Bundle) {
			for i := range b.Pods {
				b.Pods[i].Phase, b.Pods[i].Conditions["Ready"] = "Succeeded", evidence.Condition{Status: "False", Reason: "PodCompleted"}
				b.Pods[i].Containers[0].State, b.Pods[i].Containers[0].Reason, b.Pods[i].Containers[0].Ready = "terminated", "Completed", false
			}
		}), want{
			rule: "no-finding", action: none, needsPerson: true, target: "Job/checkout", conf: [2]float64{0.3, 0.3},
		}},
		{"none: nothing found", build(), want{
			rule: "no-finding", action: none, needsPerson: true, target: deployment, conf: [2]float64{0.3, 0.3},
			ruledOut: []string{
				"not OOM: no container was OOMKilled", "not unschedulable: no pod is pending unscheduled",
				"not a crash loop: no container crashing or in CrashLoopBackOff", "not scaled to zero: 3 replicas desired",
				"not a stuck pod: no pod terminating for more than 10m0s",
			},
			says: "3/3 replicas ready",
		}},

		// Precedence: the first rule that matches answers.
		{"precedence: OOM and crash loop raise memory, not restart", build(oomKill(0), crashLoop(1, 2)), want{
			rule: "oom-killed", action: memory, target: deployment,
			params: &typesv1.MemoryLimitParams{Container: "app", LimitBytes: 768 * mi}, conf: [2]float64{0.85, 0.85},
		}},
		{"precedence: a missing Secret beats the crash loop", build(crashLoop(0, 1), func(b *evidence.Bundle) {
			c := container(b, 2)
			c.State, c.Reason, c.Message = "waiting", "CreateContainerConfigError", `couldn't find key password in Secret shop/checkout-db`
		}), want{
			rule: "missing-config", action: none, target: deployment, needsPerson: true, conf: [2]float64{0.9, 0.9},
			says: "couldn't find key password in Secret shop/checkout-db",
		}},
		{"precedence: no scaling into a full cluster", build(cpu(0.95), pending("0/3 nodes are available: 3 Insufficient cpu.", 2)), want{
			rule: "unschedulable-resources", action: none, target: deployment, needsPerson: true, conf: [2]float64{0.85, 0.85},
		}},
		{"precedence: an unbound PVC beats a rollback", build(deployed(10*time.Minute, "1.3", true), pending("0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims.", 0)), want{
			rule: "unbound-pvc", action: none, target: deployment, needsPerson: true, conf: [2]float64{0.85, 0.85},
		}},
		{"precedence: an old FailedScheduling with every pod scheduled is not unschedulable", build(event(podA, "FailedScheduling", "0/3 nodes are available: 3 Insufficient memory.")), want{
			rule: "no-finding", action: none, needsPerson: true, target: deployment, conf: [2]float64{0.3, 0.3},
			ruledOut: []string{"not unschedulable: no pod is pending unscheduled"},
		}},
		{"error-after-deploy: a new Sentry issue after a deploy, pods healthy", build(deployed(10*time.Minute, "1.3", true), sentryIssue(opened.Add(-8*time.Minute), true)), want{
			rule: "error-after-deploy", action: rollback, target: deployment,
			params: &typesv1.RollbackParams{Revision: 2}, conf: [2]float64{0.7, 0.7},
			evidence: []string{"sentry/1170820242", "deploy/dep-7", "deployment/checkout/revision/3", "deployment/checkout/revision/2"},
			says:     "Sentry issue 1170820242 (KeyError: 'currency') was first seen 2m0s after revision 3 of deployment/checkout was deployed (release checkout@1.3). Roll back to revision 2",
		}},
		{"error-after-deploy: first seen during the rollout, when only its first alert says", build(deployed(10*time.Minute, "1.3", true), sentryIssue(opened.Add(-12*time.Minute), false)), want{
			rule: "error-after-deploy", action: rollback, target: deployment,
			params: &typesv1.RollbackParams{Revision: 2}, conf: [2]float64{0.6, 0.6},
			evidence: []string{"sentry/1170820242", "deploy/dep-7"},
		}},
		{"rollback-after-deploy cites the Sentry issue too", build(deployed(10*time.Minute, "1.3", true), crashLoop(0, 1, 2), sentryIssue(opened.Add(-9*time.Minute), true)), want{
			rule: "rollback-after-deploy", action: rollback, target: deployment,
			params: &typesv1.RollbackParams{Revision: 2}, conf: [2]float64{0.8, 0.8},
			evidence: []string{"sentry/1170820242", "deploy/dep-7"},
		}},
		{"precedence: a Sentry issue seen before the deploy is not the release's", build(deployed(10*time.Minute, "1.3", true), sentryIssue(opened.Add(-2*time.Hour), true)), want{
			rule: "no-finding", action: none, needsPerson: true, target: deployment, conf: [2]float64{0.3, 0.3},
		}},
		{"precedence: a Sentry issue with no deploy is no rollback", build(sentryIssue(opened.Add(-5*time.Minute), true)), want{
			rule: "no-finding", action: none, needsPerson: true, target: deployment, conf: [2]float64{0.3, 0.3},
		}},
		{"precedence: a Sentry issue after a deploy with no good revision to return to", build(deployed(10*time.Minute, "1.3", false), sentryIssue(opened.Add(-8*time.Minute), true)), want{
			rule: "no-finding", action: none, needsPerson: true, target: deployment, conf: [2]float64{0.3, 0.3},
		}},
		{"precedence: a deploy an hour ago is not recent", build(deployed(time.Hour, "1.3", true), crashLoop(0, 1, 2)), want{
			rule: "restart-unhealthy", action: restart, target: deployment, conf: [2]float64{0.45, 0.45},
		}},
	}
}

func TestRules(t *testing.T) {
	t.Parallel()
	e := New(Options{Now: func() time.Time { return now }})
	for _, tc := range ruleCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := e.Analyze(t.Context(), tc.bundle)
			require.NoError(t, err)
			w := tc.want
			require.Equal(t, w.rule, got.Rule)
			require.Equal(t, w.action, got.Proposal.GetAction(), got.Summary)
			require.Equal(t, w.needsPerson, got.NeedsPerson)
			require.Equal(t, "rules", got.Engine)
			if w.target == "" {
				require.Nil(t, got.Proposal.GetTarget())
			} else {
				tg := got.Proposal.GetTarget()
				require.Equal(t, w.target, tg.GetKind()+"/"+tg.GetName())
				require.Equal(t, "dev", tg.GetCluster())
				require.Equal(t, "shop", tg.GetNamespace())
			}
			var params proto.Message
			switch p := got.Proposal.GetParams().(type) {
			case *typesv1.RepairProposal_Scale:
				params = p.Scale
			case *typesv1.RepairProposal_MemoryLimit:
				params = p.MemoryLimit
			case *typesv1.RepairProposal_Rollback:
				params = p.Rollback
			}
			if w.params == nil {
				require.Nil(t, params)
			} else {
				require.True(t, proto.Equal(w.params, params), "params %v, want %v", params, w.params)
			}
			require.GreaterOrEqual(t, got.Confidence, w.conf[0])
			require.LessOrEqual(t, got.Confidence, w.conf[1])
			require.Subset(t, got.Evidence, w.evidence)
			require.Subset(t, got.RuledOut, w.ruledOut)
			require.Contains(t, got.Summary+"\n"+got.RootCause, w.says)
			require.NotEmpty(t, got.Summary)
			require.NotEmpty(t, got.RootCause)

			// Every cited item is one of the bundle's.
			for _, id := range got.Evidence {
				require.True(t, slices.ContainsFunc(tc.bundle.Items, func(it evidence.Item) bool { return it.ID == id }), id)
			}
			// What a rule proposes passes the checks every engine's
			// answer passes, unchanged in confidence.
			checked, err := engine.Check(tc.bundle, got, got, engine.DefaultLimits())
			require.NoError(t, err)
			require.InDelta(t, got.Confidence, checked.Confidence, 1e-9)
		})
	}
}

// TestRulesEveryRuleTested: every row of the table has a case.
func TestRulesEveryRuleTested(t *testing.T) {
	t.Parallel()
	tested := map[string]bool{}
	nones := 0
	for _, tc := range ruleCases() {
		tested[tc.want.rule] = true
		if tc.want.action == none {
			nones++
		}
	}
	for _, r := range table {
		require.True(t, tested[r.name], "rule %s has no case", r.name)
	}
	require.GreaterOrEqual(t, nones, 8)
}

func TestRulesMissingEvidenceLowersConfidence(t *testing.T) {
	t.Parallel()
	b := build(oomKill(0), func(b *evidence.Bundle) { b.Gaps = []string{"logs: deadline exceeded after 2s"} })
	got, err := New(Options{Now: func() time.Time { return now }}).Analyze(t.Context(), b)
	require.NoError(t, err)
	require.Equal(t, memory, got.Proposal.GetAction())
	require.InDelta(t, 0.75, got.Confidence, 1e-9)
	require.Contains(t, got.Reasoning, "logs: deadline exceeded after 2s")
}

func TestRulesCitesOnlyItemsOfTheBundle(t *testing.T) {
	t.Parallel()
	b := build(oomKill(0))
	b.Items = nil
	got, err := New(Options{Now: func() time.Time { return now }}).Analyze(t.Context(), b)
	require.NoError(t, err)
	require.Equal(t, memory, got.Proposal.GetAction())
	require.Empty(t, got.Evidence)
}

func TestRulesDeterministic(t *testing.T) {
	t.Parallel()
	e := New(Options{Now: func() time.Time { return now }})
	for _, tc := range ruleCases() {
		a, err := e.Analyze(t.Context(), tc.bundle)
		require.NoError(t, err)
		b, err := e.Analyze(t.Context(), tc.bundle)
		require.NoError(t, err)
		require.Equal(t, a.Summary, b.Summary, tc.name)
		require.Equal(t, a.Evidence, b.Evidence, tc.name)
		require.Equal(t, a.RuledOut, b.RuledOut, tc.name)
		require.True(t, proto.Equal(a.Proposal, b.Proposal), tc.name)
	}
}

func TestRulesCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := New(Options{}).Analyze(ctx, build())
	require.ErrorIs(t, err, context.Canceled)
}
