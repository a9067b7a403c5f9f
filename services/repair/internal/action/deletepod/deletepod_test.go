package deletepod_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/kubedev"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
	"github.com/vigil-ops/vigil/services/repair/internal/action/actiontest"
	"github.com/vigil-ops/vigil/services/repair/internal/action/deletepod"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func proposal(ns, name string) *typesv1.RepairProposal {
	return actiontest.Proposal(typesv1.RepairAction_REPAIR_ACTION_DELETE_POD, "Pod", ns, name)
}

func pods(t *testing.T, k *testkit.Kube, ns, app string) []corev1.Pod {
	t.Helper()
	list, err := k.Clientset.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + app})
	require.NoError(t, err)
	return list.Items
}

// The pod goes, its ReplicaSet replaces it, and deleting it again is a
// repair already done.
func TestDeletePod(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	actiontest.Create(t, k, actiontest.Deployment(ns, "web", "registry.example.com/web:1", 2))
	victim := pods(t, k, ns, "web")[0]
	c := actiontest.Repairer(t, k)
	e := deletepod.New()
	p := proposal(ns, victim.Name)
	lim := action.Limits{MinReplicas: 1}

	plan, err := e.Plan(ctx, c, p, lim)
	require.NoError(t, err)
	assert.Equal(t, victim.UID, plan.UID)
	assert.Equal(t, 1, plan.PodsAffected)
	assert.Equal(t, []string{victim.Name}, plan.Pods)
	assert.Equal(t, int32(2), plan.HealthyBefore)
	assert.Equal(t, int32(1), plan.HealthyDuring)
	assert.Equal(t, int32(2), plan.HealthyAfter)
	assert.Zero(t, plan.Downtime)
	assert.Contains(t, plan.Change, "its ReplicaSet web-")

	run := action.Run{RepairID: "repair-1", Limits: lim, Planned: &plan}
	res, err := e.Execute(ctx, c, p, run)
	require.NoError(t, err)
	assert.True(t, res.Changed)
	out, ok := res.Object.(*corev1.Pod)
	require.True(t, ok, "the server's answer: %T", res.Object)
	assert.Equal(t, victim.UID, out.UID)
	assert.NotNil(t, out.DeletionTimestamp)
	assert.Equal(t, ptr.To[int64](30), out.DeletionGracePeriodSeconds, "the default grace period")
	assert.Equal(t, victim.UID, res.Verify.PodUID)
	assert.Equal(t, int32(2), res.Verify.Replicas)

	require.Eventually(t, func() bool {
		_, err := k.Clientset.CoreV1().Pods(ns).Get(ctx, victim.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, 30*time.Second, 100*time.Millisecond)
	actiontest.WaitRolledOut(t, k.Clientset, ns, "web")
	for _, pod := range pods(t, k, ns, "web") {
		assert.NotEqual(t, victim.UID, pod.UID)
	}

	again, err := e.Execute(ctx, c, p, run)
	require.NoError(t, err)
	assert.False(t, again.Changed)
	assert.Contains(t, again.Summary, "already gone")
	assert.Len(t, pods(t, k, ns, "web"), 2, "nothing else deleted")
}

// A dry run answers with the pod as it would be deleted, with the run's
// grace period; the pod stays.
func TestDeletePodDryRun(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	actiontest.Create(t, k, actiontest.Deployment(ns, "web", "registry.example.com/web:1", 2))
	victim := pods(t, k, ns, "web")[0]
	c := actiontest.Repairer(t, k)

	res, err := deletepod.New().Execute(ctx, c, proposal(ns, victim.Name), action.Run{RepairID: "repair-1", DryRun: true, GracePeriod: 10 * time.Second})
	require.NoError(t, err)
	assert.True(t, res.Changed)
	assert.True(t, res.DryRun)
	out, ok := res.Object.(*corev1.Pod)
	require.True(t, ok, "%T", res.Object)
	assert.NotNil(t, out.DeletionTimestamp)
	assert.Equal(t, ptr.To[int64](10), out.DeletionGracePeriodSeconds)

	time.Sleep(500 * time.Millisecond)
	now, err := k.Clientset.CoreV1().Pods(ns).Get(ctx, victim.Name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, victim.UID, now.UID)
	assert.Nil(t, now.DeletionTimestamp)
}

// A StatefulSet gives a new pod its old name: a repair planned on the old
// pod leaves the new one alone.
func TestDeletePodLeavesItsSuccessorAlone(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	labels := map[string]string{"app.kubernetes.io/name": "db"}
	_, err := k.Clientset.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To[int32](1),
			ServiceName: "db",
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "registry.example.com/db:1"}}},
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	ready := func(uidNot types.UID) *corev1.Pod {
		var pod *corev1.Pod
		require.Eventually(t, func() bool {
			var err error
			pod, err = k.Clientset.CoreV1().Pods(ns).Get(ctx, "db-0", metav1.GetOptions{})
			if err != nil || pod.UID == uidNot || pod.DeletionTimestamp != nil {
				return false
			}
			for _, c := range pod.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					return true
				}
			}
			return false
		}, 30*time.Second, 100*time.Millisecond)
		return pod
	}
	old := ready("")
	c := actiontest.Repairer(t, k)
	e := deletepod.New()
	p := proposal(ns, "db-0")
	plan, err := e.Plan(ctx, c, p, action.Limits{})
	require.NoError(t, err)
	require.Equal(t, old.UID, plan.UID)
	assert.Contains(t, plan.Change, "its StatefulSet db")

	require.NoError(t, k.Clientset.CoreV1().Pods(ns).Delete(ctx, "db-0", metav1.DeleteOptions{}))
	successor := ready(old.UID)

	res, err := e.Execute(ctx, c, p, action.Run{RepairID: "repair-1", Planned: &plan})
	require.NoError(t, err)
	assert.False(t, res.Changed, "the pod planned on is gone")
	assert.Contains(t, res.Summary, "left alone")
	time.Sleep(500 * time.Millisecond)
	now, err := k.Clientset.CoreV1().Pods(ns).Get(ctx, "db-0", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, successor.UID, now.UID)
	assert.Nil(t, now.DeletionTimestamp)
}

func TestDeletePodRefusals(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	actiontest.Create(t, k, actiontest.Deployment(ns, "single", "registry.example.com/web:1", 1))
	single := pods(t, k, ns, "single")[0]
	_, err := k.Clientset.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "bare"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/web:1"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	c := actiontest.Repairer(t, k)
	e := deletepod.New()

	for _, tc := range []struct {
		name   string
		p      *typesv1.RepairProposal
		lim    action.Limits
		reason error
	}{
		{"no controller", proposal(ns, "bare"), action.Limits{}, action.ErrNotApplicable},
		{"the only healthy pod", proposal(ns, single.Name), action.Limits{MinReplicas: 1}, action.ErrLimit},
		{"a deployment", actiontest.Proposal(typesv1.RepairAction_REPAIR_ACTION_DELETE_POD, "Deployment", ns, "single"), action.Limits{}, action.ErrNotSupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Plan(ctx, c, tc.p, tc.lim)
			actiontest.RequireRefused(t, err, tc.reason)
			_, err = e.Execute(ctx, c, tc.p, action.Run{RepairID: "repair-1", Limits: tc.lim})
			actiontest.RequireRefused(t, err, tc.reason)
		})
	}
	for _, name := range []string{"bare", single.Name} {
		pod, err := k.Clientset.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err, "%s is still there", name)
		assert.Nil(t, pod.DeletionTimestamp)
	}

	// Planning on a pod that does not exist is refused; executing it is a
	// pod already gone.
	_, err = e.Plan(ctx, c, proposal(ns, "ghost"), action.Limits{})
	actiontest.RequireRefused(t, err, action.ErrNotFound)
	res, err := e.Execute(ctx, c, proposal(ns, "ghost"), action.Run{RepairID: "repair-1"})
	require.NoError(t, err)
	assert.False(t, res.Changed)

	// Without the minimum, the only pod may go: an outage until its
	// replacement is ready.
	plan, err := e.Plan(ctx, c, proposal(ns, single.Name), action.Limits{})
	require.NoError(t, err)
	assert.Zero(t, plan.HealthyDuring)
	assert.Equal(t, int32(1), plan.HealthyAfter)
}

// Deleting a pod that is not ready takes no healthy replica away: allowed
// even when the workload is below its minimum.
func TestDeleteAnUnreadyPodBelowTheMinimum(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	_, err := k.Clientset.AppsV1().Deployments(ns).Create(ctx,
		actiontest.Deployment(ns, "stuck", kubedev.UnreadyImageHost+"/stuck:1", 1), metav1.CreateOptions{})
	require.NoError(t, err)
	var victim corev1.Pod
	require.Eventually(t, func() bool {
		ps := pods(t, k, ns, "stuck")
		if len(ps) != 1 || ps[0].Status.Phase != corev1.PodRunning {
			return false
		}
		victim = ps[0]
		return true
	}, 30*time.Second, 100*time.Millisecond)
	c := actiontest.Repairer(t, k)
	e := deletepod.New()
	lim := action.Limits{MinReplicas: 2}

	plan, err := e.Plan(ctx, c, proposal(ns, victim.Name), lim)
	require.NoError(t, err)
	assert.Zero(t, plan.HealthyBefore)
	assert.Zero(t, plan.HealthyDuring)
	assert.Equal(t, int32(1), plan.HealthyAfter, "if the replacement becomes ready")
	res, err := e.Execute(ctx, c, proposal(ns, victim.Name), action.Run{RepairID: "repair-1", Limits: lim})
	require.NoError(t, err)
	assert.True(t, res.Changed)
}
