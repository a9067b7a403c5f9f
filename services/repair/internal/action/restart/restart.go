// Package restart restarts a Deployment's pods the way `kubectl rollout
// restart` does: a new value of a pod template annotation makes the
// Deployment controller roll out fresh pods under the Deployment's own
// strategy. The repair's id goes in the template too, so a redelivered
// repair finds its restart done instead of restarting again.
package restart

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/workload"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
	"github.com/vigil-ops/vigil/services/repair/internal/change"
)

// RestartedAtAnnotation is the pod template annotation kubectl sets to
// restart a workload; Vigil sets the same one, so `kubectl rollout
// history` and people read Vigil's restarts as restarts.
const RestartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

const kind = "Deployment"

// Executor restarts Deployments.
type Executor struct {
	now func() time.Time
}

// New returns the executor.
func New() *Executor { return &Executor{now: time.Now} }

var _ action.Executor = (*Executor)(nil)

// Action is REPAIR_ACTION_RESTART_DEPLOYMENT.
func (*Executor) Action() typesv1.RepairAction {
	return typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT
}

// Plan says which pods a restart replaces and how many healthy replicas
// the Deployment's strategy keeps meanwhile.
func (e *Executor) Plan(ctx context.Context, c kubernetes.Interface, p *typesv1.RepairProposal, lim action.Limits) (action.Plan, error) {
	t, err := action.Target(p, e.Action(), kind)
	if err != nil {
		return action.Plan{}, err
	}
	d, err := change.Deployment(ctx, c, t)
	if err != nil {
		return action.Plan{}, err
	}
	return plan(ctx, c, d, lim)
}

func plan(ctx context.Context, c kubernetes.Interface, d *appsv1.Deployment, lim action.Limits) (action.Plan, error) {
	if err := change.CheckRollable(d); err != nil {
		return action.Plan{}, err
	}
	rss, err := workload.ReplicaSets(ctx, c, d)
	if err != nil {
		return action.Plan{}, err
	}
	p, err := change.Rollout(ctx, c, d, rss, "")
	if err != nil {
		return action.Plan{}, err
	}
	p.Change = fmt.Sprintf("restart Deployment %s/%s: %s", d.Namespace, d.Name, change.Replacing(d, p))
	return p, lim.CheckHealthy(p)
}

// Execute sets the restart annotations on the pod template, unless this
// repair already did.
func (e *Executor) Execute(ctx context.Context, c kubernetes.Interface, p *typesv1.RepairProposal, run action.Run) (action.Result, error) {
	if err := run.Validate(); err != nil {
		return action.Result{}, err
	}
	t, err := action.Target(p, e.Action(), kind)
	if err != nil {
		return action.Result{}, err
	}
	var res action.Result
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := change.Deployment(ctx, c, t)
		if err != nil {
			return err
		}
		if d.Spec.Template.Annotations[action.RepairIDAnnotation] == run.RepairID {
			res = action.Result{
				Summary: fmt.Sprintf("Deployment %s/%s was already restarted by repair %s", d.Namespace, d.Name, run.RepairID),
				Object:  d,
				Verify: action.Verify{
					Generation:      d.Generation,
					PodTemplateHash: change.TemplateHash(ctx, c, d),
					Replicas:        workload.Replicas(d),
				},
			}
			return nil
		}
		if err := run.CheckPlanned(d.UID, d.Generation); err != nil {
			return err
		}
		if _, err := plan(ctx, c, d, run.Limits); err != nil {
			return err
		}
		set := map[string]string{
			RestartedAtAnnotation:     e.now().UTC().Format(time.RFC3339),
			action.RepairIDAnnotation: run.RepairID,
		}
		before := make(map[string]string, len(set))
		for k := range set {
			before[k] = d.Spec.Template.Annotations[k]
		}
		patch := change.SpecPatch(d, nil, map[string]any{
			"template": map[string]any{"metadata": map[string]any{"annotations": set}},
		})
		out, err := change.Patch(ctx, c, d, types.MergePatchType, patch, run.DryRun)
		if err != nil {
			return err
		}
		res = action.Result{
			Changed: true,
			DryRun:  run.DryRun,
			Summary: fmt.Sprintf("restarted Deployment %s/%s", d.Namespace, d.Name),
			Object:  out,
			Verify:  action.Verify{Generation: out.Generation, Replicas: workload.Replicas(out)},
			Undo: action.Undo{
				Revision:            workload.RevisionOf(d),
				Replicas:            workload.Replicas(d),
				TemplateAnnotations: before,
			},
		}
		return nil
	})
	if err != nil {
		return action.Result{}, err
	}
	if res.Changed && !res.DryRun {
		if d, ok := res.Object.(*appsv1.Deployment); ok {
			res.Verify.PodTemplateHash = change.WaitNewReplicaSet(ctx, c, d)
		}
	}
	if res.DryRun {
		res.Summary = "dry run: " + res.Summary
	}
	return res, nil
}
