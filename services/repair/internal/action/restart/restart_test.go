package restart_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
	"github.com/vigil-ops/vigil/services/repair/internal/action/actiontest"
	"github.com/vigil-ops/vigil/services/repair/internal/action/restart"
)

func TestMain(m *testing.M) { testkit.Main(m) }

const restartAction = typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT

func podNames(t *testing.T, k *testkit.Kube, ns string) []string {
	t.Helper()
	pods, err := k.Clientset.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	var names []string
	for _, p := range pods.Items {
		names = append(names, p.Name)
	}
	return names
}

// A restart rolls out new pods from a new ReplicaSet, every old pod goes,
// and running the same repair again restarts nothing.
func TestRestart(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	d := actiontest.Create(t, k, actiontest.Deployment(ns, "web", "registry.example.com/web:1", 3))
	oldPods := podNames(t, k, ns)
	oldRS := actiontest.ReplicaSets(t, k.Clientset, ns)
	require.Len(t, oldRS, 1)
	c := actiontest.Repairer(t, k)
	e := restart.New()
	p := actiontest.Proposal(restartAction, "Deployment", ns, "web")
	lim := action.Limits{MinReplicas: 2}

	plan, err := e.Plan(ctx, c, p, lim)
	require.NoError(t, err)
	assert.Equal(t, d.UID, plan.UID)
	assert.Equal(t, d.Generation, plan.Generation)
	assert.False(t, plan.NoOp)
	assert.Equal(t, 3, plan.PodsAffected)
	assert.ElementsMatch(t, oldPods, plan.Pods)
	// 3 replicas, 25% unavailable rounds down to 0: all three stay.
	assert.Equal(t, int32(3), plan.HealthyBefore)
	assert.Equal(t, int32(3), plan.HealthyDuring)
	assert.Equal(t, int32(3), plan.HealthyAfter)
	assert.Zero(t, plan.Downtime)
	assert.Contains(t, plan.Change, "restart Deployment "+ns+"/web")

	run := action.Run{RepairID: "repair-1", Limits: lim, Planned: &plan}
	res, err := e.Execute(ctx, c, p, run)
	require.NoError(t, err)
	assert.True(t, res.Changed)
	assert.False(t, res.DryRun)
	out, ok := res.Object.(*appsv1.Deployment)
	require.True(t, ok, "the server's answer: %T", res.Object)
	assert.Equal(t, "repair-1", out.Spec.Template.Annotations[action.RepairIDAnnotation])
	restartedAt, err := time.Parse(time.RFC3339, out.Spec.Template.Annotations[restart.RestartedAtAnnotation])
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), restartedAt, time.Minute)
	assert.Equal(t, d.Generation+1, res.Verify.Generation)
	assert.Equal(t, int32(3), res.Verify.Replicas)
	require.NotEmpty(t, res.Verify.PodTemplateHash, "the controller made the new ReplicaSet")
	assert.NotEqual(t, oldRS[0].Labels[appsv1.DefaultDeploymentUniqueLabelKey], res.Verify.PodTemplateHash)
	assert.Equal(t, int64(1), res.Undo.Revision)
	assert.Equal(t, int32(3), res.Undo.Replicas)
	assert.Equal(t, map[string]string{restart.RestartedAtAnnotation: "", action.RepairIDAnnotation: ""}, res.Undo.TemplateAnnotations)

	actiontest.WaitRolledOut(t, k.Clientset, ns, "web")
	require.Len(t, actiontest.ReplicaSets(t, k.Clientset, ns), 2, "one new ReplicaSet")
	pods, err := k.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, pods.Items, 3)
	for _, pod := range pods.Items {
		assert.NotContains(t, oldPods, pod.Name, "every pod was replaced")
		assert.Equal(t, res.Verify.PodTemplateHash, pod.Labels[appsv1.DefaultDeploymentUniqueLabelKey])
	}

	// Redelivered: nothing sent, the same generation and ReplicaSet to
	// verify.
	again, err := e.Execute(ctx, c, p, run)
	require.NoError(t, err)
	assert.False(t, again.Changed)
	assert.Equal(t, res.Verify.Generation, again.Verify.Generation)
	assert.Equal(t, res.Verify.PodTemplateHash, again.Verify.PodTemplateHash)
	now, err := k.Clientset.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, res.Verify.Generation, now.Generation, "not restarted twice")
	assert.Len(t, actiontest.ReplicaSets(t, k.Clientset, ns), 2)

	// Another repair on the old plan: the Deployment changed since.
	_, err = e.Execute(ctx, c, p, action.Run{RepairID: "repair-2", Limits: lim, Planned: &plan})
	actiontest.RequireRefused(t, err, action.ErrChanged)
}

// A dry run is admitted by the API server, which answers with the
// Deployment as it would be; nothing changes.
func TestRestartDryRun(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	d := actiontest.Create(t, k, actiontest.Deployment(ns, "web", "registry.example.com/web:1", 2))
	c := actiontest.Repairer(t, k)
	e := restart.New()
	p := actiontest.Proposal(restartAction, "Deployment", ns, "web")

	res, err := e.Execute(ctx, c, p, action.Run{RepairID: "repair-1", DryRun: true})
	require.NoError(t, err)
	assert.True(t, res.Changed)
	assert.True(t, res.DryRun)
	assert.Contains(t, res.Summary, "dry run")
	out, ok := res.Object.(*appsv1.Deployment)
	require.True(t, ok)
	assert.Equal(t, "repair-1", out.Spec.Template.Annotations[action.RepairIDAnnotation])
	assert.NotEmpty(t, out.Spec.Template.Annotations[restart.RestartedAtAnnotation])
	assert.Equal(t, d.Generation+1, out.Generation, "as it would be")
	assert.Empty(t, res.Verify.PodTemplateHash, "no ReplicaSet is made")

	now, err := k.Clientset.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, d.Generation, now.Generation)
	assert.Equal(t, d.ResourceVersion, now.ResourceVersion)
	assert.Empty(t, now.Spec.Template.Annotations)
	time.Sleep(500 * time.Millisecond) // what a controller would do, it would have started
	assert.Len(t, actiontest.ReplicaSets(t, k.Clientset, ns), 1)

	// The real one after the dry run is not mistaken for done.
	res, err = e.Execute(ctx, c, p, action.Run{RepairID: "repair-1"})
	require.NoError(t, err)
	assert.True(t, res.Changed)
}

func TestRestartRefusals(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	actiontest.Create(t, k, actiontest.Deployment(ns, "web", "registry.example.com/web:1", 2))
	paused := actiontest.Deployment(ns, "paused", "registry.example.com/web:1", 1)
	paused.Spec.Paused = true
	_, err := k.Clientset.AppsV1().Deployments(ns).Create(ctx, paused, metav1.CreateOptions{})
	require.NoError(t, err)
	recreate := actiontest.Deployment(ns, "recreate", "registry.example.com/web:1", 2)
	recreate.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	actiontest.Create(t, k, recreate)
	// maxUnavailable 100%: every pod may go at once.
	allAtOnce := actiontest.Deployment(ns, "all-at-once", "registry.example.com/web:1", 2)
	hundred := intstr.FromString("100%")
	allAtOnce.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: &hundred}
	actiontest.Create(t, k, allAtOnce)
	c := actiontest.Repairer(t, k)
	e := restart.New()

	for _, tc := range []struct {
		name   string
		p      *typesv1.RepairProposal
		lim    action.Limits
		reason error
	}{
		{"not found", actiontest.Proposal(restartAction, "Deployment", ns, "ghost"), action.Limits{}, action.ErrNotFound},
		{"a pod", actiontest.Proposal(restartAction, "Pod", ns, "web"), action.Limits{}, action.ErrNotSupported},
		{"another action", actiontest.Proposal(typesv1.RepairAction_REPAIR_ACTION_DELETE_POD, "Deployment", ns, "web"), action.Limits{}, action.ErrNotSupported},
		{"no namespace", actiontest.Proposal(restartAction, "Deployment", "", "web"), action.Limits{}, action.ErrInvalid},
		{"paused", actiontest.Proposal(restartAction, "Deployment", ns, "paused"), action.Limits{}, action.ErrNotApplicable},
		{"recreate below the minimum", actiontest.Proposal(restartAction, "Deployment", ns, "recreate"), action.Limits{MinReplicas: 1}, action.ErrLimit},
		{"every pod at once below the minimum", actiontest.Proposal(restartAction, "Deployment", ns, "all-at-once"), action.Limits{MinReplicas: 1}, action.ErrLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Plan(ctx, c, tc.p, tc.lim)
			actiontest.RequireRefused(t, err, tc.reason)
			_, err = e.Execute(ctx, c, tc.p, action.Run{RepairID: "repair-1", Limits: tc.lim})
			actiontest.RequireRefused(t, err, tc.reason)
		})
	}

	// Without a minimum, a Recreate restart is planned with its outage.
	plan, err := e.Plan(ctx, c, actiontest.Proposal(restartAction, "Deployment", ns, "recreate"), action.Limits{})
	require.NoError(t, err)
	assert.Equal(t, int32(2), plan.HealthyBefore)
	assert.Zero(t, plan.HealthyDuring)
	assert.Equal(t, int32(2), plan.HealthyAfter)
	assert.Equal(t, 5*time.Second, plan.Downtime, "the old pods' grace period")
	assert.Contains(t, plan.Change, "Recreate")

	_, err = e.Execute(ctx, c, actiontest.Proposal(restartAction, "Deployment", ns, "web"), action.Run{})
	actiontest.RequireRefused(t, err, action.ErrInvalid)

	for _, name := range []string{"web", "recreate", "all-at-once"} {
		d, err := k.Clientset.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, int64(1), d.Generation, "%s: refusals change nothing", name)
	}
}
