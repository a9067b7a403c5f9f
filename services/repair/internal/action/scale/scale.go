// Package scale sets a Deployment's replicas within the policy's bounds:
// up to Limits.MaxReplicas, down to no fewer than Limits.MinReplicas, and
// within those of the HorizontalPodAutoscaler that owns the count, if one
// does (past them, it would undo the scale at its next sync).
// Scaling to the replicas it already has is a repair done, which is also
// what makes executing it again harmless.
package scale

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/workload"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
	"github.com/vigil-ops/vigil/services/repair/internal/change"
)

const kind = "Deployment"

// Executor scales Deployments.
type Executor struct{}

// New returns the executor.
func New() *Executor { return &Executor{} }

var _ action.Executor = (*Executor)(nil)

// Action is REPAIR_ACTION_SCALE_DEPLOYMENT.
func (*Executor) Action() typesv1.RepairAction {
	return typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT
}

func target(p *typesv1.RepairProposal, a typesv1.RepairAction) (*typesv1.ResourceRef, int32, error) {
	t, err := action.Target(p, a, kind)
	if err != nil {
		return nil, 0, err
	}
	sp := p.GetScale()
	if sp == nil {
		return nil, 0, action.Refuse(action.ErrInvalid, "%s without scale parameters", a)
	}
	if sp.GetReplicas() < 0 {
		return nil, 0, action.Refuse(action.ErrInvalid, "negative replicas %d", sp.GetReplicas())
	}
	return t, sp.GetReplicas(), nil
}

// Plan says how many pods a scale down removes, and what either way does
// to the healthy replicas.
func (e *Executor) Plan(ctx context.Context, c kubernetes.Interface, p *typesv1.RepairProposal, lim action.Limits) (action.Plan, error) {
	t, want, err := target(p, e.Action())
	if err != nil {
		return action.Plan{}, err
	}
	d, err := change.Deployment(ctx, c, t)
	if err != nil {
		return action.Plan{}, err
	}
	hpa, err := workload.ReadAutoscaler(ctx, c, d)
	if err != nil {
		return action.Plan{}, err
	}
	return plan(d, hpa, want, lim)
}

func plan(d *appsv1.Deployment, hpa *workload.Autoscaler, want int32, lim action.Limits) (action.Plan, error) {
	have := workload.Replicas(d)
	p := action.Plan{
		UID:           d.UID,
		Generation:    d.Generation,
		HealthyBefore: d.Status.AvailableReplicas,
		HealthyDuring: d.Status.AvailableReplicas,
		HealthyAfter:  want,
		Replicas:      want,
	}
	name := d.Namespace + "/" + d.Name
	switch {
	case want == have:
		p.NoOp, p.HealthyAfter = true, d.Status.AvailableReplicas
		p.Change = fmt.Sprintf("nothing: Deployment %s already has %d replicas", name, have)
		return p, nil
	case hpa.Allows(want) != "":
		return action.Plan{}, action.Refuse(action.ErrNotApplicable, "scaling Deployment %s to %d replicas: %s", name, want, hpa.Allows(want))
	case want > have && want > lim.MaxReplicas:
		return action.Plan{}, action.Refuse(action.ErrLimit, "scaling Deployment %s up to %d replicas: the most allowed is %d", name, want, lim.MaxReplicas)
	case want < have && want < lim.MinReplicas:
		return action.Plan{}, action.Refuse(action.ErrLimit, "scaling Deployment %s down to %d replicas: the fewest allowed is %d", name, want, lim.MinReplicas)
	case want < have:
		// The ReplicaSet controller removes pods that are not ready
		// first, so the healthy ones go only past that.
		p.PodsAffected = int(have - want)
		p.HealthyDuring = min(p.HealthyBefore, want)
		p.HealthyAfter = p.HealthyDuring
	}
	p.Change = fmt.Sprintf("scale Deployment %s from %d to %d replicas", name, have, want)
	return p, lim.CheckHealthy(p)
}

// Execute sets spec.replicas with a patch guarded by the Deployment's
// resourceVersion. A patch rather than the scale subresource: the answer
// is the Deployment, with the generation a verifier waits on, and the
// repair identity needs no access to deployments/scale.
func (e *Executor) Execute(ctx context.Context, c kubernetes.Interface, p *typesv1.RepairProposal, run action.Run) (action.Result, error) {
	if err := run.Validate(); err != nil {
		return action.Result{}, err
	}
	t, want, err := target(p, e.Action())
	if err != nil {
		return action.Result{}, err
	}
	var res action.Result
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := change.Deployment(ctx, c, t)
		if err != nil {
			return err
		}
		have := workload.Replicas(d)
		if have == want {
			res = action.Result{
				Summary: fmt.Sprintf("Deployment %s/%s already has %d replicas", d.Namespace, d.Name, want),
				Object:  d,
				Verify:  action.Verify{Generation: d.Generation, Replicas: want},
			}
			return nil
		}
		if err := run.CheckPlanned(d.UID, d.Generation); err != nil {
			return err
		}
		hpa, err := workload.ReadAutoscaler(ctx, c, d)
		if err != nil {
			return err
		}
		if _, err := plan(d, hpa, want, run.Limits); err != nil {
			return err
		}
		patch := change.SpecPatch(d, nil, map[string]any{"replicas": want})
		out, err := change.Patch(ctx, c, d, types.MergePatchType, patch, run.DryRun)
		if err != nil {
			return err
		}
		res = action.Result{
			Changed: true,
			DryRun:  run.DryRun,
			Summary: fmt.Sprintf("scaled Deployment %s/%s from %d to %d replicas", d.Namespace, d.Name, have, want),
			Object:  out,
			Verify:  action.Verify{Generation: out.Generation, Replicas: want},
			Undo:    action.Undo{Revision: workload.RevisionOf(d), Replicas: have},
		}
		return nil
	})
	if err != nil {
		return action.Result{}, err
	}
	// A scale keeps the pod template: the new pods, if any, are the
	// current ReplicaSet's.
	if d, ok := res.Object.(*appsv1.Deployment); ok {
		res.Verify.PodTemplateHash = change.TemplateHash(ctx, c, d)
	}
	if res.DryRun {
		res.Summary = "dry run: " + res.Summary
	}
	return res, nil
}
