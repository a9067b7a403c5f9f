package scale_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/workload/workloadtest"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
	"github.com/vigil-ops/vigil/services/repair/internal/action/actiontest"
	"github.com/vigil-ops/vigil/services/repair/internal/action/scale"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func proposal(ns, name string, replicas int32) *typesv1.RepairProposal {
	p := actiontest.Proposal(typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT, "Deployment", ns, name)
	p.Params = &typesv1.RepairProposal_Scale{Scale: &typesv1.ScaleParams{Replicas: replicas}}
	return p
}

// Scaling up then down: the replicas change, the ReplicaSet follows, the
// previous count is kept for undo, and a repeat is a no-op.
func TestScale(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	d := actiontest.Create(t, k, actiontest.Deployment(ns, "web", "registry.example.com/web:1", 2))
	c := actiontest.Repairer(t, k)
	e := scale.New()
	lim := action.Limits{MinReplicas: 1, MaxReplicas: 5}

	up := proposal(ns, "web", 4)
	plan, err := e.Plan(ctx, c, up, lim)
	require.NoError(t, err)
	assert.Equal(t, d.UID, plan.UID)
	assert.Zero(t, plan.PodsAffected, "scaling up touches no running pod")
	assert.Equal(t, int32(2), plan.HealthyBefore)
	assert.Equal(t, int32(2), plan.HealthyDuring)
	assert.Equal(t, int32(4), plan.HealthyAfter)
	assert.Equal(t, "scale Deployment "+ns+"/web from 2 to 4 replicas", plan.Change)

	run := action.Run{RepairID: "repair-1", Limits: lim, Planned: &plan}
	res, err := e.Execute(ctx, c, up, run)
	require.NoError(t, err)
	assert.True(t, res.Changed)
	out, ok := res.Object.(*appsv1.Deployment)
	require.True(t, ok)
	assert.Equal(t, int32(4), *out.Spec.Replicas)
	assert.Equal(t, d.Generation+1, res.Verify.Generation)
	assert.Equal(t, int32(4), res.Verify.Replicas)
	rs := actiontest.ReplicaSets(t, k.Clientset, ns)
	require.Len(t, rs, 1)
	assert.Equal(t, rs[0].Labels[appsv1.DefaultDeploymentUniqueLabelKey], res.Verify.PodTemplateHash, "the new pods are the current ReplicaSet's")
	assert.Equal(t, int32(2), res.Undo.Replicas)
	actiontest.WaitRolledOut(t, k.Clientset, ns, "web")

	again, err := e.Execute(ctx, c, up, run)
	require.NoError(t, err)
	assert.False(t, again.Changed, "already at 4")
	assert.Equal(t, res.Verify.Generation, again.Verify.Generation)

	down := proposal(ns, "web", 1)
	plan, err = e.Plan(ctx, c, down, lim)
	require.NoError(t, err)
	assert.Equal(t, 3, plan.PodsAffected)
	assert.Empty(t, plan.Pods, "the ReplicaSet controller picks them")
	assert.Equal(t, int32(4), plan.HealthyBefore)
	assert.Equal(t, int32(1), plan.HealthyDuring)
	assert.Equal(t, int32(1), plan.HealthyAfter)
	res, err = e.Execute(ctx, c, down, action.Run{RepairID: "repair-2", Limits: lim, Planned: &plan})
	require.NoError(t, err)
	assert.True(t, res.Changed)
	assert.Equal(t, int32(4), res.Undo.Replicas)
	actiontest.WaitRolledOut(t, k.Clientset, ns, "web")

	plan, err = e.Plan(ctx, c, down, lim)
	require.NoError(t, err)
	assert.True(t, plan.NoOp, "scaling to the current replicas")
	assert.Zero(t, plan.PodsAffected)
}

func TestScaleDryRun(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	d := actiontest.Create(t, k, actiontest.Deployment(ns, "web", "registry.example.com/web:1", 2))
	c := actiontest.Repairer(t, k)

	res, err := scale.New().Execute(ctx, c, proposal(ns, "web", 3), action.Run{RepairID: "repair-1", DryRun: true, Limits: action.Limits{MaxReplicas: 3}})
	require.NoError(t, err)
	assert.True(t, res.Changed)
	assert.True(t, res.DryRun)
	out, ok := res.Object.(*appsv1.Deployment)
	require.True(t, ok)
	assert.Equal(t, int32(3), *out.Spec.Replicas, "as it would be")

	now, err := k.Clientset.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(2), *now.Spec.Replicas)
	assert.Equal(t, d.Generation, now.Generation)
}

func TestScaleRefusals(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	actiontest.Create(t, k, actiontest.Deployment(ns, "web", "registry.example.com/web:1", 3))
	c := actiontest.Repairer(t, k)
	e := scale.New()
	noParams := actiontest.Proposal(typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT, "Deployment", ns, "web")

	for _, tc := range []struct {
		name   string
		p      *typesv1.RepairProposal
		lim    action.Limits
		reason error
	}{
		{"below the minimum", proposal(ns, "web", 1), action.Limits{MinReplicas: 2, MaxReplicas: 5}, action.ErrLimit},
		{"to zero", proposal(ns, "web", 0), action.Limits{MinReplicas: 1, MaxReplicas: 5}, action.ErrLimit},
		{"above the maximum", proposal(ns, "web", 6), action.Limits{MinReplicas: 2, MaxReplicas: 5}, action.ErrLimit},
		{"up without a maximum", proposal(ns, "web", 4), action.Limits{}, action.ErrLimit},
		{"negative", proposal(ns, "web", -1), action.Limits{MaxReplicas: 5}, action.ErrInvalid},
		{"no parameters", noParams, action.Limits{MaxReplicas: 5}, action.ErrInvalid},
		{"not found", proposal(ns, "ghost", 2), action.Limits{MaxReplicas: 5}, action.ErrNotFound},
		{"a pod", actiontest.WithKind(proposal(ns, "web", 2), "Pod"), action.Limits{}, action.ErrNotSupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Plan(ctx, c, tc.p, tc.lim)
			actiontest.RequireRefused(t, err, tc.reason)
			_, err = e.Execute(ctx, c, tc.p, action.Run{RepairID: "repair-1", Limits: tc.lim})
			actiontest.RequireRefused(t, err, tc.reason)
		})
	}
	d, err := k.Clientset.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(3), *d.Spec.Replicas)
	assert.Equal(t, int64(1), d.Generation)

	// Down towards a maximum the Deployment is above: allowed, a bound
	// only stops a change that moves past it.
	_, err = e.Plan(ctx, c, proposal(ns, "web", 2), action.Limits{MinReplicas: 1, MaxReplicas: 1})
	require.NoError(t, err)
}

// A HorizontalPodAutoscaler owns the count of the Deployment it targets:
// a scale past its bounds, which it would undo, is refused and nothing
// changes; within them, it is planned.
func TestScaleWithinTheAutoscaler(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	actiontest.Create(t, k, actiontest.Deployment(ns, "web", "registry.example.com/web:1", 3))
	workloadtest.Autoscaler(t, k.Clientset, ns, "web", 2, 3)
	c := actiontest.Repairer(t, k)
	e := scale.New()
	lim := action.Limits{MinReplicas: 1, MaxReplicas: 10}

	for _, want := range []int32{4, 1} {
		_, err := e.Plan(ctx, c, proposal(ns, "web", want), lim)
		actiontest.RequireRefused(t, err, action.ErrNotApplicable)
		require.ErrorContains(t, err, "HorizontalPodAutoscaler web owns the replica count, between 2 and 3")
		_, err = e.Execute(ctx, c, proposal(ns, "web", want), action.Run{RepairID: "repair-1", Limits: lim})
		actiontest.RequireRefused(t, err, action.ErrNotApplicable)
	}
	d, err := k.Clientset.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(3), *d.Spec.Replicas)
	assert.Equal(t, int64(1), d.Generation)

	plan, err := e.Plan(ctx, c, proposal(ns, "web", 2), lim)
	require.NoError(t, err)
	assert.Equal(t, int32(2), plan.Replicas)
}
