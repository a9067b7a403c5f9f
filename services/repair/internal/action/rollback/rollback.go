// Package rollback returns a Deployment to an earlier revision, as
// `kubectl rollout undo` does: the pod template of the ReplicaSet of that
// revision goes back into the Deployment, whose controller then scales
// that ReplicaSet up again (and numbers it as the newest revision).
//
// The revision is the Deployment's last good one (pkg/workload), as the
// analysis that proposed it saw it: a proposal naming another (the
// Deployment changed since, or a revision was judged otherwise) is
// refused. Only an undo (Run.Restore) returns to any kept revision: the
// one its repair replaced. The repair's id is recorded on the Deployment
// (not its template, which must equal the old one for the old ReplicaSet
// to be reused), so that running the repair again does not roll "back"
// once more, from the restored revision to the one it replaced.
package rollback

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/workload"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
	"github.com/vigil-ops/vigil/services/repair/internal/change"
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
	d, err := change.Deployment(ctx, c, t)
	if err != nil {
		return action.Plan{}, err
	}
	pl, _, err := plan(ctx, c, d, rev, false, lim)
	return pl, err
}

// plan returns the plan and the revision to return to: rev when it is
// the last good one (0: whichever that is), or, restoring, any kept
// revision but the current.
func plan(ctx context.Context, c kubernetes.Interface, d *appsv1.Deployment, rev int64, restore bool, lim action.Limits) (action.Plan, *workload.Revision, error) {
	name := d.Namespace + "/" + d.Name
	if err := change.CheckRollable(d); err != nil {
		return action.Plan{}, nil, err
	}
	w, err := workload.Of(ctx, c, d, time.Now())
	if err != nil {
		return action.Plan{}, nil, err
	}
	cur := w.Current
	if cur == nil {
		// Not a refusal: the controller makes it in a moment.
		return action.Plan{}, nil, fmt.Errorf("deployment %s: the Deployment controller has not made the ReplicaSet of its template yet", name)
	}
	to, good := w.Revision(rev), w.LastGood()
	switch {
	case rev != 0 && to == nil:
		return action.Plan{}, nil, action.Refuse(action.ErrNotApplicable, "Deployment %s has no revision %d (it has %s)", name, rev, revisions(w))
	case rev != 0 && to == cur:
		return action.Plan{}, nil, action.Refuse(action.ErrNotApplicable, "revision %d is Deployment %s's current template", rev, name)
	case restore && rev != 0:
	case good == nil:
		return action.Plan{}, nil, action.Refuse(action.ErrNotApplicable, "Deployment %s has no good revision to return to (%s): a person must decide", name, revisions(w))
	case rev == 0:
		to = good
	case to != good:
		return action.Plan{}, nil, action.Refuse(action.ErrNotApplicable, "revision %d is not Deployment %s's last good revision, %d (%s)", rev, name, good.Number, revisions(w))
	}
	p, err := change.Rollout(ctx, c, d, rss(w), to.ReplicaSet.UID)
	if err != nil {
		return action.Plan{}, nil, err
	}
	p.Change = fmt.Sprintf("roll Deployment %s back from revision %d (%s) to revision %d (%s): %s", name,
		cur.Number, images(&d.Spec.Template), to.Number, images(&to.ReplicaSet.Spec.Template), change.Replacing(d, p))
	return p, to, lim.CheckHealthy(p)
}

func rss(w *workload.Deployment) []appsv1.ReplicaSet {
	var out []appsv1.ReplicaSet
	for _, r := range w.Revisions {
		out = append(out, *r.ReplicaSet)
	}
	return out
}

// revisions says, for people, the kept revisions and how each was judged.
func revisions(w *workload.Deployment) string {
	var rs []string
	for i := len(w.Revisions) - 1; i >= 0; i-- {
		r := &w.Revisions[i]
		s := strconv.FormatInt(r.Number, 10)
		if r == w.Current {
			s += " (current)"
		}
		rs = append(rs, s+": "+r.Why)
	}
	return strings.Join(rs, "; ")
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
		d, err := change.Deployment(ctx, c, t)
		if err != nil {
			return err
		}
		if d.Annotations[action.RepairIDAnnotation] == run.RepairID {
			res = action.Result{
				Summary: fmt.Sprintf("Deployment %s/%s was already rolled back by repair %s", d.Namespace, d.Name, run.RepairID),
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
		_, to, err := plan(ctx, c, d, rev, run.Restore, run.Limits)
		if err != nil {
			return err
		}
		template := to.ReplicaSet.Spec.Template.DeepCopy()
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
		out, err := change.Patch(ctx, c, d, types.JSONPatchType, patch, run.DryRun)
		if err != nil {
			return err
		}
		from := workload.RevisionOf(d)
		res = action.Result{
			Changed: true,
			DryRun:  run.DryRun,
			Summary: fmt.Sprintf("rolled Deployment %s/%s back from revision %d to revision %d", d.Namespace, d.Name, from, to.Number),
			Object:  out,
			Verify: action.Verify{
				Generation:      out.Generation,
				PodTemplateHash: to.Hash(),
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
