package deploy_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vigil-ops/vigil/pkg/testkit"
)

// The analysis reads clusters as Vigil's read-only identity: it sees
// workloads, pods and events, and is refused Secrets and every write; the
// client it gets carries a short-lived token, not the cluster's
// credentials.
func TestReadersAreReadOnly(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	f := newFixture(t, time.Minute)
	f.addCluster(t, "main", k)
	ns := k.Namespace(t)
	ctx := t.Context()
	_, err := k.Clientset.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db"}, StringData: map[string]string{"password": "hunter2"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = k.Clientset.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}}, metav1.CreateOptions{})
	require.NoError(t, err)

	readers := f.svc.Readers()
	def, err := readers.DefaultCluster(ctx)
	require.NoError(t, err)
	require.Equal(t, "main", def, "the only cluster is the default")
	rc, err := readers.Reader(ctx, "main")
	require.NoError(t, err)

	_, err = rc.CoreV1().ConfigMaps(ns).Get(ctx, "cfg", metav1.GetOptions{})
	require.NoError(t, err, "reads what view reads")
	_, err = rc.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	_, err = rc.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)

	_, err = rc.CoreV1().Secrets(ns).Get(ctx, "db", metav1.GetOptions{})
	require.True(t, apierrors.IsForbidden(err), "no Secrets: %v", err)
	err = rc.CoreV1().ConfigMaps(ns).Delete(ctx, "cfg", metav1.DeleteOptions{})
	require.True(t, apierrors.IsForbidden(err), "no writes: %v", err)
	_, err = rc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "not-allowed"}}, metav1.CreateOptions{})
	require.True(t, apierrors.IsForbidden(err), "no writes: %v", err)

	// The same client again, until its token nears expiry.
	again, err := readers.Reader(ctx, "main")
	require.NoError(t, err)
	require.Same(t, rc, again)

	_, err = readers.Reader(ctx, "nope")
	require.Error(t, err)
}
