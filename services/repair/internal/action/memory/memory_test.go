package memory_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
	"github.com/vigil-ops/vigil/services/repair/internal/action/actiontest"
	"github.com/vigil-ops/vigil/services/repair/internal/action/memory"
)

func TestMain(m *testing.M) { testkit.Main(m) }

const mi = 1 << 20

func proposal(ns, name, container string, limit int64) *typesv1.RepairProposal {
	p := actiontest.Proposal(typesv1.RepairAction_REPAIR_ACTION_INCREASE_MEMORY_LIMIT, "Deployment", ns, name)
	p.Params = &typesv1.RepairProposal_MemoryLimit{MemoryLimit: &typesv1.MemoryLimitParams{Container: container, LimitBytes: limit}}
	return p
}

// limited is a Deployment whose container "app" requests request and is
// limited to limit.
func limited(ns, name string, replicas int32, request, limit string) *appsv1.Deployment {
	d := actiontest.Deployment(ns, name, "registry.example.com/web:1", replicas)
	d.Spec.Template.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(request)},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(limit)},
	}
	return d
}

func memoryOf(c corev1.Container) (request, limit string) {
	return c.Resources.Requests.Memory().String(), c.Resources.Limits.Memory().String()
}

// Half as much again, rounded to a MiB: the new pods get it, the request
// stays, and running the repair again does not raise it once more.
func TestIncreaseMemoryLimit(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	d := actiontest.Create(t, k, limited(ns, "web", 2, "256Mi", "256Mi"))
	c := actiontest.Repairer(t, k)
	e := memory.New()
	p := proposal(ns, "web", "app", 0)
	lim := action.Limits{MinReplicas: 1, MaxMemoryBytes: 1024 * mi}

	plan, err := e.Plan(ctx, c, p, lim)
	require.NoError(t, err)
	assert.Equal(t, d.UID, plan.UID)
	assert.Contains(t, plan.Change, `raise the memory limit of container "app" of Deployment `+ns+"/web from 256Mi to 384Mi")
	assert.Equal(t, 2, plan.PodsAffected)
	assert.Equal(t, int32(2), plan.HealthyBefore)
	assert.Equal(t, int32(2), plan.HealthyDuring)

	run := action.Run{RepairID: "repair-1", Limits: lim, Planned: &plan}
	res, err := e.Execute(ctx, c, p, run)
	require.NoError(t, err)
	assert.True(t, res.Changed)
	out, ok := res.Object.(*appsv1.Deployment)
	require.True(t, ok)
	req, limit := memoryOf(out.Spec.Template.Spec.Containers[0])
	assert.Equal(t, "384Mi", limit)
	assert.Equal(t, "256Mi", req, "the request is left as it is")
	assert.Equal(t, "repair-1", out.Spec.Template.Annotations[action.RepairIDAnnotation])
	assert.Equal(t, d.Generation+1, res.Verify.Generation)
	assert.NotEmpty(t, res.Verify.PodTemplateHash)
	assert.Equal(t, "app", res.Undo.Container)
	require.NotNil(t, res.Undo.Resources)
	assert.Equal(t, "256Mi", res.Undo.Resources.Limits.Memory().String())
	assert.Equal(t, int64(1), res.Undo.Revision)

	actiontest.WaitRolledOut(t, k.Clientset, ns, "web")
	pods, err := k.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, pods.Items, 2)
	for _, pod := range pods.Items {
		_, limit := memoryOf(pod.Spec.Containers[0])
		assert.Equal(t, "384Mi", limit, pod.Name)
		assert.Equal(t, res.Verify.PodTemplateHash, pod.Labels[appsv1.DefaultDeploymentUniqueLabelKey])
	}

	again, err := e.Execute(ctx, c, p, run)
	require.NoError(t, err)
	assert.False(t, again.Changed)
	now, err := k.Clientset.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	_, limit = memoryOf(now.Spec.Template.Spec.Containers[0])
	assert.Equal(t, "384Mi", limit, "not raised twice")
	assert.Equal(t, res.Verify.Generation, now.Generation)

	// A limit already at or above the one asked for: nothing to do.
	atOrAbove := proposal(ns, "web", "app", 300*mi)
	plan, err = e.Plan(ctx, c, atOrAbove, lim)
	require.NoError(t, err)
	assert.True(t, plan.NoOp)
	res, err = e.Execute(ctx, c, atOrAbove, action.Run{RepairID: "repair-2", Limits: lim})
	require.NoError(t, err)
	assert.False(t, res.Changed)
}

func TestIncreaseMemoryLimitDryRun(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	d := actiontest.Create(t, k, limited(ns, "web", 1, "64Mi", "128Mi"))
	c := actiontest.Repairer(t, k)

	res, err := memory.New().Execute(ctx, c, proposal(ns, "web", "", 512*mi), action.Run{RepairID: "repair-1", DryRun: true, Limits: action.Limits{MaxMemoryBytes: 1024 * mi}})
	require.NoError(t, err)
	assert.True(t, res.Changed)
	assert.True(t, res.DryRun)
	out, ok := res.Object.(*appsv1.Deployment)
	require.True(t, ok)
	_, limit := memoryOf(out.Spec.Template.Spec.Containers[0])
	assert.Equal(t, "512Mi", limit, "the only container, as it would be")
	assert.Empty(t, res.Verify.PodTemplateHash)

	now, err := k.Clientset.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	_, limit = memoryOf(now.Spec.Template.Spec.Containers[0])
	assert.Equal(t, "128Mi", limit)
	assert.Equal(t, d.Generation, now.Generation)
}

func TestIncreaseMemoryLimitRefusals(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	actiontest.Create(t, k, limited(ns, "web", 1, "128Mi", "256Mi"))
	actiontest.Create(t, k, actiontest.Deployment(ns, "unlimited", "registry.example.com/web:1", 1))
	two := limited(ns, "two", 1, "128Mi", "256Mi")
	two.Spec.Template.Spec.Containers = append(two.Spec.Template.Spec.Containers, corev1.Container{Name: "sidecar", Image: "registry.example.com/proxy:1"})
	actiontest.Create(t, k, two)
	c := actiontest.Repairer(t, k)
	e := memory.New()
	lim := action.Limits{MaxMemoryBytes: 1024 * mi}

	for _, tc := range []struct {
		name   string
		p      *typesv1.RepairProposal
		lim    action.Limits
		reason error
	}{
		{"no such container", proposal(ns, "web", "worker", 0), lim, action.ErrNotApplicable},
		{"no memory limit", proposal(ns, "unlimited", "app", 0), lim, action.ErrNotApplicable},
		{"which container", proposal(ns, "two", "", 0), lim, action.ErrInvalid},
		{"at the maximum", proposal(ns, "web", "app", 0), action.Limits{MaxMemoryBytes: 256 * mi}, action.ErrLimit},
		{"no maximum", proposal(ns, "web", "app", 0), action.Limits{}, action.ErrLimit},
		{"negative", proposal(ns, "web", "app", -1), lim, action.ErrInvalid},
		{"no parameters", actiontest.Proposal(typesv1.RepairAction_REPAIR_ACTION_INCREASE_MEMORY_LIMIT, "Deployment", ns, "web"), lim, action.ErrInvalid},
		{"not found", proposal(ns, "ghost", "app", 0), lim, action.ErrNotFound},
		{"a statefulset", actiontest.WithKind(proposal(ns, "web", "app", 0), "StatefulSet"), lim, action.ErrNotSupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Plan(ctx, c, tc.p, tc.lim)
			actiontest.RequireRefused(t, err, tc.reason)
			_, err = e.Execute(ctx, c, tc.p, action.Run{RepairID: "repair-1", Limits: tc.lim})
			actiontest.RequireRefused(t, err, tc.reason)
		})
	}

	// Above the maximum: capped at it, and said so.
	plan, err := e.Plan(ctx, c, proposal(ns, "two", "app", 2048*mi), lim)
	require.NoError(t, err)
	assert.Contains(t, plan.Change, `container "app" of Deployment `+ns+"/two from 256Mi to 1Gi (the policy's maximum)")

	for _, name := range []string{"web", "unlimited", "two"} {
		d, err := k.Clientset.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, int64(1), d.Generation, "%s: refusals change nothing", name)
	}
}
