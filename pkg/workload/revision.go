package workload

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

const (
	// Settle is how long every replica of a revision must have been
	// ready for it to be good: past a readiness probe's failure
	// threshold (3 × 10 s by default) and the first minute in which a
	// release that starts and then crashes usually crashes.
	Settle = 2 * time.Minute
	// SettledAnnotation on a ReplicaSet records when Vigil saw all of
	// its replicas ready for Settle (RFC 3339), so that the revision is
	// still known good once scaled to zero.
	SettledAnnotation = "vigil.dev/settled-at"
)

// Revision is one revision of a Deployment: a ReplicaSet and its pods.
type Revision struct {
	Number     int64
	ReplicaSet *appsv1.ReplicaSet
	Pods       []corev1.Pod
	// Desired is the ReplicaSet's spec.replicas now.
	Desired int32
	// Ready pods serve now; Settled of them have been ready for
	// Settle.
	Ready, Settled int32
	// Failing are the pods that are not ready (being deleted aside).
	Failing []string
	// Restarts is the sum of its containers' restart counts.
	Restarts int32
	// Good: all of its replicas were ready for Settle, now (Desired of
	// them Settled) or when recorded (SettledAnnotation). Why says which,
	// or why not, for people.
	Good bool
	Why  string
}

// Images are the revision's containers' images.
func (r *Revision) Images() []string {
	var out []string
	for _, c := range r.ReplicaSet.Spec.Template.Spec.Containers {
		out = append(out, c.Image)
	}
	return out
}

// Hash is the revision's pod-template-hash.
func (r *Revision) Hash() string {
	return r.ReplicaSet.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
}

// assess judges the revision of rs from its pods at now.
func assess(rs *appsv1.ReplicaSet, pods []corev1.Pod, now time.Time) Revision {
	r := Revision{Number: RevisionOf(rs), ReplicaSet: rs, Pods: pods, Desired: 1}
	if rs.Spec.Replicas != nil {
		r.Desired = *rs.Spec.Replicas
	}
	for i := range pods {
		p := &pods[i]
		for _, cs := range p.Status.ContainerStatuses {
			r.Restarts += cs.RestartCount
		}
		if p.DeletionTimestamp != nil {
			continue
		}
		since, ready := readySince(p)
		switch {
		case !ready:
			r.Failing = append(r.Failing, p.Name)
		case !now.Before(since.Add(Settle)):
			r.Ready++
			r.Settled++
		default:
			r.Ready++
		}
	}
	at, recorded := settledAt(rs)
	switch {
	case r.Desired > 0 && r.Settled >= r.Desired:
		r.Good, r.Why = true, fmt.Sprintf("all %d replicas ready for %s", r.Desired, Settle)
	case recorded:
		r.Good, r.Why = true, "all its replicas were ready for "+Settle.String()+" (seen "+at.UTC().Format(time.RFC3339)+")"
	case r.Desired == 0 && len(pods) == 0:
		r.Why = "no pods, and not seen settled while it had them"
	default:
		r.Why = fmt.Sprintf("%d of %d replicas ready for %s", r.Settled, r.Desired, Settle)
	}
	return r
}

func settledAt(rs *appsv1.ReplicaSet) (time.Time, bool) {
	v, ok := rs.Annotations[SettledAnnotation]
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, v)
	return t, err == nil
}

// Record writes SettledAnnotation on the ReplicaSets of w found good from
// their pods that lack it, so that they are still known good once their
// Deployment has replaced them. Only an identity that may patch
// ReplicaSets records (the deploy service, before it rolls out a new
// revision of an app).
func Record(ctx context.Context, c kubernetes.Interface, w *Deployment, now time.Time) error {
	for _, r := range w.Revisions {
		if _, done := settledAt(r.ReplicaSet); done || !r.Good {
			continue
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
			SettledAnnotation: now.UTC().Format(time.RFC3339),
		}}})
		if err != nil {
			return err
		}
		if _, err := c.AppsV1().ReplicaSets(r.ReplicaSet.Namespace).Patch(ctx, r.ReplicaSet.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("record replica set %s/%s settled: %w", r.ReplicaSet.Namespace, r.ReplicaSet.Name, err)
		}
	}
	return nil
}
