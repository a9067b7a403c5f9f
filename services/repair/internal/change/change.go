// Package change is what the repair executors share in changing a
// Deployment (read through pkg/workload): what a rollout does to its
// healthy replicas, and a patch that only applies to the object as it was
// read.
package change

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/workload"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
)

// Deployment returns the Deployment t names, refusing with
// action.ErrNotFound when there is none.
func Deployment(ctx context.Context, c kubernetes.Interface, t *typesv1.ResourceRef) (*appsv1.Deployment, error) {
	d, err := c.AppsV1().Deployments(t.GetNamespace()).Get(ctx, t.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, action.Refuse(action.ErrNotFound, "%s", action.Name(t))
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", action.Name(t), err)
	}
	return d, nil
}

// Rollout plans a change that replaces the pods of d (a new pod
// template) from its ReplicaSets rss, but those of the ReplicaSet keep
// (the one a rollback returns to, when it still has pods): which pods, and
// what the rollout strategy lets happen to the healthy replicas meanwhile.
func Rollout(ctx context.Context, c kubernetes.Interface, d *appsv1.Deployment, rss []appsv1.ReplicaSet, keep types.UID) (action.Plan, error) {
	var replaced []appsv1.ReplicaSet
	for _, rs := range rss {
		if rs.UID != keep {
			replaced = append(replaced, rs)
		}
	}
	pods, err := workload.Pods(ctx, c, d, replaced)
	if err != nil {
		return action.Plan{}, err
	}
	p := action.Plan{
		UID:           d.UID,
		Generation:    d.Generation,
		PodsAffected:  len(pods),
		HealthyBefore: d.Status.AvailableReplicas,
		HealthyAfter:  workload.Replicas(d),
	}
	for _, pod := range pods {
		p.Pods = append(p.Pods, pod.Name)
	}
	p.HealthyDuring, p.Downtime = during(d)
	return p, nil
}

// during is the fewest healthy replicas d keeps while it rolls out a new
// template, and how long it may have none.
//
// A rolling update keeps replicas - maxUnavailable available (percentages
// rounded down, maxSurge rounded up, and maxUnavailable 1 when both come
// to 0, as the Deployment controller resolves them), or what is available
// now if that is fewer; Recreate stops every old pod first.
func during(d *appsv1.Deployment) (int32, time.Duration) {
	replicas := workload.Replicas(d)
	before := d.Status.AvailableReplicas
	var keep int32
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		unavailable, surge := intstr.FromString("25%"), intstr.FromString("25%")
		if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
			if ru.MaxUnavailable != nil {
				unavailable = *ru.MaxUnavailable
			}
			if ru.MaxSurge != nil {
				surge = *ru.MaxSurge
			}
		}
		u, errU := intstr.GetScaledValueFromIntOrPercent(&unavailable, int(replicas), false)
		s, errS := intstr.GetScaledValueFromIntOrPercent(&surge, int(replicas), true)
		if errU != nil || errS != nil {
			u, s = int(replicas), 0 // unreadable: assume the worst
		}
		if u == 0 && s == 0 {
			u = 1
		}
		keep = max(replicas-int32(u), 0)
	}
	keep = min(keep, before)
	if keep > 0 || before == 0 {
		return keep, 0
	}
	return 0, outage(d)
}

// outage estimates how long d has no healthy replica when all of them are
// replaced at once: until the old pods have stopped (Recreate), the new
// ones pass their first readiness probe, and minReadySeconds.
func outage(d *appsv1.Deployment) time.Duration {
	spec := d.Spec.Template.Spec
	var t time.Duration
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
		if spec.TerminationGracePeriodSeconds != nil {
			grace = *spec.TerminationGracePeriodSeconds
		}
		t += time.Duration(grace) * time.Second
	}
	var probe int32
	for _, ctr := range spec.Containers {
		if ctr.ReadinessProbe != nil {
			probe = max(probe, ctr.ReadinessProbe.InitialDelaySeconds)
		}
	}
	return t + time.Duration(probe+d.Spec.MinReadySeconds)*time.Second
}

// CheckRollable refuses a paused Deployment: a new template would not roll
// out until someone resumes it.
func CheckRollable(d *appsv1.Deployment) error {
	if d.Spec.Paused {
		return action.Refuse(action.ErrNotApplicable, "deployment %s/%s is paused: resume it first", d.Namespace, d.Name)
	}
	return nil
}

// Patch patches d with patch (of type pt) as Vigil's repairs, only if d
// is still as it was read: the patch carries d's resourceVersion, so a
// Deployment changed since fails with a Conflict (retry.RetryOnConflict
// reads it again). dryRun asks for the server's answer without persisting.
func Patch(ctx context.Context, c kubernetes.Interface, d *appsv1.Deployment, pt types.PatchType, patch []byte, dryRun bool) (*appsv1.Deployment, error) {
	opts := metav1.PatchOptions{FieldManager: action.FieldManager}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	out, err := c.AppsV1().Deployments(d.Namespace).Patch(ctx, d.Name, pt, patch, opts)
	if err != nil {
		return nil, fmt.Errorf("patch deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	return out, nil
}

// SpecPatch is a patch of a Deployment's spec (and of its own
// annotations, when annotations is not empty) guarded by its
// resourceVersion: a JSON merge patch, or a strategic merge patch when it
// merges a list by key (containers by name).
func SpecPatch(d *appsv1.Deployment, annotations map[string]string, spec map[string]any) []byte {
	meta := map[string]any{"resourceVersion": d.ResourceVersion}
	if len(annotations) > 0 {
		meta["annotations"] = annotations
	}
	b, err := json.Marshal(map[string]any{"metadata": meta, "spec": spec})
	if err != nil {
		panic(err) // maps of strings and numbers always marshal
	}
	return b
}

// hashWait bounds how long Execute waits for the Deployment controller to
// make the ReplicaSet of a new template: it usually takes milliseconds;
// when it does not, the verifier finds it by generation.
const hashWait = 10 * time.Second

// WaitNewReplicaSet waits, a few seconds at most, for the ReplicaSet of
// d's template, and returns its pod-template-hash ("" if it did not come).
func WaitNewReplicaSet(ctx context.Context, c kubernetes.Interface, d *appsv1.Deployment) string {
	var hash string
	_ = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, hashWait, true, func(ctx context.Context) (bool, error) {
		rss, err := workload.ReplicaSets(ctx, c, d)
		if err != nil {
			return false, nil //nolint:nilerr // a blip: poll again until the bound
		}
		if rs := workload.Current(d, rss); rs != nil {
			hash = rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
			return true, nil
		}
		return false, nil
	})
	return hash
}

// TemplateHash is the pod-template-hash of the ReplicaSet running d's
// template now, "" when there is none yet.
func TemplateHash(ctx context.Context, c kubernetes.Interface, d *appsv1.Deployment) string {
	rss, err := workload.ReplicaSets(ctx, c, d)
	if err != nil {
		return ""
	}
	if rs := workload.Current(d, rss); rs != nil {
		return rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	}
	return ""
}

// Replacing says for people how a rollout of d replaces its pods.
func Replacing(d *appsv1.Deployment, p action.Plan) string {
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return fmt.Sprintf("replaces its %d pods, all stopped first (Recreate)", p.PodsAffected)
	}
	return fmt.Sprintf("replaces its %d pods rolling, keeping at least %d healthy", p.PodsAffected, p.HealthyDuring)
}
