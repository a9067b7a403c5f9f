package chart

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/vigil-ops/vigil/pkg/kubeaccess"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// rbac.clusterAccess gives the deploy service's account what the deploy
// service does in a cluster it manages (pkg/kubeaccess and the apps'
// objects), and not the right to make itself an admin.
func TestChartClusterAccessIsWhatDeployDoes(t *testing.T) {
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	manifest, err := helm(t, "template", "vigil", "deploy/helm/vigil", "--namespace", ns, "--set", "rbac.clusterAccess=true",
		"--show-only", "templates/rbac.yaml", "--show-only", "templates/serviceaccounts.yaml")
	require.NoError(t, err)
	apply(t, k, ns, objects(t, manifest), false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cfg := rest.CopyConfig(k.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":vigil-deploy"}
	deploy, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)

	// The analysis and repair accounts, their tokens, the repair policy.
	require.Eventually(t, func() bool {
		err = kubeaccess.Provision(ctx, deploy, kubeaccess.Reader)
		return err == nil
	}, 30*time.Second, 200*time.Millisecond, "the binding reaches the authorizer: %v", err)
	require.NoError(t, kubeaccess.Provision(ctx, deploy, kubeaccess.Repairer))
	require.NoError(t, kubeaccess.Provision(ctx, deploy, kubeaccess.Repairer), "kept current on the next start")
	reader, _, err := kubeaccess.AccountConfig(ctx, deploy, k.Config, kubeaccess.Reader, 10*time.Minute)
	require.NoError(t, err)
	require.NotEmpty(t, reader.BearerToken)
	require.NoError(t, kubeaccess.ApplyRepairPolicy(ctx, deploy))
	t.Cleanup(func() {
		ctx := context.Background()
		_ = k.Clientset.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(ctx, kubeaccess.RepairPolicy, metav1.DeleteOptions{})
		_ = k.Clientset.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(ctx, kubeaccess.RepairPolicy, metav1.DeleteOptions{})
		_ = k.Clientset.RbacV1().ClusterRoleBindings().Delete(ctx, "vigil-analysis", metav1.DeleteOptions{})
	})

	// An app: its namespace and objects applied server-side, the repair
	// grant there, listed by label, deleted.
	app := ns + "-app"
	apply := func(obj runtime.Object, name string, patch func([]byte) error) {
		t.Helper()
		b, err := json.Marshal(obj)
		require.NoError(t, err)
		require.NoError(t, patch(b), "apply %T %s", obj, name)
	}
	force := metav1.PatchOptions{FieldManager: "vigil-deploy", Force: new(true)}
	labels := map[string]string{"app.kubernetes.io/managed-by": "vigil"}
	apply(&corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: app, Labels: labels}}, app, func(b []byte) error {
		_, err := deploy.CoreV1().Namespaces().Patch(ctx, app, types.ApplyPatchType, b, force)
		return err
	})
	t.Cleanup(func() {
		_ = k.Clientset.CoreV1().Namespaces().Delete(context.Background(), app, metav1.DeleteOptions{})
	})
	apply(&corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: app, Labels: labels}}, "shop", func(b []byte) error {
		_, err := deploy.CoreV1().ConfigMaps(app).Patch(ctx, "shop", types.ApplyPatchType, b, force)
		return err
	})
	apply(&corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: app, Labels: labels}, StringData: map[string]string{"k": "v"}}, "shop", func(b []byte) error {
		_, err := deploy.CoreV1().Secrets(app).Patch(ctx, "shop", types.ApplyPatchType, b, force)
		return err
	})
	sel := map[string]string{"app": "shop"}
	apply(&appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: app, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "shop", Image: "shop:1"}}},
			},
		},
	}, "shop", func(b []byte) error {
		_, err := deploy.AppsV1().Deployments(app).Patch(ctx, "shop", types.ApplyPatchType, b, force)
		return err
	})
	grants := kubeaccess.Grants{Admin: deploy}
	require.NoError(t, grants.Grant(ctx, app, kubeaccess.SourceApp))
	require.NoError(t, grants.Reconcile(ctx, kubeaccess.SourceApp, []string{app}))
	list, err := deploy.AppsV1().Deployments(app).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=vigil"})
	require.NoError(t, err)
	require.Len(t, list.Items, 1)
	_, err = deploy.AppsV1().ReplicaSets(app).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.NoError(t, deploy.AppsV1().Deployments(app).Delete(ctx, "shop", metav1.DeleteOptions{}))
	require.NoError(t, grants.Revoke(ctx, app, kubeaccess.SourceApp))

	// Not an admin: it cannot bind itself to cluster-admin, nor read
	// what it was not given.
	_, err = deploy.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-escalate"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "vigil-deploy", Namespace: ns}},
	}, metav1.CreateOptions{})
	require.True(t, apierrors.IsForbidden(err), "binding cluster-admin: %v", err)
	_, err = deploy.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	require.True(t, apierrors.IsForbidden(err), "nodes: %v", err)
	_, err = deploy.RbacV1().ClusterRoles().Update(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "view"}}, metav1.UpdateOptions{})
	require.True(t, apierrors.IsForbidden(err), "changing a role not Vigil's: %v", err)
	_, err = k.Clientset.RbacV1().ClusterRoleBindings().Get(ctx, ns+"-escalate", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "nothing was bound")
}
