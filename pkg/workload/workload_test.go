package workload_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vigil-ops/vigil/pkg/kubedev"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/workload"
	"github.com/vigil-ops/vigil/pkg/workload/workloadtest"
)

func TestMain(m *testing.M) { testkit.Main(m) }

const good1, good3 = "registry.example.com/web:1", "registry.example.com/web:3"

var bad2, bad4 = kubedev.CrashImageHost + "/web:2", kubedev.CrashImageHost + "/web:4"

// Revisions 1 (good, recorded before it was replaced), 2 (crashes), 3
// (good) and 4 (crashes): the last good revision is 3; 2 is not good,
// and 1, scaled to zero, is known good only by its record.
func TestABadRevisionBetweenTwoGoodOnes(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	ctx := t.Context()
	c := k.Clientset
	workloadtest.History(t, c, ns, "web", 2, true, good1, bad2, good3, bad4)

	w, err := workload.Read(ctx, c, ns, "web", time.Now())
	require.NoError(t, err)
	require.Len(t, w.Revisions, 4)
	assert.Equal(t, int64(4), w.Current.Number)
	require.NotNil(t, w.LastGood())
	assert.Equal(t, int64(3), w.LastGood().Number)
	assert.Equal(t, []string{good3}, w.LastGood().Images())
	assert.False(t, w.Revision(2).Good, w.Revision(2).Why)
	assert.True(t, w.Revision(1).Good, "recorded before it was replaced: %s", w.Revision(1).Why)
	assert.False(t, w.PartlyHealthy())
}

// Revisions 1 (good, still serving), 2 and 3 (both crash): the last good
// revision is 1, not 2, the one below the current.
func TestTwoBadReleasesInARow(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	ctx := t.Context()
	c := k.Clientset
	workloadtest.History(t, c, ns, "web", 2, false, good1, bad2, kubedev.CrashImageHost+"/web:3")

	w, err := workload.Read(ctx, c, ns, "web", time.Now())
	require.NoError(t, err)
	assert.Equal(t, int64(3), w.Current.Number)
	require.NotNil(t, w.LastGood())
	assert.Equal(t, int64(1), w.LastGood().Number)
	assert.Equal(t, int32(2), w.LastGood().Settled, "still serving")
	assert.False(t, w.Revision(2).Good)
}

// Three replicas of a release, two serving and one crashing: the release
// is partly healthy, and with nothing before it there is no good revision
// to return to.
func TestOneBadReplicaOfThree(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	ctx := t.Context()
	c := k.Clientset
	workloadtest.History(t, c, ns, "web", 3, false, good1)
	w, err := workload.Read(ctx, c, ns, "web", time.Now())
	require.NoError(t, err)
	assert.True(t, w.Current.Good, w.Current.Why)
	workloadtest.Crash(t, c, ns, w.Current.Pods[1].Name)

	w, err = workload.Read(ctx, c, ns, "web", time.Now())
	require.NoError(t, err)
	assert.True(t, w.PartlyHealthy())
	assert.Equal(t, []string{w.Current.Pods[1].Name}, w.Current.Failing)
	assert.Equal(t, int32(2), w.Current.Settled)
	assert.Equal(t, int32(5), w.Current.Restarts)
	assert.False(t, w.Current.Good)
	assert.Nil(t, w.LastGood())
}

// An autoscaler at its maximum owns the count: nothing to add.
func TestAutoscalerAtItsMaximum(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	ctx := t.Context()
	c := k.Clientset
	_, err := c.AppsV1().Deployments(ns).Create(ctx, workloadtest.Deployment(ns, "web", good1, 3), metav1.CreateOptions{})
	require.NoError(t, err)
	workloadtest.Autoscaler(t, c, ns, "web", 1, 3)

	d, err := c.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	a, err := workload.ReadAutoscaler(ctx, c, d)
	require.NoError(t, err)
	require.Equal(t, &workload.Autoscaler{Name: "web", Min: 1, Max: 3}, a)
	assert.True(t, a.AtMax(workload.Replicas(d)))
	assert.Contains(t, a.Allows(5), "HorizontalPodAutoscaler web owns the replica count")
}

// A pod leads to its Deployment through its ReplicaSet; a pod that is gone
// is named with the NotFound.
func TestController(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	ctx := t.Context()
	c := k.Clientset
	workloadtest.History(t, c, ns, "web", 1, false, good1)
	w, err := workload.Read(ctx, c, ns, "web", time.Now())
	require.NoError(t, err)

	got, err := workload.Controller(ctx, c, ns, "Pod", w.Current.Pods[0].Name)
	require.NoError(t, err)
	assert.Equal(t, workload.Ref{Kind: "Deployment", Name: "web"}, got)
	got, err = workload.Controller(ctx, c, ns, "Deployment", "web")
	require.NoError(t, err)
	assert.Equal(t, workload.Ref{Kind: "Deployment", Name: "web"}, got)
	got, err = workload.Controller(ctx, c, ns, "Pod", "web-gone")
	require.True(t, apierrors.IsNotFound(err), "%v", err)
	assert.Equal(t, workload.Ref{Kind: "Pod", Name: "web-gone"}, got)
}
