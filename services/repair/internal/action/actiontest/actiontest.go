// Package actiontest is what the executors' tests share: a client acting
// as Vigil's repair identity on the test control plane (so every test
// shows the executors need no more than pkg/kubeaccess.RepairRules), and
// Deployments that have rolled out.
package actiontest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/kubeaccess"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
)

var repairers struct {
	mu      sync.Mutex
	clients map[*testkit.Kube]kubernetes.Interface
}

// Repairer returns a client acting as Vigil's repair identity on k,
// provisioned with k's admin client as the deploy service provisions it
// (kubeaccess.AccountConfig: a service account bound to a ClusterRole of
// kubeaccess.RepairRules, a TokenRequest token, no other credential).
// Made once per cluster.
func Repairer(t testing.TB, k *testkit.Kube) kubernetes.Interface {
	t.Helper()
	repairers.mu.Lock()
	defer repairers.mu.Unlock()
	if c, ok := repairers.clients[k]; ok {
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := repairer(ctx, k)
	require.NoError(t, err, "repair identity")
	if repairers.clients == nil {
		repairers.clients = map[*testkit.Kube]kubernetes.Interface{}
	}
	repairers.clients[k] = c
	return c
}

func repairer(ctx context.Context, k *testkit.Kube) (kubernetes.Interface, error) {
	// The identity the deploy service provisions, as it provisions it.
	rc, _, err := kubeaccess.AccountConfig(ctx, k.Clientset, k.Config, kubeaccess.Repairer, time.Hour)
	if err != nil {
		return nil, err
	}
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	// The authorizer learns of the binding from a watch: wait until it
	// has.
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := c.AppsV1().Deployments(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{Limit: 1})
		if apierrors.IsForbidden(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("the binding did not take effect: %w", err)
	}
	return c, nil
}

// Deployment is a Deployment of one container "app" running image.
func Deployment(ns, name, image string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app.kubernetes.io/name": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "app", Image: image}},
					// kwok deletes pods at once; a real kubelet would wait.
					TerminationGracePeriodSeconds: ptr.To[int64](5),
				},
			},
		},
	}
}

// Create creates d with k's admin client and waits for it to roll out.
func Create(t testing.TB, k *testkit.Kube, d *appsv1.Deployment) *appsv1.Deployment {
	t.Helper()
	_, err := k.Clientset.AppsV1().Deployments(d.Namespace).Create(t.Context(), d, metav1.CreateOptions{})
	require.NoError(t, err)
	return WaitRolledOut(t, k.Clientset, d.Namespace, d.Name)
}

// WaitRolledOut waits until Deployment ns/name is fully rolled out (the
// controller saw its latest spec, every replica is updated and available
// and no old one is left) and returns it.
func WaitRolledOut(t testing.TB, c kubernetes.Interface, ns, name string) *appsv1.Deployment {
	t.Helper()
	var d *appsv1.Deployment
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		var err error
		d, err = c.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		require.NoError(ct, err)
		want := *d.Spec.Replicas
		require.Equal(ct, d.Generation, d.Status.ObservedGeneration, "observed")
		require.Equal(ct, want, d.Status.UpdatedReplicas, "updated")
		require.Equal(ct, want, d.Status.Replicas, "no old replicas")
		require.Equal(ct, want, d.Status.AvailableReplicas, "available")
		pods, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + name})
		require.NoError(ct, err)
		require.Len(ct, pods.Items, int(want), "no terminating pods left")
	}, time.Minute, 100*time.Millisecond)
	return d
}

// Proposal is a proposal of action a on the object kind ns/name.
func Proposal(a typesv1.RepairAction, kind, ns, name string) *typesv1.RepairProposal {
	return &typesv1.RepairProposal{
		Action: a,
		Target: &typesv1.ResourceRef{Cluster: "main", Namespace: ns, Kind: kind, Name: name},
	}
}

// WithKind is p with its target's kind changed to kind.
func WithKind(p *typesv1.RepairProposal, kind string) *typesv1.RepairProposal {
	p.Target.Kind = kind
	return p
}

// ReplicaSets lists the ReplicaSets in ns, by revision.
func ReplicaSets(t testing.TB, c kubernetes.Interface, ns string) []appsv1.ReplicaSet {
	t.Helper()
	list, err := c.AppsV1().ReplicaSets(ns).List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	return list.Items
}

// RequireRefused requires err to be a refusal (*action.RefusedError) for
// reason.
func RequireRefused(t testing.TB, err error, reason error) {
	t.Helper()
	var refused *action.RefusedError
	require.ErrorAs(t, err, &refused)
	require.ErrorIs(t, err, reason)
}
