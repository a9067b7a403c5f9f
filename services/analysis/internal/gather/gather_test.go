package gather_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/kubedev"
	"github.com/vigil-ops/vigil/pkg/subject"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/workload"
	"github.com/vigil-ops/vigil/pkg/workload/workloadtest"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
	"github.com/vigil-ops/vigil/services/analysis/internal/gather"
)

func TestMain(m *testing.M) { testkit.Main(m) }

var deployment = workloadtest.Deployment

// Alerts name a workload in many ways; each leads to the Deployment,
// through a pod's owner references when they name a pod; labels that name
// nothing that exists resolve to nothing, with why.
func TestResolve(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	ctx := t.Context()
	_, err := k.Clientset.AppsV1().Deployments(ns).Create(ctx, deployment(ns, "checkout", "registry.example.com/checkout:1", 1), metav1.CreateOptions{})
	require.NoError(t, err)
	var pod string
	require.Eventually(t, func() bool {
		pods, err := k.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=checkout"})
		if err != nil || len(pods.Items) == 0 {
			return false
		}
		pod = pods.Items[0].Name
		return true
	}, 30*time.Second, 100*time.Millisecond)

	want := &typesv1.ResourceRef{Cluster: "main", Namespace: ns, Kind: "Deployment", Name: "checkout"}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   *typesv1.ResourceRef
	}{
		{"pod, through ReplicaSet", map[string]string{"namespace": ns, "pod": pod}, want},
		{"deployment label", map[string]string{"namespace": ns, "deployment": "checkout"}, want},
		{"app label, by name", map[string]string{"namespace": ns, "app": "checkout"}, want},
		{"service label", map[string]string{"namespace": ns, "service": "checkout"}, want},
		{"a pod that is gone, then the app", map[string]string{"namespace": ns, "pod": "checkout-gone", "app": "checkout"}, want},
		{"nothing by that name", map[string]string{"namespace": ns, "app": "ghost"}, nil},
		{"no namespace", map[string]string{"app": "checkout"}, nil},
		{"the scrape job is not a Job", map[string]string{"namespace": ns, "job": "kubernetes-pods"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why, err := gather.Resolve(ctx, k.Clientset, "main", subject.NewIndex(nil, nil).Resolve(tc.labels))
			require.NoError(t, err)
			if tc.want == nil {
				require.Nil(t, got)
				require.NotEmpty(t, why)
				return
			}
			require.Equal(t, tc.want.String(), got.String())
		})
	}
}

// A Deployment whose image cannot be pulled: the bundle has the workload,
// its pods' waiting reason and the events, each an item with its source;
// a container that never ran has no logs to read, said as a gap.
func TestGatherAFailingDeployment(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	ctx := t.Context()
	_, err := k.Clientset.AppsV1().Deployments(ns).Create(ctx,
		deployment(ns, "shop", kubedev.PullFailImageHost+"/shop:2", 2), metav1.CreateOptions{})
	require.NoError(t, err)
	ref := &typesv1.ResourceRef{Cluster: "main", Namespace: ns, Kind: "Deployment", Name: "shop"}

	var b *evidence.Bundle
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		b = &evidence.Bundle{}
		gather.Gather(context.Background(), k.Clientset, ref, gather.Limits{}, b, time.Now())
		require.NotNil(c, b.Workload)
		// The deployment controller records the revision a moment after
		// it creates the ReplicaSet.
		require.NotZero(c, b.Workload.Revision)
		require.Len(c, b.Pods, 2)
		for _, p := range b.Pods {
			require.Len(c, p.Containers, 1)
			assert.Equal(c, "waiting", p.Containers[0].State)
			assert.Contains(c, []string{"ImagePullBackOff", "ErrImagePull"}, p.Containers[0].Reason)
		}
	}, 30*time.Second, 200*time.Millisecond)

	assert.Equal(t, int32(2), b.Workload.Replicas)
	assert.Equal(t, int32(0), b.Workload.ReadyReplicas)
	assert.Equal(t, kubedev.PullFailImageHost+"/shop:2", b.Workload.Containers[0].Image)
	assert.Equal(t, int64(1), b.Workload.Revision)
	require.NotEmpty(t, b.Workload.Revisions)
	sources := map[string]int{}
	for _, it := range b.Items {
		sources[it.Source]++
		assert.NotEmpty(t, it.ID)
		assert.NotEmpty(t, it.Summary)
	}
	assert.Equal(t, 1, sources["kubernetes:deployment"])
	assert.Equal(t, 4, sources["kubernetes:pod"], "each pod, and its container")
	assert.Equal(t, 1, sources["kubernetes:replicaset"], "the one revision")
	var found bool
	for _, it := range b.Items {
		if strings.HasPrefix(it.ID, "pod/") && strings.Contains(it.Summary, "ImagePullBackOff") || strings.Contains(it.Summary, "ErrImagePull") {
			found = true
		}
	}
	assert.True(t, found, "a pod item says why it waits: %v", b.Items)
}

// Gathering is bounded: with a limit of one pod, one pod is read.
func TestGatherIsBounded(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	ctx := t.Context()
	_, err := k.Clientset.AppsV1().Deployments(ns).Create(ctx, deployment(ns, "many", "registry.example.com/many:1", 3), metav1.CreateOptions{})
	require.NoError(t, err)
	ref := &typesv1.ResourceRef{Cluster: "main", Namespace: ns, Kind: "Deployment", Name: "many"}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		pods, err := k.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		require.NoError(c, err)
		require.Len(c, pods.Items, 3)
	}, 30*time.Second, 100*time.Millisecond)
	b := &evidence.Bundle{}
	gather.Gather(ctx, k.Clientset, ref, gather.Limits{Pods: 1}, b, time.Now())
	require.Len(t, b.Pods, 1)
}

// A StatefulSet's and a DaemonSet's releases are revisions too (their
// ControllerRevisions), so a release shortly before an incident is a change
// the rules see; only the settled current revision is known healthy.
func TestGatherRevisionsOfStatefulSetsAndDaemonSets(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	ctx := t.Context()
	labels := map[string]string{"app": "db"}
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/db:1"}}},
	}
	replicas := int32(1)
	sts, err := k.Clientset.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec:       appsv1.StatefulSetSpec{Replicas: &replicas, ServiceName: "db", Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = k.Clientset.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: kubedev.CrashImageHost + "/agent:1"}}},
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	gatherOf := func(c *assert.CollectT, kind, name string) *evidence.Bundle {
		b := &evidence.Bundle{}
		gather.Gather(context.Background(), k.Clientset, &typesv1.ResourceRef{Cluster: "main", Namespace: ns, Kind: kind, Name: name}, gather.Limits{}, b, time.Now())
		require.NotNil(c, b.Workload)
		return b
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		b := gatherOf(c, "StatefulSet", "db")
		require.Equal(c, int64(1), b.Workload.Revision)
		require.Len(c, b.Workload.Revisions, 1)
		assert.True(c, b.Workload.Revisions[0].Healthy, "settled at revision 1")
		assert.Equal(c, []string{"registry.example.com/db:1"}, b.Workload.Revisions[0].Images)
		assert.WithinDuration(c, time.Now(), b.Workload.Revisions[0].CreatedAt, time.Minute)
	}, 30*time.Second, 200*time.Millisecond)

	// A new release that crash-loops: revision 2, current, not healthy.
	sts, err = k.Clientset.AppsV1().StatefulSets(ns).Get(ctx, sts.Name, metav1.GetOptions{})
	require.NoError(t, err)
	sts.Spec.Template.Spec.Containers[0].Image = kubedev.CrashImageHost + "/db:2"
	_, err = k.Clientset.AppsV1().StatefulSets(ns).Update(ctx, sts, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		b := gatherOf(c, "StatefulSet", "db")
		require.Equal(c, int64(2), b.Workload.Revision)
		require.Len(c, b.Workload.Revisions, 2)
		assert.Equal(c, int64(2), b.Workload.Revisions[0].Number, "newest first")
		assert.False(c, b.Workload.Revisions[0].Healthy)
		assert.False(c, b.Workload.Revisions[1].Healthy, "an older ControllerRevision does not say it was available")
		var ids []string
		for _, it := range b.Items {
			if it.Source == "kubernetes:controllerrevision" {
				ids = append(ids, it.ID)
			}
		}
		assert.Equal(c, []string{"statefulset/db/revision/2", "statefulset/db/revision/1"}, ids)
	}, 30*time.Second, 200*time.Millisecond)

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		b := gatherOf(c, "DaemonSet", "agent")
		require.Equal(c, int64(1), b.Workload.Revision)
		require.Len(c, b.Workload.Revisions, 1)
		assert.False(c, b.Workload.Revisions[0].Healthy, "it crash-loops")
		assert.Equal(c, int32(2), b.Workload.Replicas, "one pod per node")
	}, 30*time.Second, 200*time.Millisecond)
}

// The Deployment's revisions are judged by the workload model: its last
// good revision, a release partly healthy, and the autoscaler that owns
// its count (at its maximum here), each in the bundle and its items.
func TestGatherTheWorkloadModel(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	ctx := t.Context()
	c := k.Clientset
	_, err := c.AppsV1().Deployments(ns).Create(ctx, deployment(ns, "shop", "registry.example.com/shop:1", 3), metav1.CreateOptions{})
	require.NoError(t, err)
	workloadtest.Settled(t, c, ns, "shop", 1, 3)
	workloadtest.Autoscaler(t, c, ns, "shop", 1, 3)
	w, err := workload.Read(ctx, c, ns, "shop", time.Now())
	require.NoError(t, err)
	bad := w.Current.Pods[0].Name
	workloadtest.Crash(t, c, ns, bad)

	b := &evidence.Bundle{}
	gather.Gather(ctx, c, &typesv1.ResourceRef{Cluster: "main", Namespace: ns, Kind: "Deployment", Name: "shop"}, gather.Limits{}, b, time.Now())
	require.NotNil(t, b.Workload, "gaps: %v", b.Gaps)
	assert.Equal(t, []string{bad}, b.Workload.FailingPods)
	assert.Zero(t, b.Workload.LastGood, "the current revision is the only one")
	require.Len(t, b.Workload.Revisions, 1)
	assert.False(t, b.Workload.Revisions[0].Healthy)
	assert.Equal(t, "2 of 3 replicas ready for 2m0s", b.Workload.Revisions[0].Why)
	assert.Equal(t, &evidence.Autoscaler{Name: "shop", Min: 1, Max: 3}, b.Workload.Autoscaler)
	var ids []string
	for _, it := range b.Items {
		ids = append(ids, it.ID)
	}
	assert.Contains(t, ids, "deployment/shop/autoscaler")
	assert.Contains(t, ids, "deployment/shop/revision/1")
}
