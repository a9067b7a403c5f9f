// Package rollback returns a Deployment to an earlier revision, as
// `kubectl rollout undo` does: the pod template of the ReplicaSet of that
// revision goes back into the Deployment, whose controller then scales
// that ReplicaSet up again (and numbers it as the newest revision).
//
// The revision is the proposal's, or the one before the current. The
// repair's id is recorded on the Deployment (not its template, which must
// equal the old one for the old ReplicaSet to be reused), so that running
// the repair again does not roll "back" once more, from the restored
// revision to the one it replaced.
package rollback

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
	"github.com/vigil-ops/vigil/services/repair/internal/workload"
)

const kind = "Deployment"

// Executor rolls Deployments back.
type Executor struct{}

// New returns the executor.
func New() *Executor { return &Executor{} }

var _ action.Executor = (*Executor)(nil)

// Action is REPAIR_ACTION_ROLLBACK_DEPLOYMENT.
func (*Executor) Action() typesv1.RepairAction {
	return typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT
}

func target(p *typesv1.RepairProposal, a typesv1.RepairAction) (*typesv1.ResourceRef, int64, error) {
	t, err := action.Target(p, a, kind)
	if err != nil {
		return nil, 0, err
	}
	rev := p.GetRollback().GetRevision()
	if rev < 0 {
		return nil, 0, action.Refuse(action.ErrInvalid, "negative revision %d", rev)
	}
	return t, rev, nil
}

// Plan finds the revision to return to and says which pods going back to
// it replaces.
func (e *Executor) Plan(ctx context.Context, c kubernetes.Interface, p *typesv1.RepairProposal, lim action.Limits) (action.Plan, error) {
	t, rev, err := target(p, e.Action())
	if err != nil {
		return action.Plan{}, err
	}
	d, err := workload.Deployment(ctx, c, t)
	if err != nil {
		return action.Plan{}, err
	}
	pl, _, err := plan(ctx, c, d, rev, lim)
	return pl, err
}

// plan returns the plan and the ReplicaSet of the revision to return to.
func plan(ctx context.Context, c kubernetes.Interface, d *appsv1.Deployment, rev int64, lim action.Limits) (action.Plan, *appsv1.ReplicaSet, error) {
	name := d.Namespace + "/" + d.Name
	if err := workload.CheckRollable(d); err != nil {
		return action.Plan{}, nil, err
	}
	rss, err := workload.ReplicaSets(ctx, c, d)
	if err != nil {
		return action.Plan{}, nil, err
	}
	cur := workload.Current(d, rss)
	if cur == nil {
		// Not a refusal: the controller makes it in a moment.
		return action.Plan{}, nil, fmt.Errorf("deployment %s: the Deployment controller has not made the ReplicaSet of its template yet", name)
	}
	curRev := workload.Revision(cur)
	var to *appsv1.ReplicaSet
	for i := range rss {
		r := workload.Revision(&rss[i])
		if rev == 0 && r < curRev || rev != 0 && r == rev {
			to = &rss[i] // ascending: the last below the current is the previous
		}
	}
	switch {
	case to == nil && rev == 0:
		return action.Plan{}, nil, action.Refuse(action.ErrNotApplicable, "Deployment %s has no revision before its current one (%d)", name, curRev)
	case to == nil:
		return action.Plan{}, nil, action.Refuse(action.ErrNotApplicable, "Deployment %s has no revision %d (it has %s)", name, rev, revisions(rss))
	case workload.SameTemplate(&to.Spec.Template, &d.Spec.Template):
		return action.Plan{}, nil, action.Refuse(action.ErrNotApplicable, "revision %d is Deployment %s's current template", workload.Revision(to), name)
	}
	p, err := workload.Rollout(ctx, c, d, rss, to.UID)
	if err != nil {
		return action.Plan{}, nil, err
	}
	p.Change = fmt.Sprintf("roll Deployment %s back from revision %d (%s) to revision %d (%s): %s", name,
		curRev, images(&d.Spec.Template), workload.Revision(to), images(&to.Spec.Template), workload.Replacing(d, p))
	return p, to, lim.CheckHealthy(p)
}

func revisions(rss []appsv1.ReplicaSet) string {
	var rs []string
	for i := range rss {
		rs = append(rs, strconv.FormatInt(workload.Revision(&rss[i]), 10))
	}
	return strings.Join(rs, ", ")
}

func images(t *corev1.PodTemplateSpec) string {
	var out []string
	for _, c := range t.Spec.Containers {
		out = append(out, c.Image)
	}
	return strings.Join(out, ", ")
}

// Execute puts the revision's pod template back with a JSON patch that
// replaces the whole template (a merge patch would keep what the current
// template has and the old one lacks) and applies only to the Deployment
// as it was read.
func (e *Executor) Execute(ctx context.Context, c kubernetes.Interface, p *typesv1.RepairProposal, run action.Run) (action.Result, error) {
	if err := run.Validate(); err != nil {
		return action.Result{}, err
	}
	t, rev, err := target(p, e.Action())
	if err != nil {
		return action.Result{}, err
	}
	var res action.Result
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := workload.Deployment(ctx, c, t)
		if err != nil {
			return err
		}
		if d.Annotations[action.RepairIDAnnotation] == run.RepairID {
			res = action.Result{
				Summary: fmt.Sprintf("Deployment %s/%s was already rolled back by repair %s", d.Namespace, d.Name, run.RepairID),
				Object:  d,
				Verify: action.Verify{
					Generation:      d.Generation,
					PodTemplateHash: workload.TemplateHash(ctx, c, d),
					Replicas:        workload.Replicas(d),
				},
			}
			return nil
		}
		if err := run.CheckPlanned(d.UID, d.Generation); err != nil {
			return err
		}
		_, to, err := plan(ctx, c, d, rev, run.Limits)
		if err != nil {
			return err
		}
		template := to.Spec.Template.DeepCopy()
		delete(template.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
		annotations := maps.Clone(d.Annotations)
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[action.RepairIDAnnotation] = run.RepairID
		patch, err := json.Marshal([]map[string]any{
			{"op": "replace", "path": "/metadata/resourceVersion", "value": d.ResourceVersion},
			{"op": "add", "path": "/metadata/annotations", "value": annotations},
			{"op": "replace", "path": "/spec/template", "value": template},
		})
		if err != nil {
			return err
		}
		out, err := workload.Patch(ctx, c, d, types.JSONPatchType, patch, run.DryRun)
		if err != nil {
			return err
		}
		from := workload.Revision(d)
		res = action.Result{
			Changed: true,
			DryRun:  run.DryRun,
			Summary: fmt.Sprintf("rolled Deployment %s/%s back from revision %d to revision %d", d.Namespace, d.Name, from, workload.Revision(to)),
			Object:  out,
			Verify: action.Verify{
				Generation:      out.Generation,
				PodTemplateHash: to.Labels[appsv1.DefaultDeploymentUniqueLabelKey],
				Replicas:        workload.Replicas(out),
			},
			Undo: action.Undo{Revision: from, Replicas: workload.Replicas(d)},
		}
		return nil
	})
	if err != nil {
		return action.Result{}, err
	}
	if res.DryRun {
		res.Summary = "dry run: " + res.Summary
	}
	return res, nil
}
