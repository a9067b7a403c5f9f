package kubedev_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/vigil-ops/vigil/pkg/kubedev"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func deployment(name, image string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas:                ptr.To[int32](2),
			ProgressDeadlineSeconds: ptr.To[int32](600),
			Selector:                &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "app",
					Image: image,
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
						HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)},
					}},
				}}},
			},
		},
	}
}

func pods(t *testing.T, cs kubernetes.Interface, ns, app string) []corev1.Pod {
	t.Helper()
	list, err := cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=" + app})
	require.NoError(t, err)
	return list.Items
}

func ready(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// The control plane is a real one: the Deployment controller makes a
// ReplicaSet, the scheduler places its pods on kwok's nodes, kwok makes them
// Running and Ready, and the Deployment becomes Available.
func TestDeploymentRollsOut(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	cs := k.Clientset
	_, err := cs.AppsV1().Deployments(ns).Create(t.Context(), deployment("web", "registry.example/web:1"), metav1.CreateOptions{})
	require.NoError(t, err)

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), "web", metav1.GetOptions{})
		require.NoError(c, err)
		assert.Equal(c, int32(2), d.Status.AvailableReplicas)
		assert.Equal(c, int32(2), d.Status.UpdatedReplicas)
	}, time.Minute, 100*time.Millisecond)

	ps := pods(t, cs, ns, "web")
	require.Len(t, ps, 2)
	for _, p := range ps {
		assert.NotEmpty(t, p.Spec.NodeName, "scheduled")
		assert.Equal(t, corev1.PodRunning, p.Status.Phase)
		assert.True(t, ready(p))
		assert.NotEmpty(t, p.Status.PodIP)
	}
}

// An image on UnreadyImageHost runs and never becomes Ready, so the
// rollout never completes, as with a failing readiness probe.
func TestUnreadyImageNeverBecomesReady(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	cs := k.Clientset
	_, err := cs.AppsV1().Deployments(ns).Create(t.Context(), deployment("stuck", kubedev.UnreadyImageHost+"/web:1"), metav1.CreateOptions{})
	require.NoError(t, err)

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		ps := pods(t, cs, ns, "stuck")
		require.Len(c, ps, 2)
		for _, p := range ps {
			assert.Equal(c, corev1.PodRunning, p.Status.Phase)
		}
	}, time.Minute, 100*time.Millisecond)
	for _, p := range pods(t, cs, ns, "stuck") {
		assert.False(t, ready(p), "pod %s", p.Name)
	}
	d, err := cs.AppsV1().Deployments(ns).Get(t.Context(), "stuck", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Zero(t, d.Status.AvailableReplicas)
}

// An image on PullFailImageHost stays Pending in ImagePullBackOff.
func TestPullFailImageBacksOff(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	cs := k.Clientset
	_, err := cs.AppsV1().Deployments(ns).Create(t.Context(), deployment("nopull", kubedev.PullFailImageHost+"/web:1"), metav1.CreateOptions{})
	require.NoError(t, err)

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		ps := pods(t, cs, ns, "nopull")
		require.Len(c, ps, 2)
		for _, p := range ps {
			assert.Equal(c, corev1.PodPending, p.Status.Phase)
			require.Len(c, p.Status.ContainerStatuses, 1)
			w := p.Status.ContainerStatuses[0].State.Waiting
			require.NotNil(c, w)
			assert.Equal(c, "ImagePullBackOff", w.Reason)
		}
	}, time.Minute, 100*time.Millisecond)
}

// Missing binaries are an error that says how to get them.
func TestCheckBinariesSaysHowToBuild(t *testing.T) {
	t.Parallel()
	err := kubedev.CheckBinaries(t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "make k8s-bins")
	assert.Contains(t, err.Error(), "kube-apiserver")
	require.NoError(t, kubedev.CheckBinaries(testkit.KubeBinDir()))
}
