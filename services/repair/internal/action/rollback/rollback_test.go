package rollback_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/kubedev"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/workload/workloadtest"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
	"github.com/vigil-ops/vigil/services/repair/internal/action/actiontest"
	"github.com/vigil-ops/vigil/services/repair/internal/action/rollback"
)

func TestMain(m *testing.M) { testkit.Main(m) }

const revisionAnnotation = "deployment.kubernetes.io/revision"

func proposal(ns, name string, revision int64) *typesv1.RepairProposal {
	p := actiontest.Proposal(typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, "Deployment", ns, name)
	if revision != 0 {
		p.Params = &typesv1.RepairProposal_Rollback{Rollback: &typesv1.RollbackParams{Revision: revision}}
	}
	return p
}

// release sets the image of Deployment ns/name as a deploy would, and
// waits for the controller to number the new revision.
func release(t *testing.T, k *testkit.Kube, ns, name, image string, revision int) *appsv1.Deployment {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":%q}]}}}}`, image)
	_, err := k.Clientset.AppsV1().Deployments(ns).Patch(t.Context(), name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	require.NoError(t, err)
	var d *appsv1.Deployment
	require.Eventually(t, func() bool {
		d, err = k.Clientset.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		return err == nil && d.Status.ObservedGeneration == d.Generation && d.Annotations[revisionAnnotation] == strconv.Itoa(revision)
	}, 30*time.Second, 100*time.Millisecond)
	return d
}

func revisionOf(rss []appsv1.ReplicaSet, image string) (int, string) {
	for _, rs := range rss {
		if rs.Spec.Template.Spec.Containers[0].Image == image {
			r, _ := strconv.Atoi(rs.Annotations[revisionAnnotation])
			return r, rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
		}
	}
	return 0, ""
}

// A release that crash-loops is rolled back to the one before: the old
// ReplicaSet, still serving, scales back up as the newest revision, only
// the crashing pod is replaced, and running the repair again does not roll
// "back" to the crashing release.
func TestRollbackACrashingRelease(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	good, bad := "registry.example.com/web:1", kubedev.CrashImageHost+"/web:2"
	actiontest.Create(t, k, actiontest.Deployment(ns, "web", good, 2))
	workloadtest.Settled(t, k.Clientset, ns, "web", 1, 2)
	d := release(t, k, ns, "web", bad, 2)
	_, goodHash := revisionOf(actiontest.ReplicaSets(t, k.Clientset, ns), good)
	require.NotEmpty(t, goodHash)
	c := actiontest.Repairer(t, k)
	e := rollback.New()
	p := proposal(ns, "web", 0)
	lim := action.Limits{MinReplicas: 2}

	plan, err := e.Plan(ctx, c, p, lim)
	require.NoError(t, err)
	assert.Equal(t, d.UID, plan.UID)
	assert.Contains(t, plan.Change, "from revision 2 ("+bad+") to revision 1 ("+good+")")
	// maxUnavailable 25% of 2 is 0: the two good pods kept serving, and
	// only the crashing surge pod goes.
	assert.Equal(t, 1, plan.PodsAffected)
	assert.Equal(t, int32(2), plan.HealthyBefore)
	assert.Equal(t, int32(2), plan.HealthyDuring)

	run := action.Run{RepairID: "repair-1", Limits: lim, Planned: &plan}
	res, err := e.Execute(ctx, c, p, run)
	require.NoError(t, err)
	assert.True(t, res.Changed)
	out, ok := res.Object.(*appsv1.Deployment)
	require.True(t, ok)
	assert.Equal(t, good, out.Spec.Template.Spec.Containers[0].Image)
	assert.NotContains(t, out.Spec.Template.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	assert.Equal(t, "repair-1", out.Annotations[action.RepairIDAnnotation])
	assert.Equal(t, d.Generation+1, res.Verify.Generation)
	assert.Equal(t, goodHash, res.Verify.PodTemplateHash, "back to the old ReplicaSet")
	assert.Equal(t, int64(2), res.Undo.Revision, "the revision rolled back from")

	after := actiontest.WaitRolledOut(t, k.Clientset, ns, "web")
	assert.Equal(t, "3", after.Annotations[revisionAnnotation])
	rss := actiontest.ReplicaSets(t, k.Clientset, ns)
	require.Len(t, rss, 2, "the old ReplicaSet is reused")
	rev, hash := revisionOf(rss, good)
	assert.Equal(t, 3, rev, "renumbered as the newest")
	assert.Equal(t, goodHash, hash)

	again, err := e.Execute(ctx, c, p, run)
	require.NoError(t, err)
	assert.False(t, again.Changed)
	assert.Equal(t, goodHash, again.Verify.PodTemplateHash)
	now, err := k.Clientset.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, good, now.Spec.Template.Spec.Containers[0].Image, "not rolled to the crashing release again")
	assert.Equal(t, res.Verify.Generation, now.Generation)
}

// Revisions 1 (good), 2 (crashes), 3 (good) and 4 (crashes): a rollback
// returns to 3, the last good revision, and to no other: not to 2, the
// one below the current, nor to 1, which was good but is not the last.
// An undo (Restore) returns to the revision its repair replaced.
func TestRollbackOnlyToTheLastGoodRevision(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	workloadtest.History(t, k.Clientset, ns, "web", 2, true, "registry.example.com/web:1", kubedev.CrashImageHost+"/web:2",
		"registry.example.com/web:3", kubedev.CrashImageHost+"/web:4")
	c := actiontest.Repairer(t, k)
	e := rollback.New()
	lim := action.Limits{MinReplicas: 1}

	for _, tc := range []struct {
		name     string
		revision int64
		why      string
	}{
		{"the current one", 4, "current template"},
		{"the one below the current, bad", 2, "not Deployment " + ns + "/web's last good revision, 3"},
		{"good once, not the last", 1, "not Deployment " + ns + "/web's last good revision, 3"},
		{"not kept", 9, "it has 1: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Plan(ctx, c, proposal(ns, "web", tc.revision), lim)
			actiontest.RequireRefused(t, err, action.ErrNotApplicable)
			require.ErrorContains(t, err, tc.why)
			_, err = e.Execute(ctx, c, proposal(ns, "web", tc.revision), action.Run{RepairID: "repair-1", Limits: lim})
			actiontest.RequireRefused(t, err, action.ErrNotApplicable)
		})
	}
	now, err := k.Clientset.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, kubedev.CrashImageHost+"/web:4", now.Spec.Template.Spec.Containers[0].Image, "nothing changed")
	assert.NotContains(t, now.Annotations, action.RepairIDAnnotation)

	for _, rev := range []int64{0, 3} {
		plan, err := e.Plan(ctx, c, proposal(ns, "web", rev), lim)
		require.NoError(t, err)
		assert.Contains(t, plan.Change, "from revision 4 ("+kubedev.CrashImageHost+"/web:4) to revision 3 (registry.example.com/web:3)")
	}
	plan, err := e.Plan(ctx, c, proposal(ns, "web", 3), lim)
	require.NoError(t, err)
	res, err := e.Execute(ctx, c, proposal(ns, "web", 3), action.Run{RepairID: "repair-1", Limits: lim, Planned: &plan})
	require.NoError(t, err)
	assert.True(t, res.Changed)
	assert.Equal(t, int64(4), res.Undo.Revision)
	d := actiontest.WaitRolledOut(t, k.Clientset, ns, "web")
	assert.Equal(t, "registry.example.com/web:3", d.Spec.Template.Spec.Containers[0].Image)
	assert.Equal(t, "5", d.Annotations[revisionAnnotation])

	// Undone, it goes back to what it replaced, bad as that was.
	res, err = e.Execute(ctx, c, proposal(ns, "web", 4), action.Run{RepairID: "undo-repair-1", Limits: lim, Restore: true})
	require.NoError(t, err)
	assert.True(t, res.Changed)
	out, ok := res.Object.(*appsv1.Deployment)
	require.True(t, ok)
	assert.Equal(t, kubedev.CrashImageHost+"/web:4", out.Spec.Template.Spec.Containers[0].Image)
}

func TestRollbackDryRun(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	actiontest.Create(t, k, actiontest.Deployment(ns, "web", "registry.example.com/web:1", 1))
	workloadtest.Settled(t, k.Clientset, ns, "web", 1, 1)
	workloadtest.Record(t, k.Clientset, ns, "web")
	release(t, k, ns, "web", "registry.example.com/web:2", 2)
	d := actiontest.WaitRolledOut(t, k.Clientset, ns, "web")
	c := actiontest.Repairer(t, k)

	res, err := rollback.New().Execute(ctx, c, proposal(ns, "web", 0), action.Run{RepairID: "repair-1", DryRun: true})
	require.NoError(t, err)
	assert.True(t, res.Changed)
	assert.True(t, res.DryRun)
	out, ok := res.Object.(*appsv1.Deployment)
	require.True(t, ok)
	assert.Equal(t, "registry.example.com/web:1", out.Spec.Template.Spec.Containers[0].Image, "as it would be")
	assert.Equal(t, d.Generation+1, out.Generation)

	time.Sleep(500 * time.Millisecond)
	now, err := k.Clientset.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "registry.example.com/web:2", now.Spec.Template.Spec.Containers[0].Image)
	assert.Equal(t, d.ResourceVersion, now.ResourceVersion)
	assert.NotContains(t, now.Annotations, action.RepairIDAnnotation)
}

func TestRollbackRefusals(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	actiontest.Create(t, k, actiontest.Deployment(ns, "fresh", "registry.example.com/web:1", 1))
	actiontest.Create(t, k, actiontest.Deployment(ns, "paused", "registry.example.com/web:1", 1))
	release(t, k, ns, "paused", "registry.example.com/web:2", 2)
	actiontest.WaitRolledOut(t, k.Clientset, ns, "paused")
	_, err := k.Clientset.AppsV1().Deployments(ns).Patch(ctx, "paused", types.MergePatchType, []byte(`{"spec":{"paused":true}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	c := actiontest.Repairer(t, k)
	e := rollback.New()

	for _, tc := range []struct {
		name   string
		p      *typesv1.RepairProposal
		reason error
	}{
		{"no previous revision", proposal(ns, "fresh", 0), action.ErrNotApplicable},
		{"paused", proposal(ns, "paused", 0), action.ErrNotApplicable},
		{"negative revision", proposal(ns, "fresh", -1), action.ErrInvalid},
		{"not found", proposal(ns, "ghost", 0), action.ErrNotFound},
		{"a pod", actiontest.WithKind(proposal(ns, "fresh", 0), "Pod"), action.ErrNotSupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Plan(ctx, c, tc.p, action.Limits{})
			actiontest.RequireRefused(t, err, tc.reason)
			_, err = e.Execute(ctx, c, tc.p, action.Run{RepairID: "repair-1"})
			actiontest.RequireRefused(t, err, tc.reason)
		})
	}
}
