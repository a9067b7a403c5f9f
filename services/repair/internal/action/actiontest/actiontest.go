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
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/kubeaccess"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/workload/workloadtest"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
)

var repairers struct {
	mu      sync.Mutex
	clients map[*testkit.Kube]kubernetes.Interface
}

// Repairer returns a client acting as Vigil's repair identity on k,
// provisioned with k's admin client as the deploy service provisions it
// (kubeaccess.AccountConfig: a service account whose ClusterRole of
// kubeaccess.RepairRules is bound only where it is granted, a
// TokenRequest token, no other credential). Made once per cluster. It may
// act only in namespaces made with Namespace.
func Repairer(t testing.TB, k *testkit.Kube) kubernetes.Interface {
	t.Helper()
	repairers.mu.Lock()
	defer repairers.mu.Unlock()
	if c, ok := repairers.clients[k]; ok {
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The identity the deploy service provisions, as it provisions it.
	rc, _, err := kubeaccess.AccountConfig(ctx, k.Clientset, k.Config, kubeaccess.Repairer, time.Hour)
	require.NoError(t, err, "repair identity")
	c, err := kubernetes.NewForConfig(rc)
	require.NoError(t, err)
	if repairers.clients == nil {
		repairers.clients = map[*testkit.Kube]kubernetes.Interface{}
	}
	repairers.clients[k] = c
	return c
}

// Namespace is a namespace for the test (testkit's Kube.Namespace) where
// the repair identity is granted as in an app's namespace
// (kubeaccess.Grants, SourceApp), once the grant has taken effect.
func Namespace(t testing.TB, k *testkit.Kube) string {
	t.Helper()
	Repairer(t, k) // the role the grant binds
	ns := k.Namespace(t)
	require.NoError(t, Grant(t.Context(), k, ns))
	return ns
}

// Grant grants the repair identity namespace ns of k and waits until the
// authorizer, which learns of bindings from a watch, has seen it.
func Grant(ctx context.Context, k *testkit.Kube, ns string) error {
	if err := (kubeaccess.Grants{Admin: k.Clientset}).Grant(ctx, ns, kubeaccess.SourceApp); err != nil {
		return err
	}
	return WaitAllowed(ctx, k, ns, true)
}

// WaitAllowed waits until the repair identity may (allowed) or may not
// patch Deployments in ns, as a SubjectAccessReview answers.
func WaitAllowed(ctx context.Context, k *testkit.Kube, ns string, allowed bool) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		ok, err := CanPatchDeployments(ctx, k, ns)
		return ok == allowed, err
	})
	if err != nil {
		return fmt.Errorf("repairs in namespace %s allowed=%v did not take effect: %w", ns, allowed, err)
	}
	return nil
}

// CanPatchDeployments asks the API server (SubjectAccessReview, as
// `kubectl auth can-i patch deployments --as` does) whether the repair
// identity may patch Deployments in ns.
func CanPatchDeployments(ctx context.Context, k *testkit.Kube, ns string) (bool, error) {
	sar, err := k.Clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   kubeaccess.RepairUser,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + kubeaccess.Namespace, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: ns, Verb: "patch", Group: "apps", Resource: "deployments",
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return sar.Status.Allowed, nil
}

// Deployment is a Deployment of one container "app" running image
// (workloadtest.Deployment) whose pods stop within 5 s.
func Deployment(ns, name, image string, replicas int32) *appsv1.Deployment {
	d := workloadtest.Deployment(ns, name, image, replicas)
	// kwok deletes pods at once; a real kubelet would wait.
	d.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](5)
	return d
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
