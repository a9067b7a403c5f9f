// Package workload is a Kubernetes Deployment as Vigil reads it: the
// ReplicaSets it controls (one per revision), their pods, which revisions
// were good, the last good one, how healthy the current one is, and who
// owns its replica count. Analysis proposes, repair executes and deploy
// rolls back through this one reading, so "the last good revision" means
// the same revision to all three.
//
// A revision is good when all of its replicas were ready for Settle, not
// because its number is lower. The cluster keeps that only while the
// revision has pods: its ReplicaSet's pods and their Ready conditions'
// transition times. A ReplicaSet scaled to zero says nothing of its past,
// so a revision seen good is recorded on its ReplicaSet
// (SettledAnnotation, by Record) before it is replaced; a revision with
// no pods and no record is not known good, and is never returned to.
package workload

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// RevisionAnnotation is where the Deployment controller numbers a
// Deployment's ReplicaSets, and the Deployment's current one.
const RevisionAnnotation = "deployment.kubernetes.io/revision"

// Deployment is a Deployment with its revisions, as read at one moment.
type Deployment struct {
	Object *appsv1.Deployment
	// Revisions are the ReplicaSets it controls, newest (highest
	// number) first.
	Revisions []Revision
	// Current is the revision running its pod template; nil until the
	// Deployment controller has made its ReplicaSet.
	Current *Revision
}

// Read reads Deployment namespace/name and its revisions; the error
// wraps the API's NotFound when there is no such Deployment.
func Read(ctx context.Context, c kubernetes.Interface, namespace, name string, now time.Time) (*Deployment, error) {
	d, err := c.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get deployment %s/%s: %w", namespace, name, err)
	}
	return Of(ctx, c, d, now)
}

// Of reads the revisions of d, a Deployment already read.
func Of(ctx context.Context, c kubernetes.Interface, d *appsv1.Deployment, now time.Time) (*Deployment, error) {
	rss, err := ReplicaSets(ctx, c, d)
	if err != nil {
		return nil, err
	}
	pods, err := Pods(ctx, c, d, rss)
	if err != nil {
		return nil, err
	}
	return assemble(d, rss, pods, now), nil
}

// assemble is the model of d from its ReplicaSets and their pods.
func assemble(d *appsv1.Deployment, rss []appsv1.ReplicaSet, pods []corev1.Pod, now time.Time) *Deployment {
	w := &Deployment{Object: d}
	for i := range rss {
		rs := &rss[i]
		var own []corev1.Pod
		for _, p := range pods {
			if metav1.IsControlledBy(&p, rs) {
				own = append(own, p)
			}
		}
		w.Revisions = append(w.Revisions, assess(rs, own, now))
	}
	slices.SortFunc(w.Revisions, func(a, b Revision) int { return cmp.Compare(b.Number, a.Number) })
	for i := range w.Revisions {
		if SameTemplate(&w.Revisions[i].ReplicaSet.Spec.Template, &d.Spec.Template) {
			w.Current = &w.Revisions[i]
			break
		}
	}
	return w
}

// Name is namespace/name.
func (w *Deployment) Name() string { return w.Object.Namespace + "/" + w.Object.Name }

// Revision returns the revision numbered n, nil when none is kept.
func (w *Deployment) Revision(n int64) *Revision {
	for i := range w.Revisions {
		if w.Revisions[i].Number == n {
			return &w.Revisions[i]
		}
	}
	return nil
}

// LastGood is the revision a rollback returns to: the newest good
// revision other than the current one, skipping any bad ones in
// between; nil when none is known good.
func (w *Deployment) LastGood() *Revision {
	for i := range w.Revisions {
		r := &w.Revisions[i]
		if r.Good && r != w.Current {
			return r
		}
	}
	return nil
}

// PartlyHealthy says whether the current revision has replicas that have
// been ready for Settle beside others that fail: the release works, a
// pod of it does not, and returning to another release is not the fix.
func (w *Deployment) PartlyHealthy() bool {
	c := w.Current
	return c != nil && c.Settled > 0 && len(c.Failing) > 0
}

// Replicas is d's spec.replicas, 1 when unset (the API's default).
func Replicas(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// RevisionOf is the revision annotation of a Deployment or ReplicaSet, 0
// when it has none.
func RevisionOf(o metav1.Object) int64 {
	v, err := strconv.ParseInt(o.GetAnnotations()[RevisionAnnotation], 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// ReplicaSets returns the ReplicaSets d controls (by owner UID, not by
// labels alone: another workload's may match the selector), lowest
// revision first.
func ReplicaSets(ctx context.Context, c kubernetes.Interface, d *appsv1.Deployment) ([]appsv1.ReplicaSet, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("deployment %s/%s: selector: %w", d.Namespace, d.Name, err)
	}
	list, err := c.AppsV1().ReplicaSets(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("list replica sets of deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	var out []appsv1.ReplicaSet
	for _, rs := range list.Items {
		if metav1.IsControlledBy(&rs, d) {
			out = append(out, rs)
		}
	}
	slices.SortFunc(out, func(a, b appsv1.ReplicaSet) int { return cmp.Compare(RevisionOf(&a), RevisionOf(&b)) })
	return out, nil
}

// Current is the ReplicaSet running d's pod template, nil when the
// Deployment controller has not made it yet.
func Current(d *appsv1.Deployment, rss []appsv1.ReplicaSet) *appsv1.ReplicaSet {
	for i := range rss {
		if SameTemplate(&rss[i].Spec.Template, &d.Spec.Template) {
			return &rss[i]
		}
	}
	return nil
}

// SameTemplate reports whether two pod templates are the same apart from
// the pod-template-hash label, which the Deployment controller adds to its
// ReplicaSets' copies.
func SameTemplate(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return apiequality.Semantic.DeepEqual(a, b)
}

// Pods returns the pods the ReplicaSets rss of d control, by name.
func Pods(ctx context.Context, c kubernetes.Interface, d *appsv1.Deployment, rss []appsv1.ReplicaSet) ([]corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("deployment %s/%s: selector: %w", d.Namespace, d.Name, err)
	}
	list, err := c.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("list pods of deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if slices.ContainsFunc(rss, func(rs appsv1.ReplicaSet) bool { return metav1.IsControlledBy(&p, &rs) }) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b corev1.Pod) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// Ready reports whether a pod is serving: Ready and not being deleted.
func Ready(p *corev1.Pod) bool {
	_, ok := readySince(p)
	return ok
}

// readySince is when p last became Ready, if it is serving.
func readySince(p *corev1.Pod) (time.Time, bool) {
	if p.DeletionTimestamp != nil {
		return time.Time{}, false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.LastTransitionTime.Time, c.Status == corev1.ConditionTrue
		}
	}
	return time.Time{}, false
}
