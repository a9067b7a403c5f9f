package rules

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
)

// rule is one row of the table.
type rule struct {
	name string
	// when is the predicate in words, for the record and the docs.
	when   string
	action typesv1.RepairAction
	// needsPerson: the rule found what no repair in the enum fixes.
	needsPerson bool
	confidence  float64
	match       func(f *facts) (finding, bool)
}

// finding is what a matching rule found.
type finding struct {
	summary, rootCause string
	evidence           []string
	// pod is the pod a DELETE_POD names.
	pod string
	// params: *typesv1.ScaleParams, *typesv1.MemoryLimitParams or
	// *typesv1.RollbackParams.
	params any
	// adjust lowers (or raises) the rule's base confidence, with why.
	adjust    float64
	adjustWhy string
}

const (
	none     = typesv1.RepairAction_REPAIR_ACTION_NONE
	restart  = typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT
	deletePo = typesv1.RepairAction_REPAIR_ACTION_DELETE_POD
	scale    = typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT
	rollback = typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT
	memory   = typesv1.RepairAction_REPAIR_ACTION_INCREASE_MEMORY_LIMIT
)

var (
	missingConfigRE = regexp.MustCompile(`(?i)(secret|configmap)s?\s+"?[\w.-]+"?\s+not found|couldn't find key \S+ in (Secret|ConfigMap) \S+`)
	pvcRE           = regexp.MustCompile(`(?i)unbound .*persistentvolumeclaim|persistentvolumeclaim "?[\w.-]+"? not found`)
	quotaRE         = regexp.MustCompile(`(?i)exceeded quota`)
	insufficientRE  = regexp.MustCompile(`(?i)insufficient \w|too many pods`)
	placementRE     = regexp.MustCompile(`(?i)node affinity|node selector|nodeselector|untolerated taint|had taint|pod affinity|anti-affinity|free ports`)
)

// table is the rules in the order they are tried: the ones that find
// what a person must fix first, then the specific repairs, then the
// generic restart, then "nothing found".
var table = []rule{
	{
		name: "no-target", action: none, needsPerson: true, confidence: 0.9,
		when: "the alert cannot be tied to a workload",
		match: func(f *facts) (finding, bool) {
			if f.b.Target != nil {
				return finding{}, false
			}
			return finding{
				summary:   f.tr("The alert cannot be tied to a workload: needs a person"),
				rootCause: f.tr("no Deployment, StatefulSet, DaemonSet or Job found from the alert's labels (%s)", f.labels()),
				evidence:  []string{labelsID},
			}, true
		},
	},
	{
		name: "missing-config", action: none, needsPerson: true, confidence: 0.9,
		when: "a container waits in CreateContainerConfigError, or a mount fails on a Secret or ConfigMap not found",
		match: func(f *facts) (finding, bool) {
			refs := f.containers(waiting("CreateContainerConfigError"))
			es := f.events(func(e evidence.Event) bool {
				return (e.Reason == "FailedMount" || e.Reason == "Failed") && missingConfigRE.MatchString(e.Message)
			})
			if len(refs) == 0 && len(es) == 0 {
				return finding{}, false
			}
			what := f.tr("a Secret or ConfigMap the pods need is missing")
			for _, m := range append(messages(refs), eventMessages(es)...) {
				if s := missingConfigRE.FindString(m); s != "" {
					what = s
					break
				}
			}
			return finding{
				summary:   f.tr("Pods cannot start: %s. Needs a person to create it or fix the reference; a restart cannot", what),
				rootCause: what,
				evidence:  append(containerIDs(refs), eventIDs(es)...),
			}, true
		},
	},
	{
		name: "unbound-pvc", action: none, needsPerson: true, confidence: 0.85,
		when: "a pod is pending on an unbound or missing PersistentVolumeClaim",
		match: func(f *facts) (finding, bool) {
			es := f.events(func(e evidence.Event) bool { return pvcRE.MatchString(e.Message) })
			if len(f.pending()) == 0 || len(es) == 0 {
				return finding{}, false
			}
			return finding{
				summary:   f.tr("Pods are pending on a PersistentVolumeClaim that is not bound: needs a person (storage class, provisioner or the claim)"),
				rootCause: firstMessage(es),
				evidence:  append(podIDs(f.pending()), eventIDs(es)...),
			}, true
		},
	},
	{
		name: "quota-exceeded", action: none, needsPerson: true, confidence: 0.9,
		when: "pods cannot be created: FailedCreate for an exceeded quota, and replicas are missing",
		match: func(f *facts) (finding, bool) {
			es := f.events(eventsWith("FailedCreate", quotaRE))
			if len(es) == 0 || (f.w != nil && f.w.ReadyReplicas >= f.w.Replicas) {
				return finding{}, false
			}
			return finding{
				summary:   f.tr("Pods cannot be created: the namespace's resource quota is exhausted. Needs a person to raise the quota or free resources"),
				rootCause: firstMessage(es),
				evidence:  append([]string{workloadID(f.b)}, eventIDs(es)...),
			}, true
		},
	},
	unschedulable("unschedulable-resources", insufficientRE, 0.85,
		"no node has the cpu or memory the pods request",
		"Pods cannot be scheduled: no node has the resources they request. Needs a person (capacity or requests); more replicas or a restart would not fit either"),
	unschedulable("unschedulable-placement", placementRE, 0.85,
		"the pods' node selector, affinity or tolerations match no node",
		"Pods cannot be scheduled: their node selector, affinity or tolerations match no node. Needs a person to fix the placement or the nodes"),
	unschedulable("unschedulable", nil, 0.7,
		"pods are pending unscheduled",
		"Pods cannot be scheduled. Needs a person"),
	{
		name: "workload-unknown", action: none, needsPerson: true, confidence: 0.5,
		when: "the workload's state could not be read",
		match: func(f *facts) (finding, bool) {
			if f.w != nil {
				return finding{}, false
			}
			return finding{
				summary:   f.tr("The state of %s could not be read: needs a person", workloadID(f.b)),
				rootCause: f.tr("gathering failed: %s", strings.Join(f.b.Gaps, "; ")),
			}, true
		},
	},
	{
		name: "oom-no-limit", action: none, needsPerson: true, confidence: 0.75,
		when: "a container was OOMKilled but has no memory limit to raise",
		match: func(f *facts) (finding, bool) {
			refs, spec, ok := f.oom()
			if !ok || spec.MemoryLimit > 0 {
				return finding{}, false
			}
			return finding{
				summary:   f.tr("Container %s was OOMKilled without a memory limit: the node ran out of memory. Needs a person to set a limit or move it; there is no limit to raise", refs[0].c.Name),
				rootCause: f.tr("container %s OOMKilled (exit %d) with no memory limit", refs[0].c.Name, exitCode(refs[0])),
				evidence:  append(containerIDs(refs), workloadID(f.b)),
			}, true
		},
	},
	{
		name: "oom-at-ceiling", action: none, needsPerson: true, confidence: 0.75,
		when: "a container was OOMKilled and its memory limit is already at the ceiling",
		match: func(f *facts) (finding, bool) {
			refs, spec, ok := f.oom()
			if !ok || spec.MemoryLimit < f.lim.MemoryCeiling {
				return finding{}, false
			}
			return finding{
				summary: f.tr("Container %s was OOMKilled at %s, the most Vigil raises a limit to: a leak or a capacity decision. Needs a person",
					refs[0].c.Name, bytes(spec.MemoryLimit)),
				rootCause: f.tr("container %s OOMKilled at its limit of %s", refs[0].c.Name, bytes(spec.MemoryLimit)),
				evidence:  append(containerIDs(refs), workloadID(f.b)),
			}, true
		},
	},
	{
		name: "oom-killed", action: memory, confidence: 0.85,
		when: "a container was OOMKilled (now or its last run) under a memory limit: raise it by 50 %, at most ×2 and the ceiling",
		match: func(f *facts) (finding, bool) {
			refs, spec, ok := f.oom()
			if !ok {
				return finding{}, false
			}
			cur := spec.MemoryLimit
			to := min((cur*3/2+(1<<20)-1)&^((1<<20)-1), 2*cur, f.lim.MemoryCeiling)
			d := finding{
				summary: f.tr("Container %s is OOMKilled at its memory limit of %s (%d restarts): raise it to %s",
					spec.Name, bytes(cur), refs[0].c.RestartCount, bytes(to)),
				rootCause: f.tr("container %s exceeds its memory limit of %s (OOMKilled, exit %d)", spec.Name, bytes(cur), exitCode(refs[0])),
				evidence:  append(containerIDs(refs), workloadID(f.b)),
				params:    &typesv1.MemoryLimitParams{Container: spec.Name, LimitBytes: to},
			}
			if ids, what, recent := f.recentChange(); recent {
				d.evidence = append(d.evidence, ids...)
				d.adjust, d.adjustWhy = -0.15, "confidence lowered: "+what+"; the new revision may use more memory, and a rollback is the alternative"
			}
			return d, true
		},
	},
	{
		name: "bad-replica", action: deletePo, confidence: 0.6,
		when: "within 30 min of a deploy, a pod of the current revision fails while its other replicas have been ready for the settle time: the release works, that pod does not; delete it so it is replaced, rather than roll the release back",
		match: func(f *facts) (finding, bool) {
			if f.w == nil || len(f.w.FailingPods) == 0 || !slices.ContainsFunc(f.b.Pods, func(p evidence.Pod) bool { return p.Name == f.w.FailingPods[0] }) {
				return finding{}, false
			}
			ids, what, recent := f.recentChange()
			if !recent {
				// No release to blame or to clear: the rules for a pod
				// gone bad on its own answer (wedged-pod, restart).
				return finding{}, false
			}
			pod := f.w.FailingPods[0]
			refs := f.containers(func(p *evidence.Pod, _ *evidence.Container) bool { return p.Name == pod })
			return finding{
				summary: f.tr("Pod %s fails while the other replicas of revision %d have been serving: the release works, this pod does not. Delete it so it is replaced (a rollback is not the fix)",
					pod, f.w.Revision),
				rootCause: f.tr("pod %s of revision %d fails on its own (its node, a volume or its state); %d of its %d replicas fail, though %s", pod, f.w.Revision, len(f.w.FailingPods), f.w.Replicas, what),
				evidence:  slices.Concat([]string{podID(pod)}, refIDs(refs), []string{workloadID(f.b), revisionID(f.b, f.w.Revision)}, ids),
				pod:       pod,
			}, true
		},
	},
	{
		name: "rollback-after-deploy", action: rollback, confidence: 0.8,
		when: "pods of the current revision crash, fail to pull or fail readiness (or the rollout passed its deadline) within 30 min of a deploy: roll back to the last good revision (all its replicas were ready for the settle time), skipping bad ones",
		match: func(f *facts) (finding, bool) {
			refs, pods := f.failing()
			stalled := f.w != nil && f.w.Progressing.Reason == "ProgressDeadlineExceeded"
			ids, what, recent := f.recentChange()
			prev, healthy := f.lastGood()
			if (len(refs) == 0 && len(pods) == 0 && !stalled) || !recent || !healthy {
				return finding{}, false
			}
			d := finding{
				summary: f.tr("%s; %s. Roll back to revision %d (%s), the last good one",
					f.failure(refs, pods, stalled), what, prev.Number, strings.Join(prev.Images, ", ")),
				rootCause: f.tr("revision %d fails: %s", f.w.Revision, f.failure(refs, pods, stalled)),
				evidence:  slices.Concat(refIDs(refs), podIDs(pods), ids, []string{revisionID(f.b, prev.Number), workloadID(f.b)}, eventIDs(f.events(eventsWith("Unhealthy")))),
				params:    &typesv1.RollbackParams{Revision: prev.Number},
			}
			if is, _, raised := f.errorAfterDeploy(); raised {
				d.evidence = append(d.evidence, errorID(is))
			}
			if slices.ContainsFunc(refs, func(r ref) bool { return slices.Contains(imagePullReasons, r.c.Reason) }) {
				d.adjust, d.adjustWhy = 0.05, "confidence raised: the new image cannot be pulled, the deploy is the cause"
			}
			return d, true
		},
	},
	{
		name: "error-after-deploy", action: rollback, confidence: 0.7,
		when: "a Sentry issue was first seen within 30 min after a Vigil deploy of the app (from 5 min before the deploy's last event, for a rollout still under way), the workload runs that deploy's revision, and its pods are healthy: the release raises a new error; roll back to the last good revision",
		match: func(f *facts) (finding, bool) {
			is, dep, ok := f.errorAfterDeploy()
			prev, healthy := f.lastGood()
			if !ok || !healthy {
				return finding{}, false
			}
			release := ""
			if is.Release != "" {
				release = f.tr(" (release %s)", is.Release)
			}
			d := finding{
				summary: f.tr("Sentry issue %s (%s) was first seen %s after revision %d of %s was deployed%s. Roll back to revision %d (%s), the last good one",
					is.ID, short(is.Title), is.FirstSeen.Sub(dep.At).Round(time.Second), f.w.Revision, workloadID(f.b), release, prev.Number, strings.Join(prev.Images, ", ")),
				rootCause: f.tr("revision %d raises a new error: %s", f.w.Revision, short(is.Title)),
				evidence:  []string{errorID(is), deployID(dep), revisionID(f.b, f.w.Revision), revisionID(f.b, prev.Number), workloadID(f.b)},
				params:    &typesv1.RollbackParams{Revision: prev.Number},
			}
			if !is.FirstSeenKnown {
				d.adjust, d.adjustWhy = -0.1, "confidence lowered: the alerts did not say when Sentry first saw the issue; its first alert stands for it"
			}
			return d, true
		},
	},
	{
		name: "bad-image", action: none, needsPerson: true, confidence: 0.85,
		when: "an image cannot be pulled and there is no recent deploy with a healthy revision to return to",
		match: func(f *facts) (finding, bool) {
			refs := f.containers(waiting(imagePullReasons...))
			if len(refs) == 0 {
				return finding{}, false
			}
			es := f.events(eventsWith("Failed"))
			return finding{
				summary: f.tr("Image %s cannot be pulled (%s) and there is no healthy revision to return to. Needs a person to fix the image or the registry credentials",
					refs[0].c.Image, refs[0].c.Reason),
				rootCause: strings.TrimSpace(refs[0].c.Reason + ": " + refs[0].c.Message),
				evidence:  append(containerIDs(refs), eventIDs(es)...),
			}, true
		},
	},
	{
		name: "broken-release", action: none, needsPerson: true, confidence: 0.7,
		when: "the current revision fails within 30 min of a deploy and no kept revision is known good",
		match: func(f *facts) (finding, bool) {
			refs, pods := f.failing()
			ids, what, recent := f.recentChange()
			if (len(refs) == 0 && len(pods) == 0) || !recent {
				return finding{}, false
			}
			return finding{
				summary:   f.tr("%s; %s, and no kept revision is known good to return to. Needs a person: a restart would run the same release", f.failure(refs, pods, false), what),
				rootCause: f.tr("revision %d fails: %s", f.w.Revision, f.failure(refs, pods, false)),
				evidence:  slices.Concat(refIDs(refs), podIDs(pods), ids),
			}, true
		},
	},
	{
		name: "stuck-terminating", action: deletePo, confidence: 0.8,
		when: "a pod has been terminating for more than 10 min",
		match: func(f *facts) (finding, bool) {
			var stuck *evidence.Pod
			for i := range f.b.Pods {
				p := &f.b.Pods[i]
				if !p.DeletingSince.IsZero() && f.now.Sub(p.DeletingSince) > stuckAfter && (stuck == nil || p.DeletingSince.Before(stuck.DeletingSince)) {
					stuck = p
				}
			}
			if stuck == nil {
				return finding{}, false
			}
			return finding{
				summary:   f.tr("Pod %s has been terminating for %s: delete it", stuck.Name, f.now.Sub(stuck.DeletingSince).Round(time.Minute)),
				rootCause: f.tr("pod %s is stuck terminating (node %s unresponsive, or a finalizer or process that ignores SIGTERM)", stuck.Name, stuck.Node),
				evidence:  []string{podID(stuck.Name)},
				pod:       stuck.Name,
			}, true
		},
	},
	{
		name: "scaled-to-zero", action: scale, confidence: 0.75,
		when: "a Deployment or StatefulSet has no replicas desired while the incident is open: scale back to the last count seen (the replicas series), else 1",
		match: func(f *facts) (finding, bool) {
			if f.w == nil || f.w.Replicas != 0 || !f.scalable() {
				return finding{}, false
			}
			d := finding{
				rootCause: f.tr("%s is scaled to 0 replicas", workloadID(f.b)),
				evidence:  append([]string{workloadID(f.b), metricID(signalReplicas)}, eventIDs(f.events(eventsWith("ScalingReplicaSet")))...),
			}
			prev := f.previousReplicas()
			if prev == 0 {
				prev = 1
				d.adjust, d.adjustWhy = -0.25, "confidence lowered: the count before the scale-down is unknown, 1 restores service"
			}
			if a := f.w.Autoscaler; a != nil {
				// Within the bounds of the autoscaler it re-enables.
				prev = min(max(prev, a.Min), a.Max)
			}
			d.summary = f.tr("%s is scaled to 0 replicas while its alert fires: scale it back to %d", workloadID(f.b), prev)
			d.params = &typesv1.ScaleParams{Replicas: prev}
			return d, true
		},
	},
	{
		name: "wedged-pod", action: deletePo, confidence: 0.7,
		when: "a running pod has failed readiness for more than 10 min while other pods are ready",
		match: func(f *facts) (finding, bool) {
			var wedged *evidence.Pod
			ready := 0
			for i := range f.b.Pods {
				p := &f.b.Pods[i]
				if isReady(p) {
					ready++
				}
				if unready(p) && f.now.Sub(p.Conditions["Ready"].Since) > wedgedAfter && wedged == nil {
					wedged = p
				}
			}
			if wedged == nil || ready == 0 {
				return finding{}, false
			}
			return finding{
				summary:   f.tr("Pod %s has been unready for %s while %d others are ready: delete it so it is replaced", wedged.Name, f.now.Sub(wedged.Conditions["Ready"].Since).Round(time.Minute), ready),
				rootCause: f.tr("pod %s is wedged: running but failing readiness", wedged.Name),
				evidence:  append([]string{podID(wedged.Name)}, eventIDs(f.events(func(e evidence.Event) bool { return e.Object == "Pod/"+wedged.Name }))...),
				pod:       wedged.Name,
			}, true
		},
	},
	{
		name: "saturated-at-max", action: none, needsPerson: true, confidence: 0.7,
		when: "cpu is saturated (≥ 80 % for 5 min) and the workload already runs the most replicas Vigil scales to, or its HorizontalPodAutoscaler's maximum",
		match: func(f *facts) (finding, bool) {
			s, lowest, ok := f.saturation()
			if !ok {
				return finding{}, false
			}
			if a := f.w.Autoscaler; a != nil && f.w.Replicas >= a.Max {
				return finding{
					summary: f.tr("CPU is saturated (at least %.0f %%) at %d replicas, the maximum of HorizontalPodAutoscaler %s: a capacity decision. Needs a person (its bounds are not Vigil's to change)",
						lowest*100, f.w.Replicas, a.Name),
					rootCause: f.tr("sustained cpu saturation at the autoscaler's maximum"),
					evidence:  []string{metricID(s.Labels["signal"]), workloadID(f.b), autoscalerID(f.b)},
				}, true
			}
			if f.w.Replicas < f.lim.MaxReplicas {
				return finding{}, false
			}
			return finding{
				summary:   f.tr("CPU is saturated (at least %.0f %%) at %d replicas, the most Vigil scales to: a capacity decision. Needs a person", lowest*100, f.w.Replicas),
				rootCause: f.tr("sustained cpu saturation at the replica limit"),
				evidence:  []string{metricID(s.Labels["signal"]), workloadID(f.b)},
			}, true
		},
	},
	{
		name: "saturation", action: scale, confidence: 0.7,
		when: "cpu is saturated (≥ 80 % for 5 min) with ready pods and room below the replica limit (and the HorizontalPodAutoscaler's maximum): scale +50 % (at least +1), within both",
		match: func(f *facts) (finding, bool) {
			s, lowest, ok := f.saturation()
			if !ok {
				return finding{}, false
			}
			from := f.w.Replicas
			to := min(max(int32(math.Ceil(float64(from)*1.5)), from+1), f.lim.MaxScale(from))
			d := finding{
				summary:   f.tr("CPU is saturated (at least %.0f %% for 5 min) at %d replicas: scale to %d", lowest*100, from, to),
				rootCause: f.tr("sustained cpu saturation: more load than the replicas serve"),
				evidence:  []string{metricID(s.Labels["signal"]), workloadID(f.b)},
			}
			if a := f.w.Autoscaler; a != nil && to > a.Max {
				// Past its maximum the autoscaler would scale it back.
				to = a.Max
				d.summary = f.tr("CPU is saturated (at least %.0f %% for 5 min) at %d replicas: scale to %d, the maximum of HorizontalPodAutoscaler %s", lowest*100, from, to, a.Name)
				d.evidence = append(d.evidence, autoscalerID(f.b))
			}
			d.params = &typesv1.ScaleParams{Replicas: to}
			return d, true
		},
	},
	{
		name: "restart-unhealthy", action: restart, confidence: 0.6,
		when: "pods crash or fail readiness and nothing changed in the 30 min before the incident",
		match: func(f *facts) (finding, bool) {
			refs, pods := f.failing()
			if len(refs) == 0 && len(pods) == 0 {
				return finding{}, false
			}
			d := finding{
				summary:   f.tr("%s with no recent change: restart %s", f.failure(refs, pods, false), workloadID(f.b)),
				rootCause: f.tr("%s; no deploy or new revision explains it", f.failure(refs, pods, false)),
				evidence:  slices.Concat(refIDs(refs), podIDs(pods), []string{workloadID(f.b)}),
			}
			if len(refs) > 0 {
				d.adjust, d.adjustWhy = -0.15, "confidence lowered: the kubelet already restarts crashing containers; a restart helps only if the crash depends on the pod (node, volume, stale state)"
			}
			return d, true
		},
	},
	{
		// Nothing found is not "healthy, act anyway": it needs a person,
		// so no engine may propose an action against it (engine.Check).
		name: "no-finding", action: none, confidence: 0.3, needsPerson: true,
		when: "no rule matched",
		match: func(f *facts) (finding, bool) {
			state := f.tr("no pods")
			if f.w != nil {
				state = f.tr("%d/%d replicas ready", f.w.ReadyReplicas, f.w.Replicas)
			}
			return finding{
				summary:   f.tr("Nothing in the evidence explains the alert (%s): nothing to repair automatically", state),
				rootCause: f.tr("unknown"),
				evidence:  []string{workloadID(f.b)},
			}, true
		},
	},
}

// unschedulable is a rule for pods pending with FailedScheduling events
// whose message matches re (any message when nil).
func unschedulable(name string, re *regexp.Regexp, confidence float64, when, summary string) rule {
	return rule{
		name: name, action: none, needsPerson: true, confidence: confidence, when: when,
		match: func(f *facts) (finding, bool) {
			pending := f.pending()
			var es []evidence.Event
			if re != nil {
				es = f.events(eventsWith("FailedScheduling", re))
			} else {
				es = f.events(eventsWith("FailedScheduling"))
			}
			if len(pending) == 0 || (len(es) == 0 && re != nil) {
				return finding{}, false
			}
			if len(es) == 0 && !slices.ContainsFunc(pending, func(p *evidence.Pod) bool { return p.Conditions["PodScheduled"].Reason == "Unschedulable" }) {
				return finding{}, false
			}
			cause := firstMessage(es)
			if cause == "" {
				cause = pending[0].Conditions["PodScheduled"].Message
			}
			return finding{summary: f.tr(summary), rootCause: cause, evidence: append(podIDs(pending), eventIDs(es)...)}, true
		},
	}
}

// oom are the OOMKilled containers of the most-killed container name and
// that container's spec (zero when not in the template).
func (f *facts) oom() ([]ref, evidence.ContainerSpec, bool) {
	refs := f.containers(oomKilled)
	if len(refs) == 0 {
		return nil, evidence.ContainerSpec{}, false
	}
	count := map[string]int{}
	for _, r := range refs {
		count[r.c.Name]++
	}
	name := refs[0].c.Name
	for n, c := range count {
		if c > count[name] || (c == count[name] && n < name) {
			name = n
		}
	}
	refs = slices.DeleteFunc(refs, func(r ref) bool { return r.c.Name != name })
	spec, _ := f.spec(name)
	return refs, spec, true
}

// scalable: the target has a replica count of its own to scale. A Job's
// or DaemonSet's count of pods is not one: a finished Job has none and is
// not "scaled to zero".
func (f *facts) scalable() bool {
	k := f.b.Target.GetKind()
	return k == "Deployment" || k == "StatefulSet"
}

// saturation is the cpu series, when sustained saturation holds and the
// workload has ready pods to share load with.
func (f *facts) saturation() (evidence.Series, float64, bool) {
	s, ok := f.series(signalCPU)
	if !ok || f.w == nil || f.w.Replicas < 1 || f.w.ReadyReplicas < 1 {
		return s, 0, false
	}
	lowest, ok := f.sustained(s, saturated)
	return s, lowest, ok
}

// previousReplicas is the last non-zero desired count on the replicas
// series, within the limit; 0 when unknown.
func (f *facts) previousReplicas() int32 {
	s, ok := f.series(signalReplicas)
	if !ok {
		return 0
	}
	pts := slices.Clone(s.Points)
	slices.SortFunc(pts, func(a, b evidence.Point) int { return a.At.Compare(b.At) })
	for i := len(pts) - 1; i >= 0; i-- {
		if pts[i].Value >= 1 && !pts[i].At.After(f.at) {
			return min(int32(pts[i].Value), f.lim.MaxReplicas)
		}
	}
	return 0
}

// failure says in words how the pods fail.
func (f *facts) failure(refs []ref, pods []*evidence.Pod, stalled bool) string {
	var parts []string
	for _, r := range refs {
		reason, exit := r.c.Reason, r.c.LastExitCode
		switch r.c.State {
		case "terminated": // it has just failed: Error, OOMKilled...
			exit = r.c.ExitCode
		case "running":
			reason = f.tr("restarting after %s", r.c.LastReason)
		}
		s := fmt.Sprintf("%s/%s %s", r.pod.Name, r.c.Name, reason)
		if exit != 0 {
			s += f.tr(" (exit %d, %d restarts)", exit, r.c.RestartCount)
		}
		parts = append(parts, s)
	}
	for _, p := range pods {
		parts = append(parts, f.tr("%s failing readiness", p.Name))
	}
	if stalled {
		parts = append(parts, f.tr("the rollout passed its progress deadline"))
	}
	if len(parts) > 3 {
		parts = append(parts[:3], f.tr("and %d more", len(parts)-3))
	}
	return strings.Join(parts, ", ")
}

func exitCode(r ref) int32 {
	if r.c.Reason == "OOMKilled" {
		return r.c.ExitCode
	}
	return r.c.LastExitCode
}

func containerIDs(rs []ref) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.id())
	}
	return out
}

func messages(rs []ref) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.c.Message)
	}
	return out
}

func eventMessages(es []evidence.Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Message)
	}
	return out
}
