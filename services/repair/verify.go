package repair

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/workload"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
	"github.com/vigil-ops/vigil/services/repair/internal/change"
	"github.com/vigil-ops/vigil/services/repair/internal/lifecycle"
)

// verifyEvery is how often a repair being verified is looked at again;
// the worker is free in between.
const verifyEvery = 250 * time.Millisecond

// verify looks once at the repaired workload: healthy → succeeded;
// broken beyond doubt, or not healthy within the window → failed (undone
// when the guardrails say so); otherwise again: it is to be looked at
// again shortly.
func (s *Service) verify(ctx context.Context, rp *lifecycle.Repair) (again bool, err error) {
	r := rp.Proto()
	st := rp.State()
	c, err := s.client(ctx, r)
	if err != nil {
		return false, err
	}
	healthy, broken, what := check(ctx, c, r.GetProposal(), st.Verify)
	now := s.now()
	switch {
	case healthy:
		err := s.repairs.Update(ctx, r.GetId(), func(rp *lifecycle.Repair) error { return rp.Succeed(what, s.now()) })
		if err == nil {
			s.log.InfoContext(ctx, "repair verified", "repair_id", r.GetId(), "verification", what)
		}
		return false, err
	case broken != "" || now.After(st.VerifyUntil):
		reason := broken
		if reason == "" {
			reason = fmt.Sprintf("not healthy within %s: %s", st.VerifyUntil.Sub(st.VerifyStarted), what)
		}
		var u *undone
		if st.UndoOnFailure {
			u = s.undo(ctx, c, r, st, reason)
		}
		s.fail(ctx, r, "verification: "+reason, u)
		return false, nil
	}
	return true, nil
}

// check says whether the target is healthy after the repair, or broken
// beyond waiting (a new pod restarting, a rollout past its deadline), and
// what it saw.
func check(ctx context.Context, c kubernetes.Interface, p *typesv1.RepairProposal, v *action.Verify) (healthy bool, broken, what string) {
	t := p.GetTarget()
	if v == nil {
		v = &action.Verify{}
	}
	if t.GetKind() == "Pod" {
		pod, err := c.CoreV1().Pods(t.GetNamespace()).Get(ctx, t.GetName(), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return true, "", "pod deleted"
		case err != nil:
			return false, "", err.Error()
		case pod.UID == v.PodUID:
			return false, "", "pod still terminating"
		}
		return workload.Ready(pod), "", "pod " + pod.Name + " recreated, ready: " + fmt.Sprint(workload.Ready(pod))
	}
	d, err := c.AppsV1().Deployments(t.GetNamespace()).Get(ctx, t.GetName(), metav1.GetOptions{})
	if err != nil {
		return false, "", err.Error()
	}
	want := workload.Replicas(d)
	for _, cond := range d.Status.Conditions {
		if cond.Type == appsv1.DeploymentProgressing && cond.Status == corev1.ConditionFalse && cond.Reason == "ProgressDeadlineExceeded" {
			return false, "the rollout exceeded its progress deadline", ""
		}
	}
	what = fmt.Sprintf("%d/%d replicas updated, %d available", d.Status.UpdatedReplicas, want, d.Status.AvailableReplicas)
	if d.Status.ObservedGeneration < v.Generation {
		return false, "", "waiting for the controller: " + what
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return false, "", err.Error()
	}
	hash := v.PodTemplateHash
	if hash == "" {
		// Not known when the change was made (a rollout by the deploy
		// service): the ReplicaSet of the Deployment's current revision.
		if hash = change.TemplateHash(ctx, c, d); hash == "" {
			return false, "", "waiting for the new ReplicaSet"
		}
	}
	req, _ := labels.NewRequirement("pod-template-hash", "=", []string{hash})
	sel = sel.Add(*req)
	pods, err := c.CoreV1().Pods(t.GetNamespace()).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return false, "", err.Error()
	}
	for _, pod := range pods.Items {
		for _, cs := range pod.Status.ContainerStatuses {
			if cs.RestartCount > 0 {
				return false, fmt.Sprintf("container %s of new pod %s restarted %d times (%s)", cs.Name, pod.Name, cs.RestartCount, lastReason(cs)), what
			}
		}
	}
	done := d.Status.UpdatedReplicas >= want && d.Status.AvailableReplicas >= want && d.Status.UnavailableReplicas == 0 &&
		d.Status.Replicas == d.Status.UpdatedReplicas
	return done, "", what
}

func lastReason(cs corev1.ContainerStatus) string {
	if t := cs.LastTerminationState.Terminated; t != nil {
		return fmt.Sprintf("%s, exit %d", t.Reason, t.ExitCode)
	}
	if w := cs.State.Waiting; w != nil {
		return w.Reason
	}
	return "no reason given"
}

// undo puts back what the repair changed, after why, and says what it
// did (nil: nothing to undo); the repair's failure records it.
func (s *Service) undo(ctx context.Context, c kubernetes.Interface, r *repairv1.Repair, st lifecycle.State, why string) *undone {
	p := r.GetProposal()
	var back *typesv1.RepairProposal
	switch {
	case st.Undo == nil:
	case p.GetAction() == typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT && st.Undo.Replicas > 0:
		back = &typesv1.RepairProposal{Action: p.GetAction(), Target: p.GetTarget(), Params: &typesv1.RepairProposal_Scale{
			Scale: &typesv1.ScaleParams{Replicas: st.Undo.Replicas},
		}}
	case st.Undo.Revision > 0 && p.GetTarget().GetKind() == "Deployment":
		back = &typesv1.RepairProposal{Action: typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, Target: p.GetTarget(), Params: &typesv1.RepairProposal_Rollback{
			Rollback: &typesv1.RollbackParams{Revision: st.Undo.Revision},
		}}
	}
	if back == nil {
		return nil
	}
	undoCtx, cancel := context.WithTimeout(ctx, callTimeout)
	res, err := s.actions.Execute(undoCtx, c, back, action.Run{
		RepairID: "undo-" + r.GetId(), Limits: action.Limits{MaxReplicas: max(st.Undo.Replicas, 1)}, Restore: true,
	})
	cancel()
	return &undone{why: why, summary: res.Summary, err: err}
}
