package actiontest_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/repair/internal/action/actiontest"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// The repair identity reads workloads and pods and may delete pods; it
// may not read Secrets, delete a namespace, create anything, delete a
// Deployment, use the scale subresource, exec into or read logs of a pod.
func TestRepairerIsLeastPrivilege(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	d := actiontest.Create(t, k, actiontest.Deployment(ns, "web", "registry.example.com/web:1", 1))
	_, err := k.Clientset.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db"}, StringData: map[string]string{"password": "hunter2"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	pods, err := k.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, pods.Items, 1)
	pod := pods.Items[0].Name

	c := actiontest.Repairer(t, k)
	_, err = c.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	_, err = c.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	_, err = c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)

	forbidden := func(what string, err error) {
		t.Helper()
		require.True(t, apierrors.IsForbidden(err), "%s: want Forbidden, got %v", what, err)
	}
	_, err = c.CoreV1().Secrets(ns).Get(ctx, "db", metav1.GetOptions{})
	forbidden("get a secret", err)
	_, err = c.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	forbidden("list secrets", err)
	forbidden("delete a namespace", c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}))
	_, err = c.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	forbidden("list config maps", err)
	_, err = c.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "intruder"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example.com/x:1"}}},
	}, metav1.CreateOptions{})
	forbidden("create a pod", err)
	d.ResourceVersion = ""
	d.Name = "web-copy"
	_, err = c.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	forbidden("create a deployment", err)
	forbidden("delete a deployment", c.AppsV1().Deployments(ns).Delete(ctx, "web", metav1.DeleteOptions{}))
	_, err = c.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
	forbidden("update a deployment", err)
	_, err = c.AppsV1().Deployments(ns).UpdateScale(ctx, "web", &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: 3},
	}, metav1.UpdateOptions{})
	forbidden("the scale subresource", err)
	_, err = c.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(ctx)
	forbidden("read a pod's logs", err)
	err = c.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").Name(pod).SubResource("exec").
		Param("command", "sh").Param("stdout", "true").Do(ctx).Error()
	forbidden("exec in a pod", err)
	_, err = c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	forbidden("list nodes", err)
	_, err = c.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
	forbidden("read RBAC", err)
}
