package deploy_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ops/vigil/pkg/bus"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/pkg/kubeaccess"
	"github.com/vigil-ops/vigil/pkg/reserved"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/deploy"
)

// canPatch asks the API server, as `kubectl auth can-i patch deployments
// --as=system:serviceaccount:vigil-system:vigil-repair -n ns` does,
// whether the repair identity may patch Deployments in ns.
func canPatch(t *testing.T, k *testkit.Kube, ns string) bool {
	t.Helper()
	sar, err := k.Clientset.AuthorizationV1().SubjectAccessReviews().Create(t.Context(), &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   kubeaccess.RepairUser,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + kubeaccess.Namespace, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: ns, Verb: "patch", Group: "apps", Resource: "deployments",
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return sar.Status.Allowed
}

// eventuallyCanPatch waits for the authorizer (which learns of bindings
// from a watch) to answer want for ns.
func eventuallyCanPatch(t *testing.T, k *testkit.Kube, ns string, want bool) {
	t.Helper()
	require.Eventually(t, func() bool { return canPatch(t, k, ns) == want }, 30*time.Second, 50*time.Millisecond,
		"the repair identity may patch deployments in %s: want %v", ns, want)
}

// grantedBy lists the sources of the repair identity's grants in ns.
func grantedBy(t *testing.T, k *testkit.Kube, ns string) []string {
	t.Helper()
	rbs, err := k.Clientset.RbacV1().RoleBindings(ns).List(t.Context(), metav1.ListOptions{LabelSelector: kubeaccess.LabelGrant})
	require.NoError(t, err)
	var out []string
	for _, rb := range rbs.Items {
		assert.Equal(t, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "vigil-repair"}, rb.RoleRef)
		assert.Equal(t, "vigil", rb.Labels["app.kubernetes.io/managed-by"])
		out = append(out, rb.Labels[kubeaccess.LabelGrant])
	}
	return out
}

// An app's namespace is granted to the repair identity by its deployment
// and only it: the identity (with the token deploy issues) may patch the
// app's Deployment, but not in kube-system, vigil-system, a reserved
// namespace or one Vigil never granted, and the admission policy installed
// with the cluster refuses an image change. Deleting the app takes the
// grant away, even though its namespace stays.
func TestAppNamespaceIsGrantedToRepairs(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	f := newFixture(t, 2*time.Minute)
	f.addCluster(t, "main", k)
	ctx := t.Context()
	_, err := k.Clientset.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Get(ctx, kubeaccess.RepairPolicy, metav1.GetOptions{})
	require.NoError(t, err, "the admission policy comes with the cluster")

	name := uniqueName("repaired-")
	_, err = f.apps.CreateApp(ctx, &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: name, Framework: "static", Plan: "basic", Image: "registry.example.com/site:1",
	}})
	require.NoError(t, err)
	d := f.deploy(t, name, "")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
	for _, s := range d.GetSteps() {
		if s.GetName() == "enable_auto_repair" {
			assert.Contains(t, s.GetMessage(), "Vigil's repair identity may act in namespace "+name)
		}
	}
	assert.Equal(t, []string{"app"}, grantedBy(t, k, name))
	other := k.Namespace(t)
	eventuallyCanPatch(t, k, name, true)
	for _, ns := range []string{"kube-system", "vigil-system", "monitoring", "ingress-nginx", other} {
		assert.False(t, canPatch(t, k, ns), ns)
	}

	// With the token the repair service gets from deploy.
	rc, err := f.svc.Repairers().Repairer(ctx, "main")
	require.NoError(t, err)
	deps := rc.AppsV1().Deployments(name)
	_, err = deps.Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"replicas":2}}`), metav1.PatchOptions{})
	require.NoError(t, err, "a scale in the app's namespace")
	before, err := k.Clientset.AppsV1().Deployments(name).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	_, err = deps.Patch(ctx, name, types.StrategicMergePatchType,
		[]byte(`{"spec":{"template":{"spec":{"serviceAccountName":"default","containers":[{"name":"app","image":"evil.example.com/miner:1"}]}}}}`), metav1.PatchOptions{})
	require.True(t, apierrors.IsForbidden(err), "the admission policy: %v", err)
	assert.Contains(t, err.Error(), kubeaccess.RepairPolicy)
	_, err = rc.AppsV1().Deployments("kube-system").Patch(ctx, "coredns", types.MergePatchType, []byte(`{"spec":{"replicas":0}}`), metav1.PatchOptions{})
	require.True(t, apierrors.IsForbidden(err), "kube-system: %v", err)
	after, err := k.Clientset.AppsV1().Deployments(name).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, before.Generation, after.Generation, "nothing changed")
	assert.Equal(t, before.Spec, after.Spec)

	_, err = f.apps.DeleteApp(ctx, &deployv1.DeleteAppRequest{Name: name})
	require.NoError(t, err)
	assert.Empty(t, grantedBy(t, k, name), "the grant goes with the app")
	ns, err := k.Clientset.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, corev1.NamespaceActive, ns.Status.Phase, "the namespace stays (no --delete-resources)")
	eventuallyCanPatch(t, k, name, false)
	t.Cleanup(func() {
		_ = k.Clientset.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// The operator's list (VIGIL_REPAIR_NAMESPACES) is granted in every
// cluster: one registered through the API at once, one registered before
// the service started when it starts, and a namespace taken off the list
// loses its grant. A cluster-wide binding left by an earlier version goes.
// An admin's grants (GrantRepair, for the namespace → team mapping) come
// and go on their own, and a reserved namespace is never granted.
func TestRepairNamespacesAndAdminGrants(t *testing.T) {
	t.Parallel()
	k := testkit.NewKube(t) // its own: the operator's list is cluster-wide state
	ctx := t.Context()
	for _, ns := range []string{"legacy", "batch", "team-x"} {
		_, err := k.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	_, err := k.Clientset.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "vigil-repair", Labels: map[string]string{"app.kubernetes.io/managed-by": "vigil"}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "vigil-repair"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: kubeaccess.RepairServiceAccount, Namespace: kubeaccess.Namespace}},
	}, metav1.CreateOptions{})
	require.NoError(t, err, "what an earlier version made")

	f := newFixtureWith(t, deploy.Options{RepairNamespaces: []string{"legacy", "batch"}})
	f.addCluster(t, "main", k)
	assert.Equal(t, []string{"allowed"}, grantedBy(t, k, "legacy"))
	assert.Equal(t, []string{"allowed"}, grantedBy(t, k, "batch"))
	_, err = k.Clientset.RbacV1().ClusterRoleBindings().Get(ctx, "vigil-repair", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "no cluster-wide binding: %v", err)
	eventuallyCanPatch(t, k, "batch", true)
	assert.False(t, canPatch(t, k, "team-x"))
	assert.False(t, canPatch(t, k, "default"))

	// An admin's grant (with its mapping, as the API grants: the service's
	// own provisioning at start, however late, reconciles the grants to
	// the mappings) and its revocation.
	_, err = f.clusters.MapNamespace(ctx, &deployv1.MapNamespaceRequest{Mapping: &deployv1.NamespaceMapping{
		Cluster: "main", Namespace: "team-x", Team: "x", AllowRepairs: true,
	}})
	require.NoError(t, err)
	require.NoError(t, f.svc.GrantRepair(ctx, "main", "team-x"), "granting again is harmless")
	assert.Equal(t, []string{"team"}, grantedBy(t, k, "team-x"))
	eventuallyCanPatch(t, k, "team-x", true)
	require.NoError(t, f.svc.GrantRepair(ctx, "main", "legacy"))
	require.NoError(t, f.svc.RevokeRepair(ctx, "main", "legacy"))
	assert.Equal(t, []string{"allowed"}, grantedBy(t, k, "legacy"), "the operator's grant stays")
	for _, ns := range []string{"kube-system", "vigil-system", "monitoring"} {
		err := f.svc.GrantRepair(ctx, "main", ns)
		var re *reserved.Error
		require.ErrorAs(t, err, &re, ns)
		assert.Empty(t, grantedBy(t, k, ns))
	}
	require.ErrorIs(t, f.svc.GrantRepair(ctx, "nope", "team-x"), deploy.ErrUnknownCluster)
	require.True(t, apierrors.IsNotFound(f.svc.GrantRepair(ctx, "main", "not-there")))

	// Restarted with batch off the list, the cluster already registered.
	kc, err := os.ReadFile(k.Kubeconfig)
	require.NoError(t, err)
	newFixtureWith(t, deploy.Options{
		RepairNamespaces: []string{"legacy"},
		DevCluster:       &deploy.Cluster{Name: "main", Kubeconfig: kc},
	})
	require.Eventually(t, func() bool { return len(grantedBy(t, k, "batch")) == 0 }, 30*time.Second, 100*time.Millisecond, "batch's grant revoked")
	assert.Equal(t, []string{"allowed"}, grantedBy(t, k, "legacy"))
	// The admins' grants follow their namespace mappings (allow_repairs,
	// TestNamespaceMappings): this deploy has none, so team-x's goes.
	require.Eventually(t, func() bool { return len(grantedBy(t, k, "team-x")) == 0 }, 30*time.Second, 100*time.Millisecond,
		"the admin's grant without a mapping is revoked")
	eventuallyCanPatch(t, k, "batch", false)

	require.NoError(t, f.svc.RevokeRepair(ctx, "main", "team-x"))
	assert.Empty(t, grantedBy(t, k, "team-x"))
	eventuallyCanPatch(t, k, "team-x", false)
}

// An admin maps a namespace Vigil did not create to a team: the mapping
// is listed and announced (namespace.mapped, namespace.unmapped, for every
// service's projection); with allow_repairs the repair identity may act
// there, until it is unmapped. A namespace Vigil made for an app cannot be
// mapped, a reserved one gets no repairs, and a refusal changes nothing.
func TestNamespaceMappings(t *testing.T) {
	t.Parallel()
	// Its own: registering a cluster reconciles the admins' grants in it
	// with that deploy's mappings, so another test's fixture registering
	// a shared cluster would revoke this one's.
	k := testkit.NewKube(t)
	f := newFixture(t, 2*time.Minute)
	f.addCluster(t, "main", k)
	ctx := t.Context()
	ns := k.Namespace(t)

	m, err := f.clusters.MapNamespace(ctx, &deployv1.MapNamespaceRequest{Mapping: &deployv1.NamespaceMapping{
		Cluster: "main", Namespace: ns, Team: "sre", AllowRepairs: true,
	}})
	require.NoError(t, err)
	assert.Equal(t, "sre", m.GetMapping().GetTeam())
	assert.NotEmpty(t, m.GetMapping().GetUpdatedBy())
	eventuallyCanPatch(t, k, ns, true)
	assert.Equal(t, []string{"team"}, grantedBy(t, k, ns))

	_, err = f.clusters.MapNamespace(ctx, &deployv1.MapNamespaceRequest{Mapping: &deployv1.NamespaceMapping{
		Cluster: "main", Namespace: "kube-system", Team: "sre", AllowRepairs: true,
	}})
	assert.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	assert.False(t, canPatch(t, k, "kube-system"))
	_, err = f.clusters.MapNamespace(ctx, &deployv1.MapNamespaceRequest{Mapping: &deployv1.NamespaceMapping{Namespace: "Not_A_Namespace", Team: "sre"}})
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)

	name := uniqueName("mapped-")
	_, err = f.apps.CreateApp(ctx, &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: name, Framework: "static", Plan: "basic", Image: "registry.example.com/site:1", Owner: "web",
	}})
	require.NoError(t, err)
	_, err = f.clusters.MapNamespace(ctx, &deployv1.MapNamespaceRequest{Mapping: &deployv1.NamespaceMapping{Namespace: name, Team: "sre"}})
	assert.Equal(t, codes.FailedPrecondition, status.Code(err), "an app's namespace is its team's: %v", err)

	list, err := f.clusters.ListNamespaceMappings(ctx, &deployv1.ListNamespaceMappingsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetMappings(), 1, "the refused mappings are not recorded")
	assert.Equal(t, ns, list.GetMappings()[0].GetNamespace())
	assert.True(t, list.GetMappings()[0].GetAllowRepairs())

	_, err = f.clusters.UnmapNamespace(ctx, &deployv1.UnmapNamespaceRequest{Cluster: "main", Namespace: ns})
	require.NoError(t, err)
	eventuallyCanPatch(t, k, ns, false)
	_, err = f.clusters.UnmapNamespace(ctx, &deployv1.UnmapNamespaceRequest{Cluster: "main", Namespace: ns})
	assert.Equal(t, codes.NotFound, status.Code(err))

	// Announced, in order, for the projections.
	var got []string
	require.Eventually(t, func() bool {
		got = nil
		s, err := f.js.Stream(ctx, "APPS")
		require.NoError(t, err)
		c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"namespace.>"}})
		require.NoError(t, err)
		for {
			msg, err := c.Next(jetstream.FetchMaxWait(200 * time.Millisecond))
			if err != nil {
				break
			}
			es, err := bus.Decode(msg.Subject(), msg.Data())
			require.NoError(t, err)
			for _, e := range es {
				switch e := e.(type) {
				case *eventsv1.NamespaceMapped:
					if e.GetNamespace() == ns {
						got = append(got, "mapped "+e.GetTeam())
					}
				case *eventsv1.NamespaceUnmapped:
					if e.GetNamespace() == ns {
						got = append(got, "unmapped")
					}
				}
			}
		}
		return len(got) >= 2
	}, 30*time.Second, 200*time.Millisecond)
	assert.Equal(t, []string{"mapped sre", "unmapped"}, got)
}
