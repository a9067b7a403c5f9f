package deploy_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/vigil-ops/vigil/pkg/bus"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/deploy"
)

// deployRefused starts a deployment of name and returns the status the
// stream ended with before sending anything.
func (f *fixture) deployRefused(t *testing.T, name string) *status.Status {
	t.Helper()
	s, err := f.apps.DeployApp(t.Context(), &deployv1.DeployAppRequest{Name: name})
	require.NoError(t, err)
	m, err := s.Recv()
	require.Error(t, err, "a deployment was recorded: %v", m)
	return status.Convert(err)
}

// preconditionSubjects are the subjects of a status's PreconditionFailure.
func preconditionSubjects(st *status.Status) map[string]string {
	out := map[string]string{}
	for _, d := range st.Details() {
		if pf, ok := d.(*errdetails.PreconditionFailure); ok {
			for _, v := range pf.GetViolations() {
				out[v.GetSubject()] = v.GetType()
			}
		}
	}
	return out
}

// foreignNamespace makes namespace a team's own on k: labelled team=sre,
// holding a ConfigMap of theirs. testkit deletes it when the test ends.
func foreignNamespace(t *testing.T, k *testkit.Kube) string {
	t.Helper()
	ns := k.Namespace(t)
	ctx := t.Context()
	_, err := k.Clientset.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"team":"sre"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	_, err = k.Clientset.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "prometheus-config"},
		Data:       map[string]string{"prometheus.yml": "global: {}"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return ns
}

// requireUntouched checks that Vigil applied nothing to namespace ns: its
// labels are before's, and it holds none of the objects Vigil renders.
func requireUntouched(t *testing.T, k *testkit.Kube, ns string, before map[string]string) {
	t.Helper()
	ctx, cs := t.Context(), k.Clientset
	got, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, before, got.Labels, "the namespace's labels are unchanged")
	assert.Equal(t, corev1.NamespaceActive, got.Status.Phase)
	nps, err := cs.NetworkingV1().NetworkPolicies(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, nps.Items, "no NetworkPolicy")
	deps, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, deps.Items, "no Deployment")
	_, err = cs.CoreV1().ServiceAccounts(ns).Get(ctx, ns, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "no ServiceAccount of the app: %v", err)
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "prometheus-config", metav1.GetOptions{})
	require.NoError(t, err, "the team's ConfigMap is still there")
	assert.Equal(t, "global: {}", cm.Data["prometheus.yml"])
}

// An app whose namespace exists and is someone else's (created before,
// unlabelled for Vigil) is not deployed: FailedPrecondition naming the
// namespace, the missing label and the labels it has, nothing recorded,
// nothing applied. A deploy.requested from another service, which skips
// the API, records a deployment that fails at its first step, before
// applying anything. Deleting the app with its resources leaves the
// namespace and the team's ConfigMap alone, and deletes only what is
// labelled as Vigil's for the app in it.
func TestForeignNamespaceIsLeftAlone(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	f := newFixture(t, time.Minute)
	f.addCluster(t, "main", k)
	ns := foreignNamespace(t, k)
	ctx, cs := t.Context(), k.Clientset
	before, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	require.NoError(t, err)

	_, err = f.apps.CreateApp(ctx, &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: ns, Framework: "go", Plan: "basic", Image: "registry.example.com/x:1",
	}})
	require.NoError(t, err, "the cluster is not asked at creation: the namespace may be made later")

	st := f.deployRefused(t, ns)
	require.Equal(t, codes.FailedPrecondition, st.Code(), "%v", st.Err())
	assert.Contains(t, st.Message(), "namespace "+ns)
	assert.Contains(t, st.Message(), "app.kubernetes.io/managed-by=vigil", "names the missing label")
	assert.Contains(t, st.Message(), "team=sre", "says whose it seems to be")
	assert.Equal(t, map[string]string{"namespace/" + ns: "NAMESPACE_NOT_OWNED"}, preconditionSubjects(st))
	list, err := f.apps.ListDeployments(ctx, &deployv1.ListDeploymentsRequest{App: ns})
	require.NoError(t, err)
	assert.Empty(t, list.GetDeployments(), "no deployment recorded")
	requireUntouched(t, k, ns, before.Labels)

	// Another service asks for a deploy over the bus.
	e := &eventsv1.DeployRequested{Meta: bus.NewMeta("deploy", nil), App: ns, RequestedBy: "repair"}
	m, err := bus.Encode(ctx, e)
	require.NoError(t, err)
	require.NoError(t, bus.NewPublisher(f.js, nil).PublishMessages(ctx, m))
	var d *deployv1.Deployment
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got, err := f.apps.GetDeployment(ctx, &deployv1.GetDeploymentRequest{Id: e.GetMeta().GetId()})
		require.NoError(c, err)
		d = got.GetDeployment()
		assert.Equal(c, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, d.GetStatus())
	}, 30*time.Second, 100*time.Millisecond)
	assert.Contains(t, d.GetReason(), "ForeignNamespace: namespace "+ns)
	assert.Equal(t, deployv1.StepStatus_STEP_STATUS_FAILED, steps(d)["create_namespace"])
	for _, s := range d.GetSteps()[1:] {
		assert.Equal(t, deployv1.StepStatus_STEP_STATUS_PENDING, s.GetStatus(), s.GetName())
	}
	requireUntouched(t, k, ns, before.Labels)

	// Something labelled as Vigil's for the app, in that namespace: the
	// only thing delete --delete-resources takes.
	_, err = cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: ns + "-config", Labels: map[string]string{"app.kubernetes.io/managed-by": "vigil", "vigil.dev/app": ns},
	}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = f.apps.DeleteApp(ctx, &deployv1.DeleteAppRequest{Name: ns, DeleteResources: true})
	require.NoError(t, err)
	_, err = f.apps.GetApp(ctx, &deployv1.GetAppRequest{Name: ns})
	assert.Equal(t, codes.NotFound, status.Code(err), "the app is forgotten")
	_, err = cs.CoreV1().ConfigMaps(ns).Get(ctx, ns+"-config", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the app's labelled ConfigMap is deleted: %v", err)
	requireUntouched(t, k, ns, before.Labels)
}

// A namespace Vigil created for another app is not this app's either.
func TestNamespaceOfAnotherAppIsRefused(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	f := newFixture(t, time.Minute)
	f.addCluster(t, "main", k)
	name := uniqueName("taken-")
	labels := map[string]string{"app.kubernetes.io/managed-by": "vigil", "vigil.dev/app": "cart"}
	_, err := k.Clientset.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = k.Clientset.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	_, err = f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: name, Framework: "go", Plan: "basic", Image: "registry.example.com/x:1",
	}})
	require.NoError(t, err)

	st := f.deployRefused(t, name)
	require.Equal(t, codes.FailedPrecondition, st.Code(), "%v", st.Err())
	assert.Contains(t, st.Message(), "namespace "+name)
	assert.Contains(t, st.Message(), "vigil.dev/app="+name, "names the missing label")
	assert.Contains(t, st.Message(), "Vigil's app cart", "says whose it is")
	s, err := f.apps.RollbackApp(t.Context(), &deployv1.RollbackAppRequest{Name: name})
	require.NoError(t, err)
	_, err = s.Recv()
	assert.Equal(t, codes.FailedPrecondition, status.Code(err), "a rollback is refused the same way: %v", err)

	_, err = f.apps.DeleteApp(t.Context(), &deployv1.DeleteAppRequest{Name: name, DeleteResources: true})
	require.NoError(t, err)
	ns, err := k.Clientset.CoreV1().Namespaces().Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err, "the other app's namespace is not deleted")
	assert.Equal(t, corev1.NamespaceActive, ns.Status.Phase)
	assert.Equal(t, labels["vigil.dev/app"], ns.Labels["vigil.dev/app"])
}

// The namespace Vigil created for the app is deleted with the app.
func TestOwnNamespaceIsDeletedWithTheApp(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	f := newFixture(t, 2*time.Minute)
	f.addCluster(t, "main", k)
	name := uniqueName("own-")
	_, err := f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: name, Framework: "static", Plan: "basic", Image: "nginx:1.27",
	}})
	require.NoError(t, err)
	d := f.deploy(t, name, "")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
	// A redeploy into the namespace it made is allowed.
	d = f.deploy(t, name, "nginx:1.28")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())

	_, err = f.apps.DeleteApp(t.Context(), &deployv1.DeleteAppRequest{Name: name, DeleteResources: true})
	require.NoError(t, err)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		ns, err := k.Clientset.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			require.NoError(c, err)
			assert.Equal(c, corev1.NamespaceTerminating, ns.Status.Phase)
		}
	}, 30*time.Second, 100*time.Millisecond)
}

// Reserved names (the app's name is its namespace's) are refused at
// creation, naming the field: Kubernetes' own, the namespaces the apps'
// NetworkPolicy trusts, Vigil's own (vigil-system, where its cluster
// accounts live, and VIGIL_NAMESPACE) and the operator's list.
func TestReservedNamespacesAreRefused(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	f := newFixtureWith(t, deploy.Options{ReservedNamespaces: []string{"vigil", "team-*"}, Namespace: "platform"})
	f.addCluster(t, "main", k)
	for _, tc := range []struct{ name, why string }{
		{"default", "Kubernetes"},
		{"kube-system", "Kubernetes"},
		{"kube-anything", "Kubernetes"},
		{"ingress-nginx", "NetworkPolicy"},
		{"monitoring", "NetworkPolicy"},
		{"vigil", "VIGIL_RESERVED_NAMESPACES"},
		{"team-payments", "VIGIL_RESERVED_NAMESPACES"},
		{"vigil-system", "Vigil's own"},
		{"platform", "Vigil's own"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: &deployv1.App{
				Name: tc.name, Framework: "go", Plan: "basic", Image: "registry.example.com/x:1",
			}})
			assertField(t, err, "app.name")
			assert.Contains(t, status.Convert(err).Proto().String(), tc.why)
		})
	}
	list, err := f.apps.ListApps(t.Context(), &deployv1.ListAppsRequest{})
	require.NoError(t, err)
	assert.Empty(t, list.GetApps(), "nothing written")

	// Names that only look alike are fine.
	for _, name := range []string{"vigil-shop", "teams", "monitoring2"} {
		_, err := f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: &deployv1.App{
			Name: name, Framework: "go", Plan: "basic", Image: "registry.example.com/x:1",
		}})
		require.NoError(t, err, name)
	}
}

func TestReservedNamespacesOption(t *testing.T) {
	t.Parallel()
	key := make([]byte, 32)
	for _, bad := range []string{"Team", "*", "a_b"} {
		err := deploy.Options{EncryptionKey: key, ReservedNamespaces: []string{bad}}.Validate()
		require.ErrorContains(t, err, "VIGIL_RESERVED_NAMESPACES")
		require.ErrorContains(t, err, bad)
	}
	require.NoError(t, deploy.Options{EncryptionKey: key, ReservedNamespaces: []string{"vigil", "team-*"}}.Validate())
	err := deploy.Options{EncryptionKey: key, Namespace: "Vigil"}.Validate()
	require.ErrorContains(t, err, "VIGIL_NAMESPACE")
	require.NoError(t, deploy.Options{EncryptionKey: key, Namespace: "vigil"}.Validate())
}

// snapshot is what a namespace and the app's Deployment in it are, by
// resource version: equal snapshots mean nothing was written to either.
func snapshot(t *testing.T, k *testkit.Kube, ns string) [2]string {
	t.Helper()
	n, err := k.Clientset.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{})
	require.NoError(t, err)
	d, err := k.Clientset.AppsV1().Deployments(ns).Get(t.Context(), ns, metav1.GetOptions{})
	require.NoError(t, err)
	return [2]string{n.ResourceVersion, d.ResourceVersion}
}

// A namespace an app left behind (deleted without --delete-resources) is
// not inherited by another team's new app of the same name: refused,
// naming the team that left it, nothing created and the namespace
// untouched; neither the other team's operator nor an admin who does not
// say so explicitly get it. An admin's adopt_namespace hands it over; the
// team that left it takes it back without one.
func TestDeletedAppsNamespaceIsNotInheritedByAnotherTeam(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	f := newFixture(t, 2*time.Minute)
	f.addCluster(t, "main", k)
	ann, bob := f.appsAs(t, "ann-of-a"), f.appsAs(t, "bob-of-b")
	name := uniqueName("left-")
	app := func(owner string) *deployv1.App {
		return &deployv1.App{Name: name, Framework: "static", Plan: "basic", Image: "nginx:1.27", Owner: owner}
	}
	_, err := ann.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: app("team-a")})
	require.NoError(t, err)
	d := f.deploy(t, name, "")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
	t.Cleanup(func() {
		_ = k.Clientset.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	_, err = ann.DeleteApp(t.Context(), &deployv1.DeleteAppRequest{Name: name})
	require.NoError(t, err)
	before := snapshot(t, k, name)

	for _, c := range []struct {
		who   string
		apps  deployv1.AppServiceClient
		adopt bool
		code  codes.Code
	}{
		{"team b's operator", bob, false, codes.FailedPrecondition},
		{"team b's operator, adopting", bob, true, codes.PermissionDenied},
		{"an admin, not saying so", f.apps, false, codes.FailedPrecondition},
	} {
		_, err := c.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: app("team-b"), AdoptNamespace: c.adopt})
		st := status.Convert(err)
		require.Equal(t, c.code, st.Code(), "%s: %v", c.who, err)
		if c.code == codes.FailedPrecondition {
			assert.Equal(t, map[string]string{"namespace/" + name: "NAMESPACE_OF_DELETED_APP"}, preconditionSubjects(st))
			assert.Contains(t, st.Message(), "team team-a", "%s: names the team that left it", c.who)
			assert.Contains(t, st.Message(), "--adopt-namespace", "%s: says how", c.who)
		}
		_, err = f.apps.GetApp(t.Context(), &deployv1.GetAppRequest{Name: name})
		require.Equal(t, codes.NotFound, status.Code(err), "%s: nothing created", c.who)
		require.Equal(t, before, snapshot(t, k, name), "%s: the namespace is untouched", c.who)
	}

	// The admin hands it over; team b deploys into it.
	_, err = f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: app("team-b"), AdoptNamespace: true})
	require.NoError(t, err)
	s, err := bob.DeployApp(t.Context(), &deployv1.DeployAppRequest{Name: name, Image: "nginx:1.28"})
	d = last(t, s, err)
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
	assert.Equal(t, "nginx:1.28", liveImage(t, k.Clientset, name, name))

	// The team that left a namespace takes it back without an admin.
	again := uniqueName("back-")
	_, err = ann.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: again, Framework: "static", Plan: "basic", Image: "nginx:1.27", Owner: "team-a",
	}})
	require.NoError(t, err)
	_, err = ann.DeleteApp(t.Context(), &deployv1.DeleteAppRequest{Name: again})
	require.NoError(t, err)
	_, err = ann.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: again, Framework: "static", Plan: "basic", Image: "nginx:1.27", Owner: "team-a",
	}})
	require.NoError(t, err)
	// Deleted with its resources, nothing is left behind to refuse.
	_, err = ann.DeleteApp(t.Context(), &deployv1.DeleteAppRequest{Name: again, DeleteResources: true})
	require.NoError(t, err)
	_, err = bob.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: again, Framework: "static", Plan: "basic", Image: "nginx:1.27", Owner: "team-b",
	}})
	require.NoError(t, err)
}
