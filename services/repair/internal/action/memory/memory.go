// Package memory raises a Deployment container's memory limit: the repair
// for a container killed for running out of it. The new limit is the
// proposal's, or half as much again as the current one, never above the
// policy's Limits.MaxMemoryBytes; the memory request is left as it is
// (below the old limit, so below the new one). The change rolls out new
// pods under the Deployment's strategy, and the repair's id goes in the
// pod template so that running it again does not raise the limit again.
package memory

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/workload"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
	"github.com/vigil-ops/vigil/services/repair/internal/change"
)

const kind = "Deployment"

// mebibyte is what a limit raised by half is rounded up to, so that it
// reads as people write them (384Mi, not 402653184).
const mebibyte = 1 << 20

// Executor raises memory limits.
type Executor struct{}

// New returns the executor.
func New() *Executor { return &Executor{} }

var _ action.Executor = (*Executor)(nil)

// Action is REPAIR_ACTION_INCREASE_MEMORY_LIMIT.
func (*Executor) Action() typesv1.RepairAction {
	return typesv1.RepairAction_REPAIR_ACTION_INCREASE_MEMORY_LIMIT
}

func target(p *typesv1.RepairProposal, a typesv1.RepairAction) (*typesv1.ResourceRef, *typesv1.MemoryLimitParams, error) {
	t, err := action.Target(p, a, kind)
	if err != nil {
		return nil, nil, err
	}
	mp := p.GetMemoryLimit()
	if mp == nil {
		return nil, nil, action.Refuse(action.ErrInvalid, "%s without memory limit parameters", a)
	}
	if mp.GetLimitBytes() < 0 {
		return nil, nil, action.Refuse(action.ErrInvalid, "negative memory limit %d", mp.GetLimitBytes())
	}
	return t, mp, nil
}

// raise is the change to one container.
type raise struct {
	container string
	index     int
	from, to  int64
	capped    bool
}

// Plan finds the container and its new limit, and says which pods the
// rollout of it replaces.
func (e *Executor) Plan(ctx context.Context, c kubernetes.Interface, p *typesv1.RepairProposal, lim action.Limits) (action.Plan, error) {
	t, mp, err := target(p, e.Action())
	if err != nil {
		return action.Plan{}, err
	}
	d, err := change.Deployment(ctx, c, t)
	if err != nil {
		return action.Plan{}, err
	}
	pl, _, err := plan(ctx, c, d, mp, lim)
	return pl, err
}

func plan(ctx context.Context, c kubernetes.Interface, d *appsv1.Deployment, mp *typesv1.MemoryLimitParams, lim action.Limits) (action.Plan, raise, error) {
	name := d.Namespace + "/" + d.Name
	r, err := container(d, mp.GetContainer())
	if err != nil {
		return action.Plan{}, raise{}, err
	}
	limit, ok := d.Spec.Template.Spec.Containers[r.index].Resources.Limits[corev1.ResourceMemory]
	if !ok {
		return action.Plan{}, raise{}, action.Refuse(action.ErrNotApplicable, "container %q of Deployment %s has no memory limit to raise", r.container, name)
	}
	r.from = limit.Value()
	r.to = mp.GetLimitBytes()
	if r.to == 0 {
		r.to = (r.from + r.from/2 + mebibyte - 1) / mebibyte * mebibyte
	}
	if r.to <= r.from {
		return action.Plan{
			UID: d.UID, Generation: d.Generation, NoOp: true,
			HealthyBefore: d.Status.AvailableReplicas, HealthyDuring: d.Status.AvailableReplicas, HealthyAfter: d.Status.AvailableReplicas,
			Container: r.container, MemoryLimitBytes: r.from,
			Change: fmt.Sprintf("nothing: the memory limit of container %q of Deployment %s is %s, at or above %s", r.container, name, quantity(r.from), quantity(r.to)),
		}, r, nil
	}
	if r.to > lim.MaxMemoryBytes {
		if lim.MaxMemoryBytes <= r.from {
			return action.Plan{}, raise{}, action.Refuse(action.ErrLimit, "the memory limit of container %q of Deployment %s is %s; the most allowed is %s", r.container, name, quantity(r.from), quantity(lim.MaxMemoryBytes))
		}
		r.to, r.capped = lim.MaxMemoryBytes, true
	}
	if err := change.CheckRollable(d); err != nil {
		return action.Plan{}, raise{}, err
	}
	rss, err := workload.ReplicaSets(ctx, c, d)
	if err != nil {
		return action.Plan{}, raise{}, err
	}
	p, err := change.Rollout(ctx, c, d, rss, "")
	if err != nil {
		return action.Plan{}, raise{}, err
	}
	capped := ""
	if r.capped {
		capped = " (the policy's maximum)"
	}
	p.Container, p.MemoryLimitBytes = r.container, r.to
	p.Change = fmt.Sprintf("raise the memory limit of container %q of Deployment %s from %s to %s%s: %s",
		r.container, name, quantity(r.from), quantity(r.to), capped, change.Replacing(d, p))
	return p, r, lim.CheckHealthy(p)
}

// container finds the named container; with no name, the only one.
func container(d *appsv1.Deployment, name string) (raise, error) {
	cs := d.Spec.Template.Spec.Containers
	var names []string
	for i, c := range cs {
		if c.Name == name || name == "" && len(cs) == 1 {
			return raise{container: c.Name, index: i}, nil
		}
		names = append(names, c.Name)
	}
	if name == "" {
		return raise{}, action.Refuse(action.ErrInvalid, "no container named, and Deployment %s/%s has several (%s)", d.Namespace, d.Name, strings.Join(names, ", "))
	}
	return raise{}, action.Refuse(action.ErrNotApplicable, "Deployment %s/%s has no container %q (it has %s)", d.Namespace, d.Name, name, strings.Join(names, ", "))
}

func quantity(b int64) string { return resource.NewQuantity(b, resource.BinarySI).String() }

// Execute sets the new limit with a strategic merge patch of that one
// container (merged by name), guarded by the Deployment's resourceVersion.
func (e *Executor) Execute(ctx context.Context, c kubernetes.Interface, p *typesv1.RepairProposal, run action.Run) (action.Result, error) {
	if err := run.Validate(); err != nil {
		return action.Result{}, err
	}
	t, mp, err := target(p, e.Action())
	if err != nil {
		return action.Result{}, err
	}
	var res action.Result
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := change.Deployment(ctx, c, t)
		if err != nil {
			return err
		}
		done := action.Result{
			Object: d,
			Verify: action.Verify{
				Generation:      d.Generation,
				PodTemplateHash: change.TemplateHash(ctx, c, d),
				Replicas:        workload.Replicas(d),
			},
		}
		if d.Spec.Template.Annotations[action.RepairIDAnnotation] == run.RepairID {
			res = done
			res.Summary = fmt.Sprintf("the memory limit of Deployment %s/%s was already raised by repair %s", d.Namespace, d.Name, run.RepairID)
			return nil
		}
		if err := run.CheckPlanned(d.UID, d.Generation); err != nil {
			return err
		}
		pl, r, err := plan(ctx, c, d, mp, run.Limits)
		if err != nil {
			return err
		}
		if pl.NoOp {
			res = done
			res.Summary = pl.Change
			return nil
		}
		before := d.Spec.Template.Spec.Containers[r.index].Resources.DeepCopy()
		patch := change.SpecPatch(d, nil, map[string]any{
			"template": map[string]any{
				"metadata": map[string]any{"annotations": map[string]string{action.RepairIDAnnotation: run.RepairID}},
				"spec": map[string]any{"containers": []map[string]any{{
					"name":      r.container,
					"resources": map[string]any{"limits": map[string]string{"memory": quantity(r.to)}},
				}}},
			},
		})
		out, err := change.Patch(ctx, c, d, types.StrategicMergePatchType, patch, run.DryRun)
		if err != nil {
			return err
		}
		res = action.Result{
			Changed: true,
			DryRun:  run.DryRun,
			Summary: fmt.Sprintf("raised the memory limit of container %q of Deployment %s/%s from %s to %s", r.container, d.Namespace, d.Name, quantity(r.from), quantity(r.to)),
			Object:  out,
			Verify:  action.Verify{Generation: out.Generation, Replicas: workload.Replicas(out)},
			Undo: action.Undo{
				Revision:            workload.RevisionOf(d),
				Replicas:            workload.Replicas(d),
				TemplateAnnotations: map[string]string{action.RepairIDAnnotation: d.Spec.Template.Annotations[action.RepairIDAnnotation]},
				Container:           r.container,
				Resources:           before,
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
