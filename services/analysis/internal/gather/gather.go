package gather

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/workload"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
)

// Limits bound what one analysis gathers.
type Limits struct {
	// Each gatherer's time (5 s).
	Timeout time.Duration
	// Pods read (20), events kept (50), containers whose logs are read
	// (5), lines (40) and bytes (8 KiB) per log.
	Pods, Events, Logs, LogLines int
	LogBytes                     int64
}

func (l Limits) withDefaults() Limits {
	if l.Timeout == 0 {
		l.Timeout = 5 * time.Second
	}
	if l.Pods == 0 {
		l.Pods = 20
	}
	if l.Events == 0 {
		l.Events = 50
	}
	if l.Logs == 0 {
		l.Logs = 5
	}
	if l.LogLines == 0 {
		l.LogLines = 40
	}
	if l.LogBytes == 0 {
		l.LogBytes = 8 << 10
	}
	return l
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

// Gather reads ref's workload, pods, events and log tails into b. A
// gatherer that fails or runs out of time is recorded in b.Gaps; the
// others still run.
func Gather(ctx context.Context, kc kubernetes.Interface, ref *typesv1.ResourceRef, lim Limits, b *evidence.Bundle, now time.Time) {
	lim = lim.withDefaults()
	step := func(name string, fn func(ctx context.Context) error) {
		cctx, cancel := context.WithTimeout(ctx, lim.Timeout)
		defer cancel()
		if err := fn(cctx); err != nil {
			b.Gaps = append(b.Gaps, name+": "+err.Error())
		}
	}
	var selector labels.Selector
	step("workload", func(ctx context.Context) error {
		var err error
		selector, err = readWorkload(ctx, kc, ref, b, now)
		return err
	})
	if selector == nil {
		return
	}
	step("pods", func(ctx context.Context) error { return pods(ctx, kc, ref.GetNamespace(), selector, lim, b, now) })
	step("events", func(ctx context.Context) error { return events(ctx, kc, ref, lim, b) })
	step("logs", func(ctx context.Context) error { return logs(ctx, kc, ref.GetNamespace(), lim, b, now) })
}

func add(b *evidence.Bundle, id, source, summary string, at time.Time) {
	b.Items = append(b.Items, evidence.Item{ID: id, Source: source, Summary: summary, At: at})
}

func condition(conds []appsv1.DeploymentCondition, t appsv1.DeploymentConditionType) evidence.Condition {
	for _, c := range conds {
		if c.Type == t {
			return evidence.Condition{Status: string(c.Status), Reason: c.Reason, Message: c.Message, Since: c.LastTransitionTime.Time}
		}
	}
	return evidence.Condition{}
}

func containerSpecs(cs []corev1.Container) []evidence.ContainerSpec {
	out := make([]evidence.ContainerSpec, 0, len(cs))
	for _, c := range cs {
		out = append(out, evidence.ContainerSpec{
			Name: c.Name, Image: c.Image,
			MemoryLimit: c.Resources.Limits.Memory().Value(), MemoryRequest: c.Resources.Requests.Memory().Value(),
			CPULimit: c.Resources.Limits.Cpu().MilliValue(), CPURequest: c.Resources.Requests.Cpu().MilliValue(),
		})
	}
	return out
}

// readWorkload reads the target and returns the selector of its pods.
func readWorkload(ctx context.Context, kc kubernetes.Interface, ref *typesv1.ResourceRef, b *evidence.Bundle, now time.Time) (labels.Selector, error) {
	ns, name := ref.GetNamespace(), ref.GetName()
	id := strings.ToLower(ref.GetKind()) + "/" + name
	switch ref.GetKind() {
	case "Deployment":
		d, err := kc.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get deployment %s/%s: %w", ns, name, err)
		}
		w := &evidence.Workload{
			Ref: ref, Replicas: ptrOr(d.Spec.Replicas, 1), ReadyReplicas: d.Status.ReadyReplicas,
			AvailableReplicas: d.Status.AvailableReplicas, UpdatedReplicas: d.Status.UpdatedReplicas,
			Progressing: condition(d.Status.Conditions, appsv1.DeploymentProgressing),
			Available:   condition(d.Status.Conditions, appsv1.DeploymentAvailable),
			Containers:  containerSpecs(d.Spec.Template.Spec.Containers),
			Paused:      d.Spec.Paused, Annotations: d.Annotations,
		}
		w.Revision = workload.RevisionOf(d)
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			return nil, err
		}
		model, err := workload.Of(ctx, kc, d, now)
		if err != nil {
			return nil, err
		}
		for _, r := range model.Revisions {
			w.Revisions = append(w.Revisions, evidence.Revision{
				Name: r.ReplicaSet.Name, Number: r.Number, Images: r.Images(), CreatedAt: r.ReplicaSet.CreationTimestamp.Time,
				Healthy: r.Good, Why: r.Why,
			})
			health := "not good: " + r.Why
			if r.Good {
				health = "good: " + r.Why
			}
			add(b, fmt.Sprintf("%s/revision/%d", id, r.Number), "kubernetes:replicaset",
				fmt.Sprintf("Revision %d of %s/%s (%s, created %s): %s", r.Number, ns, name, strings.Join(r.Images(), ", "), r.ReplicaSet.CreationTimestamp.UTC().Format(time.RFC3339), health), r.ReplicaSet.CreationTimestamp.Time)
		}
		if g := model.LastGood(); g != nil {
			w.LastGood = g.Number
		}
		if model.PartlyHealthy() {
			w.FailingPods = model.Current.Failing
		}
		// Who owns the replica count: without it, a scale is not
		// proposed blind, but the rest of the evidence stands.
		if a, err := workload.ReadAutoscaler(ctx, kc, d); err != nil {
			b.Gaps = append(b.Gaps, "autoscaler: "+err.Error())
		} else if a != nil {
			w.Autoscaler = &evidence.Autoscaler{Name: a.Name, Min: a.Min, Max: a.Max}
			add(b, id+"/autoscaler", "kubernetes:horizontalpodautoscaler",
				fmt.Sprintf("HorizontalPodAutoscaler %s owns the replica count of %s/%s: between %d and %d", a.Name, ns, name, a.Min, a.Max), now)
		}
		b.Workload = w
		add(b, id, "kubernetes:deployment", fmt.Sprintf("Deployment %s/%s: %d/%d ready, revision %d, progressing %s (%s), available %s (%s)",
			ns, name, w.ReadyReplicas, w.Replicas, w.Revision, w.Progressing.Status, w.Progressing.Reason, w.Available.Status, w.Available.Reason), now)
		return sel, nil
	case "StatefulSet":
		s, err := kc.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get statefulset %s/%s: %w", ns, name, err)
		}
		w := &evidence.Workload{
			Ref: ref, Replicas: ptrOr(s.Spec.Replicas, 1), ReadyReplicas: s.Status.ReadyReplicas,
			AvailableReplicas: s.Status.AvailableReplicas, UpdatedReplicas: s.Status.UpdatedReplicas,
			Containers: containerSpecs(s.Spec.Template.Spec.Containers), Annotations: s.Annotations,
		}
		sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector)
		if err != nil {
			return nil, err
		}
		// Settled: every replica ready at the revision being rolled out.
		settled := s.Status.UpdateRevision == s.Status.CurrentRevision && s.Status.ReadyReplicas == w.Replicas && s.Status.UpdatedReplicas == w.Replicas
		if err := controllerRevisions(ctx, kc, b, w, id, sel, s.UID, s.Status.UpdateRevision, settled); err != nil {
			return nil, err
		}
		b.Workload = w
		add(b, id, "kubernetes:statefulset", fmt.Sprintf("StatefulSet %s/%s: %d/%d ready, revision %d", ns, name, s.Status.ReadyReplicas, w.Replicas, w.Revision), now)
		return sel, nil
	case "DaemonSet":
		d, err := kc.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get daemonset %s/%s: %w", ns, name, err)
		}
		w := &evidence.Workload{
			Ref: ref, Replicas: d.Status.DesiredNumberScheduled, ReadyReplicas: d.Status.NumberReady,
			AvailableReplicas: d.Status.NumberAvailable, UpdatedReplicas: d.Status.UpdatedNumberScheduled,
			Containers: containerSpecs(d.Spec.Template.Spec.Containers), Annotations: d.Annotations,
		}
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			return nil, err
		}
		settled := d.Status.DesiredNumberScheduled > 0 && d.Status.NumberAvailable == d.Status.DesiredNumberScheduled && d.Status.UpdatedNumberScheduled == d.Status.DesiredNumberScheduled
		if err := controllerRevisions(ctx, kc, b, w, id, sel, d.UID, "", settled); err != nil {
			return nil, err
		}
		b.Workload = w
		add(b, id, "kubernetes:daemonset", fmt.Sprintf("DaemonSet %s/%s: %d/%d ready, revision %d", ns, name, d.Status.NumberReady, d.Status.DesiredNumberScheduled, w.Revision), now)
		return sel, nil
	case "Job":
		j, err := kc.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get job %s/%s: %w", ns, name, err)
		}
		b.Workload = &evidence.Workload{Ref: ref, Containers: containerSpecs(j.Spec.Template.Spec.Containers), Annotations: j.Annotations}
		add(b, id, "kubernetes:job", fmt.Sprintf("Job %s/%s: %d active, %d succeeded, %d failed", ns, name, j.Status.Active, j.Status.Succeeded, j.Status.Failed), now)
		return metav1.LabelSelectorAsSelector(j.Spec.Selector)
	}
	return nil, fmt.Errorf("kind %s is not gathered", ref.GetKind())
}

// controllerRevisions records the kept revisions of a StatefulSet or
// DaemonSet (its ControllerRevisions) in w and b, so that a release of one
// is a change the rules see, as a Deployment's new ReplicaSet is. current
// names the revision being rolled out (a StatefulSet's updateRevision);
// empty, the newest. Only the current revision is known healthy, and only
// when settled: unlike a ReplicaSet, an older ControllerRevision does not
// say whether its pods were ever available.
func controllerRevisions(ctx context.Context, kc kubernetes.Interface, b *evidence.Bundle, w *evidence.Workload, id string, sel labels.Selector, owner types.UID, current string, settled bool) error {
	crs, err := kc.AppsV1().ControllerRevisions(w.Ref.GetNamespace()).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return fmt.Errorf("list controller revisions of %s: %w", id, err)
	}
	var newest int64
	for _, cr := range crs.Items {
		if !ownedBy(cr.OwnerReferences, owner) {
			continue
		}
		newest = max(newest, cr.Revision)
		if cr.Name == current {
			w.Revision = cr.Revision
		}
		w.Revisions = append(w.Revisions, evidence.Revision{Number: cr.Revision, CreatedAt: cr.CreationTimestamp.Time})
	}
	if w.Revision == 0 {
		w.Revision = newest
	}
	sort.Slice(w.Revisions, func(i, j int) bool { return w.Revisions[i].Number > w.Revisions[j].Number })
	for i := range w.Revisions {
		r := &w.Revisions[i]
		r.Healthy = settled && r.Number == w.Revision
		if r.Number == w.Revision {
			for _, c := range w.Containers {
				r.Images = append(r.Images, c.Image)
			}
		}
		health := "not known to have been available"
		if r.Healthy {
			health = "available"
		}
		add(b, fmt.Sprintf("%s/revision/%d", id, r.Number), "kubernetes:controllerrevision",
			fmt.Sprintf("Revision %d of %s (created %s): %s", r.Number, id, r.CreatedAt.UTC().Format(time.RFC3339), health), r.CreatedAt)
	}
	return nil
}

func ptrOr(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

func ownedBy(refs []metav1.OwnerReference, uid types.UID) bool {
	for _, r := range refs {
		if r.UID == uid {
			return true
		}
	}
	return false
}

func pods(ctx context.Context, kc kubernetes.Interface, ns string, sel labels.Selector, lim Limits, b *evidence.Bundle, now time.Time) error {
	list, err := kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String(), Limit: int64(lim.Pods)})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	for _, p := range list.Items {
		ep := evidence.Pod{
			Name: p.Name, Phase: string(p.Status.Phase), Node: p.Spec.NodeName, CreatedAt: p.CreationTimestamp.Time,
			Conditions: map[string]evidence.Condition{},
		}
		if p.DeletionTimestamp != nil {
			ep.DeletingSince = p.DeletionTimestamp.Time
		}
		for _, c := range p.Status.Conditions {
			ep.Conditions[string(c.Type)] = evidence.Condition{Status: string(c.Status), Reason: c.Reason, Message: c.Message, Since: c.LastTransitionTime.Time}
		}
		for _, cs := range p.Status.ContainerStatuses {
			c := evidence.Container{Name: cs.Name, Image: cs.Image, Ready: cs.Ready, RestartCount: cs.RestartCount}
			switch {
			case cs.State.Waiting != nil:
				c.State, c.Reason, c.Message = "waiting", cs.State.Waiting.Reason, cs.State.Waiting.Message
			case cs.State.Terminated != nil:
				c.State, c.Reason, c.Message, c.ExitCode = "terminated", cs.State.Terminated.Reason, cs.State.Terminated.Message, cs.State.Terminated.ExitCode
			case cs.State.Running != nil:
				c.State = "running"
			}
			if t := cs.LastTerminationState.Terminated; t != nil {
				c.LastReason, c.LastExitCode, c.LastFinished = t.Reason, t.ExitCode, t.FinishedAt.Time
			}
			ep.Containers = append(ep.Containers, c)
			summary := fmt.Sprintf("Pod %s container %s: %s", p.Name, c.Name, c.State)
			if c.Reason != "" {
				summary += " (" + c.Reason + ")"
			}
			if c.RestartCount > 0 {
				summary += fmt.Sprintf(", %d restarts", c.RestartCount)
			}
			if c.LastReason != "" {
				summary += fmt.Sprintf(", last terminated %s exit %d", c.LastReason, c.LastExitCode)
			}
			add(b, "pod/"+p.Name+"/container/"+c.Name, "kubernetes:pod", summary, now)
		}
		summary := fmt.Sprintf("Pod %s: %s on node %s", p.Name, ep.Phase, orNone(ep.Node))
		if sc, ok := ep.Conditions["PodScheduled"]; ok && sc.Status == "False" {
			summary += fmt.Sprintf(", not scheduled: %s %s", sc.Reason, sc.Message)
		}
		if rc, ok := ep.Conditions["Ready"]; ok && rc.Status != "True" {
			summary += ", not ready since " + rc.Since.UTC().Format(time.RFC3339)
		}
		if !ep.DeletingSince.IsZero() {
			summary += ", terminating since " + ep.DeletingSince.UTC().Format(time.RFC3339)
		}
		add(b, "pod/"+p.Name, "kubernetes:pod", summary, now)
		b.Pods = append(b.Pods, ep)
	}
	return nil
}

func events(ctx context.Context, kc kubernetes.Interface, ref *typesv1.ResourceRef, lim Limits, b *evidence.Bundle) error {
	// The events of the workload, its newest ReplicaSets (FailedCreate:
	// quota) and its pods, asked object by object: a namespace's events
	// can be thousands (a crash loop writes one per restart).
	names := []string{ref.GetName()}
	if b.Workload != nil {
		for i, r := range b.Workload.Revisions {
			if i < 3 && r.Name != "" {
				names = append(names, r.Name)
			}
		}
	}
	for _, p := range b.Pods {
		names = append(names, p.Name)
	}
	var evs []evidence.Event
	for _, name := range names {
		list, err := kc.CoreV1().Events(ref.GetNamespace()).List(ctx, metav1.ListOptions{
			FieldSelector: "involvedObject.name=" + name, Limit: int64(lim.Events),
		})
		if err != nil {
			return fmt.Errorf("list events of %s: %w", name, err)
		}
		for _, e := range list.Items {
			obj := e.InvolvedObject
			last := e.LastTimestamp.Time
			if last.IsZero() {
				last = e.EventTime.Time
			}
			if last.IsZero() {
				last = e.CreationTimestamp.Time
			}
			evs = append(evs, evidence.Event{
				Object: obj.Kind + "/" + obj.Name, Type: e.Type, Reason: e.Reason, Message: e.Message, Count: e.Count, Last: last,
			})
		}
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].Last.After(evs[j].Last) })
	if len(evs) > lim.Events {
		b.Gaps = append(b.Gaps, fmt.Sprintf("events: %d more not kept", len(evs)-lim.Events))
		evs = evs[:lim.Events]
	}
	seen := map[string]bool{}
	for _, e := range evs {
		b.Events = append(b.Events, e)
		// One item per object and reason: the newest says it.
		id := "event/" + e.Object + "/" + e.Reason
		if seen[id] {
			continue
		}
		seen[id] = true
		add(b, id, "kubernetes:event", fmt.Sprintf("%s %s %s: %s (x%d)", e.Type, e.Object, e.Reason, e.Message, max(e.Count, 1)), e.Last)
	}
	return nil
}

// logs reads the tail of the logs of the containers that restarted or are
// not ready (the previous run's, for one that restarted).
func logs(ctx context.Context, kc kubernetes.Interface, ns string, lim Limits, b *evidence.Bundle, now time.Time) error {
	n := 0
	var errs []error
	for _, p := range b.Pods {
		for _, c := range p.Containers {
			if c.Ready && c.RestartCount == 0 {
				continue
			}
			if n >= lim.Logs {
				return errors.Join(errs...)
			}
			n++
			previous := c.RestartCount > 0
			lines := int64(lim.LogLines)
			raw, err := kc.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{
				Container: c.Name, Previous: previous, TailLines: &lines, LimitBytes: &lim.LogBytes,
			}).DoRaw(ctx)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s/%s: %w", p.Name, c.Name, err))
				continue
			}
			l := evidence.Log{Pod: p.Name, Container: c.Name, Previous: previous, Truncated: int64(len(raw)) >= lim.LogBytes}
			sc := bufio.NewScanner(bytes.NewReader(raw))
			for sc.Scan() {
				l.Lines = append(l.Lines, sc.Text())
			}
			b.Logs = append(b.Logs, l)
			last := ""
			if len(l.Lines) > 0 {
				last = l.Lines[len(l.Lines)-1]
			}
			add(b, "logs/"+p.Name+"/"+c.Name, "kubernetes:logs", fmt.Sprintf("Logs of %s/%s (%d lines): %s", p.Name, c.Name, len(l.Lines), last), now)
		}
	}
	return errors.Join(errs...)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
