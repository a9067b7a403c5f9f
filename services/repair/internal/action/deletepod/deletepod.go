// Package deletepod deletes a pod so that its controller replaces it: the
// repair for one stuck or poisoned replica. Only pods with a controller are
// deleted (a bare pod would be lost), only the very pod the repair was
// planned on (its UID, so a StatefulSet's new pod of the same name is left
// alone), and a pod already gone is a repair done.
package deletepod

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/workload"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
)

const kind = "Pod"

// Executor deletes pods.
type Executor struct{}

// New returns the executor.
func New() *Executor { return &Executor{} }

var _ action.Executor = (*Executor)(nil)

// Action is REPAIR_ACTION_DELETE_POD.
func (*Executor) Action() typesv1.RepairAction { return typesv1.RepairAction_REPAIR_ACTION_DELETE_POD }

// Plan says which controller replaces the pod and what losing it meanwhile
// does to the healthy pods of that controller.
func (e *Executor) Plan(ctx context.Context, c kubernetes.Interface, p *typesv1.RepairProposal, lim action.Limits) (action.Plan, error) {
	t, err := action.Target(p, e.Action(), kind)
	if err != nil {
		return action.Plan{}, err
	}
	pod, err := c.CoreV1().Pods(t.GetNamespace()).Get(ctx, t.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return action.Plan{}, action.Refuse(action.ErrNotFound, "%s", action.Name(t))
	}
	if err != nil {
		return action.Plan{}, fmt.Errorf("get %s: %w", action.Name(t), err)
	}
	return plan(ctx, c, pod, lim)
}

func plan(ctx context.Context, c kubernetes.Interface, pod *corev1.Pod, lim action.Limits) (action.Plan, error) {
	ctrl := metav1.GetControllerOf(pod)
	if ctrl == nil {
		return action.Plan{}, action.Refuse(action.ErrNotApplicable, "pod %s/%s has no controller: deleting it would lose it", pod.Namespace, pod.Name)
	}
	p := action.Plan{UID: pod.UID}
	if pod.DeletionTimestamp != nil {
		p.NoOp = true
		p.Change = fmt.Sprintf("nothing: pod %s/%s is already being deleted", pod.Namespace, pod.Name)
		return p, nil
	}
	// The healthy pods of the same controller: those the workload keeps
	// serving with while the replacement starts.
	list, err := c.CoreV1().Pods(pod.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return action.Plan{}, fmt.Errorf("list pods of %s %s/%s: %w", ctrl.Kind, pod.Namespace, ctrl.Name, err)
	}
	for i := range list.Items {
		if o := metav1.GetControllerOf(&list.Items[i]); o != nil && o.UID == ctrl.UID && workload.Ready(&list.Items[i]) {
			p.HealthyBefore++
		}
	}
	p.HealthyDuring = p.HealthyBefore
	if workload.Ready(pod) {
		p.HealthyDuring--
	}
	p.HealthyAfter = p.HealthyDuring + 1
	if p.HealthyDuring == 0 && p.HealthyBefore > 0 {
		p.Downtime = readinessDelay(pod)
	}
	p.PodsAffected, p.Pods = 1, []string{pod.Name}
	p.Change = fmt.Sprintf("delete pod %s/%s; its %s %s replaces it", pod.Namespace, pod.Name, ctrl.Kind, ctrl.Name)
	return p, lim.CheckHealthy(p)
}

// readinessDelay is how long a replacement of pod waits before its first
// readiness probe.
func readinessDelay(pod *corev1.Pod) time.Duration {
	var s int32
	for _, ctr := range pod.Spec.Containers {
		if ctr.ReadinessProbe != nil {
			s = max(s, ctr.ReadinessProbe.InitialDelaySeconds)
		}
	}
	return time.Duration(s) * time.Second
}

// Execute deletes the pod with a grace period, on the condition that it is
// still the pod that was planned on (or read).
func (e *Executor) Execute(ctx context.Context, c kubernetes.Interface, p *typesv1.RepairProposal, run action.Run) (action.Result, error) {
	if err := run.Validate(); err != nil {
		return action.Result{}, err
	}
	t, err := action.Target(p, e.Action(), kind)
	if err != nil {
		return action.Result{}, err
	}
	gone := action.Result{Summary: fmt.Sprintf("pod %s/%s was already gone", t.GetNamespace(), t.GetName())}
	if run.Planned != nil {
		gone.Verify.PodUID = run.Planned.UID
	}
	pod, err := c.CoreV1().Pods(t.GetNamespace()).Get(ctx, t.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return gone, nil
	}
	if err != nil {
		return action.Result{}, fmt.Errorf("get %s: %w", action.Name(t), err)
	}
	if run.Planned != nil && run.Planned.UID != "" && run.Planned.UID != pod.UID {
		// The pod planned on is gone; the one by that name now is
		// another, which this repair was not about.
		gone.Summary = fmt.Sprintf("pod %s/%s (uid %s) was already gone; the pod of that name now (uid %s) is left alone", pod.Namespace, pod.Name, run.Planned.UID, pod.UID)
		gone.Object = pod
		return gone, nil
	}
	gone.Object, gone.Verify.PodUID = pod, pod.UID
	if pod.DeletionTimestamp != nil {
		gone.Summary = fmt.Sprintf("pod %s/%s was already being deleted", pod.Namespace, pod.Name)
		return gone, nil
	}
	pl, err := plan(ctx, c, pod, run.Limits)
	if err != nil {
		return action.Result{}, err
	}
	grace := run.GracePeriod
	if grace == 0 {
		grace = action.DefaultGracePeriod
	}
	secs := int64(grace / time.Second)
	opts := metav1.DeleteOptions{
		GracePeriodSeconds: &secs,
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	}
	if run.DryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	// Through the REST client, not Pods().Delete: the typed client drops
	// the server's answer, which a dry run is asked for.
	out, err := c.CoreV1().RESTClient().Delete().
		Namespace(pod.Namespace).Resource("pods").Name(pod.Name).
		Body(&opts).Do(ctx).Get()
	switch {
	case apierrors.IsNotFound(err):
		return gone, nil
	case apierrors.IsConflict(err):
		// The UID precondition failed: the pod was replaced between the
		// read and the delete.
		return gone, nil
	case err != nil:
		return action.Result{}, fmt.Errorf("delete pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	res := action.Result{
		Changed: true,
		DryRun:  run.DryRun,
		Summary: fmt.Sprintf("deleted pod %s/%s (grace period %s)", pod.Namespace, pod.Name, grace),
		Object:  out,
		Verify:  action.Verify{PodUID: pod.UID, Replicas: pl.HealthyAfter},
	}
	if run.DryRun {
		res.Summary = "dry run: " + res.Summary
	}
	return res, nil
}
