package chart

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/kubesecrets"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// helm install with the eval profile on the dev control plane, as the
// README says; kwok plays the kubelet, so pods are Ready without running
// (and hook Jobs complete without running): the secrets hook's command is
// run here as its Job would, with its service account, which proves its
// RBAC too. Then helm upgrade with another replica count: the change takes
// effect and every generated Secret stays byte for byte.
func TestChartInstallAndUpgrade(t *testing.T) {
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	class := persistentVolumes(t, k, ns, 2)
	// Pod Security "restricted": a pod of the chart that breaks it is
	// refused, and its Deployment or StatefulSet never becomes ready.
	restricted := []byte(`{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"restricted"}}}`)
	_, err := k.Clientset.CoreV1().Namespaces().Patch(context.Background(), ns, types.MergePatchType, restricted, metav1.PatchOptions{})
	require.NoError(t, err)
	const release = "vigil" // the chart's full name is the release's
	common := []string{"--namespace", ns, "--kubeconfig", k.Kubeconfig, "--timeout", "4m"}

	// As the README says: no --wait for the eval profile (its hooks run
	// after its NATS and Postgres start); helm returns once they are done.
	out, err := helm(t, append([]string{"install", release, "deploy/helm/vigil", "-f", evalValues, "--set", "eval.storageClassName=" + class}, common...)...)
	require.NoError(t, err, out)
	require.Contains(t, out, "STATUS: deployed")

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	apps := k.Clientset.AppsV1()
	for _, svc := range []string{"gateway", "monitor", "analysis", "repair", "notify", "deploy"} {
		var d *appsv1.Deployment
		require.Eventually(t, func() bool {
			d, err = apps.Deployments(ns).Get(ctx, release+"-"+svc, metav1.GetOptions{})
			return err == nil && d.Status.AvailableReplicas == 2
		}, 2*time.Minute, 200*time.Millisecond, "%s available: %v %s", svc, err, jsonOf(d))
		require.Equal(t, []string{"serve", svc}, d.Spec.Template.Spec.Containers[0].Args)
	}
	for _, name := range []string{"nats", "postgres"} {
		require.Eventually(t, func() bool {
			s, err := apps.StatefulSets(ns).Get(ctx, release+"-"+name, metav1.GetOptions{})
			return err == nil && s.Status.ReadyReplicas == 1
		}, 2*time.Minute, 200*time.Millisecond, "%s ready", name)
	}
	pvcs, err := k.Clientset.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, pvcs.Items, 2)
	for _, c := range pvcs.Items {
		require.Equal(t, corev1.ClaimBound, c.Status.Phase, c.Name)
	}

	// The hook ran on a fake kubelet: its command runs here, as the Job.
	got := ensureAsTheHook(t, k, ns, release, "eval.storageClassName="+class)
	require.Equal(t, []kubesecrets.Outcome{{Name: "vigil-keys", Created: true}, {Name: "vigil-nats", Created: true}, {Name: "vigil-postgres", Created: true}}, got)
	before := generated(t, k.Clientset, ns)

	out, err = helm(t, append([]string{"upgrade", release, "deploy/helm/vigil", "--reuse-values", "--set", "services.gateway.replicas=3", "--wait"}, common...)...)
	require.NoError(t, err, out)
	require.Contains(t, out, "STATUS: deployed")
	got = ensureAsTheHook(t, k, ns, release, "eval.storageClassName="+class, "services.gateway.replicas=3")
	require.Equal(t, []kubesecrets.Outcome{{Name: "vigil-keys"}, {Name: "vigil-nats"}, {Name: "vigil-postgres"}}, got, "an upgrade makes nothing")
	require.Equal(t, before, generated(t, k.Clientset, ns), "an upgrade changes no Secret")

	d, err := apps.Deployments(ns).Get(ctx, release+"-gateway", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, int32(3), *d.Spec.Replicas)
	require.Equal(t, int32(3), d.Status.AvailableReplicas, jsonOf(d.Status))
	d, err = apps.Deployments(ns).Get(ctx, release+"-monitor", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, int32(2), *d.Spec.Replicas, "the values not given again are kept")

	out, err = helm(t, "uninstall", release, "--namespace", ns, "--kubeconfig", k.Kubeconfig, "--wait")
	require.NoError(t, err, out)
	require.Equal(t, before, generated(t, k.Clientset, ns), "the Secrets outlive the release: a reinstall finds them")
}

// persistentVolumes makes n volumes of a storage class of the test's own
// (the dev control plane has no provisioner), deleted when the test ends.
func persistentVolumes(t *testing.T, k *testkit.Kube, ns string, n int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	class := ns + "-local"
	for i := range n {
		pv, err := k.Clientset.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{GenerateName: ns + "-"},
			Spec: corev1.PersistentVolumeSpec{
				StorageClassName:              class,
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
				PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/vigil-test/" + class + "/" + string(rune('a'+i))}},
			},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_ = k.Clientset.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
		})
	}
	return class
}

// ensureAsTheHook renders the chart's secrets hook with the release's
// values, applies its ServiceAccount, Role and RoleBinding (Helm deletes
// them once the hook succeeded), and runs what its Job runs, as its
// service account.
func ensureAsTheHook(t *testing.T, k *testkit.Kube, ns, release string, set ...string) []kubesecrets.Outcome {
	t.Helper()
	args := []string{"template", release, "deploy/helm/vigil", "--namespace", ns, "-f", evalValues, "--show-only", "templates/secrets-job.yaml"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	manifest, err := helm(t, args...)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	objs := objects(t, manifest)
	rights := only(objs, "ServiceAccount", "Role", "RoleBinding")
	require.Len(t, rights, 3)
	account := only(objs, "ServiceAccount")[0].GetName()
	jobs := only(objs, "Job")
	require.Len(t, jobs, 1)
	o := jobOptions(t, jobs[0].Object, ns)
	apply(t, k, ns, rights, false)
	cfg := rest.CopyConfig(k.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + account}
	cs, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	// The RoleBinding may take a moment to reach the authorizer's cache.
	var got []kubesecrets.Outcome
	require.Eventually(t, func() bool {
		got, err = kubesecrets.Ensure(ctx, cs, o)
		return err == nil
	}, 30*time.Second, 200*time.Millisecond, "vigil secrets ensure as %s: %v", account, err)
	return got
}

// jobOptions reads `vigil secrets ensure`'s flags from the hook Job.
// $(POD_NAMESPACE) is the namespace the Job runs in: ns.
func jobOptions(t *testing.T, job map[string]any, ns string) kubesecrets.Options {
	t.Helper()
	var j struct {
		Spec struct {
			Template struct {
				Spec corev1.PodSpec `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(job, &j))
	c := j.Spec.Template.Spec.Containers[0]
	require.Equal(t, []string{"secrets", "ensure"}, c.Args[:2])
	var o kubesecrets.Options
	for _, a := range c.Args[2:] {
		flag, value, _ := strings.Cut(a, "=")
		switch flag {
		case "--namespace":
			require.Equal(t, "$(POD_NAMESPACE)", value, "the Job's own namespace")
			o.Namespace = ns
		case "--prefix":
			o.Prefix = value
		case "--only":
			o.Only = strings.Split(value, ",")
		case "--postgres-admin":
			o.PostgresAdmin = true
		default:
			t.Fatalf("the hook Job passes %s, which this test does not know", a)
		}
	}
	return o
}

// generated are the Secrets `vigil secrets ensure` made, by name.
func generated(t *testing.T, cs kubernetes.Interface, ns string) map[string]map[string][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=vigil-secrets-ensure"})
	require.NoError(t, err)
	out := map[string]map[string][]byte{}
	for _, s := range list.Items {
		out[s.Name] = s.Data
	}
	require.Len(t, out, 3, "keys, nats and postgres")
	return out
}
