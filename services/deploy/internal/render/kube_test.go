package render_test

import (
	"context"
	"crypto/rand"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/deploy/internal/render"
)

// Timeouts for the API server and for what its controllers do; generous
// because two cores run the control plane and every test at once.
const (
	requestTimeout = time.Minute
	rolloutTimeout = 3 * time.Minute
)

// cluster is the shared control plane, serving the monitoring CRDs, with a
// RESTMapper that knows them.
type cluster struct {
	kube   *testkit.Kube
	mapper meta.ResettableRESTMapper
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	k := testkit.SharedKube(t)
	k.InstallMonitoringCRDs(t)
	typed := k.Clientset
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(typed.Discovery()))
	// An Established CRD reaches discovery a moment later.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		mapper.Reset()
		for _, kind := range []string{"ServiceMonitor", "PrometheusRule"} {
			_, err := mapper.RESTMapping(schema.GroupKind{Group: "monitoring.coreos.com", Kind: kind}, "v1")
			assert.NoError(c, err)
		}
	}, requestTimeout, 100*time.Millisecond, "the monitoring CRDs never reached discovery")
	return &cluster{kube: k, mapper: mapper}
}

// client applies objects the way the deploy service does (server-side
// apply, field manager "vigil", forced) and keeps the API server's
// warnings, which a clean manifest does not draw.
type client struct {
	dyn    dynamic.Interface
	mapper meta.ResettableRESTMapper

	mu       sync.Mutex
	warnings []string
}

func (c *cluster) client(t *testing.T) *client {
	t.Helper()
	cl := &client{mapper: c.mapper}
	rc := rest.CopyConfig(c.kube.Config)
	// client-go's default 5 requests/s would make the parallel subtests
	// wait on the client, not on the server.
	rc.QPS, rc.Burst = 200, 400
	rc.WarningHandler = cl
	dyn, err := dynamic.NewForConfig(rc)
	require.NoError(t, err)
	cl.dyn = dyn
	return cl
}

// HandleWarningHeader implements rest.WarningHandler.
func (c *client) HandleWarningHeader(_ int, _, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.warnings = append(c.warnings, text)
}

func (c *client) Warnings() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.warnings...)
}

func (c *client) resource(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	mapping, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, err
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.dyn.Resource(mapping.Resource).Namespace(obj.GetNamespace()), nil
	}
	return c.dyn.Resource(mapping.Resource), nil
}

// apply server-side-applies obj; dryRun=All runs validation, defaulting
// and admission without persisting. Unknown or duplicate fields are
// errors (Strict), not warnings.
func (c *client) apply(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) (*unstructured.Unstructured, error) {
	ri, err := c.resource(obj)
	if err != nil {
		return nil, err
	}
	data, err := obj.MarshalJSON()
	if err != nil {
		return nil, err
	}
	opts := metav1.PatchOptions{FieldManager: "vigil", Force: new(true), FieldValidation: metav1.FieldValidationStrict}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts)
}

func (c *client) get(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	ri, err := c.resource(obj)
	if err != nil {
		return nil, err
	}
	return ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
}

// uniqueName makes a namespace name that no other test or run uses.
func uniqueName(prefix string) string {
	return prefix + "-" + strings.ToLower(rand.Text()[:8])
}

// createNamespace applies m's Namespace for real (namespaced dry-runs need
// their namespace to exist) and deletes it when the test ends.
func createNamespace(t *testing.T, k *testkit.Kube, c *client, m *render.Manifests) {
	t.Helper()
	ns := m.Steps[0].Objects[0]
	require.Equal(t, "Namespace", ns.GetKind())
	ctx, cancel := context.WithTimeout(t.Context(), requestTimeout)
	defer cancel()
	_, err := c.apply(ctx, ns, false)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		err := k.Clientset.CoreV1().Namespaces().Delete(ctx, ns.GetName(), metav1.DeleteOptions{})
		if !apierrors.IsNotFound(err) {
			assert.NoError(t, err, "delete namespace %s", ns.GetName())
		}
	})
}

// podFromTemplate is the Pod the Deployment's ReplicaSet would create.
// Pod Security admission enforces on Pods only (for a Deployment it would
// at most warn), so this is what proves the template passes "restricted".
func podFromTemplate(t *testing.T, m *render.Manifests) *unstructured.Unstructured {
	t.Helper()
	d := find(m, "Deployment")
	require.NotNil(t, d)
	tpl, found, err := unstructured.NestedMap(d.Object, "spec", "template")
	require.NoError(t, err)
	require.True(t, found)
	pod := &unstructured.Unstructured{Object: map[string]any{"metadata": tpl["metadata"], "spec": tpl["spec"]}}
	pod.SetAPIVersion("v1")
	pod.SetKind("Pod")
	pod.SetName(d.GetName() + "-template")
	pod.SetNamespace(d.GetNamespace())
	return pod
}

// TestServerSideDryRun dry-runs every object of every framework × plan on
// a real v1.34 API server: schema validation (strict), defaulting,
// admission, and Pod Security "restricted" for the pod template.
func TestServerSideDryRun(t *testing.T) {
	t.Parallel()
	cl := newCluster(t)
	for _, fw := range render.Frameworks() {
		for _, plan := range render.Plans() {
			t.Run(fw+"-"+plan, func(t *testing.T) {
				t.Parallel()
				c := cl.client(t)
				app := shop()
				app.Framework, app.Plan = fw, plan
				app.Namespace = uniqueName("dry-" + fw + "-" + plan)
				m := mustRender(t, app, render.Options{IngressClass: "nginx"})
				createNamespace(t, cl.kube, c, m)
				ctx, cancel := context.WithTimeout(t.Context(), requestTimeout)
				defer cancel()

				// Every step's objects, both Ingress versions included.
				for _, st := range m.Steps {
					for _, o := range st.Objects {
						got, err := c.apply(ctx, o, true)
						require.NoError(t, err, "%s: %s %s", st.Name, o.GetKind(), o.GetName())
						for k, v := range o.GetLabels() {
							assert.Equal(t, v, got.GetLabels()[k], "%s %s label %s", o.GetKind(), o.GetName(), k)
						}
					}
				}

				// The template's Pod, dry-run in the namespace that
				// enforces "restricted". Its service account must exist.
				_, err := c.apply(ctx, m.Steps[0].Objects[1], false)
				require.NoError(t, err, "ServiceAccount")
				_, err = c.apply(ctx, podFromTemplate(t, m), true)
				require.NoError(t, err, "the pod template must pass Pod Security \"restricted\"")

				assert.Empty(t, c.Warnings(), "API server warnings")
			})
		}
	}
}

// TestPodSecurityIsEnforced shows that the dry-run of the template's Pod
// has teeth: the same Pod without its hardening is refused.
func TestPodSecurityIsEnforced(t *testing.T) {
	t.Parallel()
	cl := newCluster(t)
	c := cl.client(t)
	app := shop()
	app.Namespace = uniqueName("psa")
	m := mustRender(t, app, render.Options{})
	createNamespace(t, cl.kube, c, m)
	ctx, cancel := context.WithTimeout(t.Context(), requestTimeout)
	defer cancel()
	_, err := c.apply(ctx, m.Steps[0].Objects[1], false)
	require.NoError(t, err, "ServiceAccount")

	pod := podFromTemplate(t, m)
	_, err = c.apply(ctx, pod, true)
	require.NoError(t, err)

	containers, _, err := unstructured.NestedSlice(pod.Object, "spec", "containers")
	require.NoError(t, err)
	delete(containers[0].(map[string]any), "securityContext")
	require.NoError(t, unstructured.SetNestedSlice(pod.Object, containers, "spec", "containers"))
	_, err = c.apply(ctx, pod, true)
	require.Error(t, err)
	assert.True(t, apierrors.IsForbidden(err), "%v", err)
	assert.Contains(t, err.Error(), `violates PodSecurity "restricted:latest"`)
}

// TestApply applies an app for real and checks what runs: the pods roll
// out under the namespace's Pod Security, the Service reaches them,
// applying again changes nothing, and a configuration change rolls them.
func TestApply(t *testing.T) {
	t.Parallel()
	cl := newCluster(t)
	c := cl.client(t)
	cs := cl.kube.Clientset
	app := shop()
	app.Namespace = uniqueName("apply")
	ns := app.Namespace
	m := mustRender(t, app, render.Options{})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
		if !apierrors.IsNotFound(err) {
			assert.NoError(t, err)
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 2*rolloutTimeout)
	defer cancel()

	apply := func(objects []*unstructured.Unstructured) {
		t.Helper()
		for _, o := range objects {
			_, err := c.apply(ctx, o, false)
			require.NoError(t, err, "%s %s", o.GetKind(), o.GetName())
		}
	}
	// Onboarding: every step in order, both Ingress versions included.
	for _, st := range m.Steps {
		apply(st.Objects)
	}
	assert.Empty(t, c.Warnings(), "API server warnings")

	dep, err := cs.AppsV1().Deployments(ns).Get(ctx, "shop", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "1", dep.Annotations["vigil.dev/revision"])
	assert.Equal(t, "team-a", dep.Annotations["vigil.dev/owner"])
	assert.Equal(t, m.ConfigHash, dep.Spec.Template.Annotations["vigil.dev/config-hash"])
	psc := dep.Spec.Template.Spec.SecurityContext
	require.NotNil(t, psc)
	assert.True(t, *psc.RunAsNonRoot)
	assert.Equal(t, int64(10001), *psc.RunAsUser)
	assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, psc.SeccompProfile.Type)
	assert.False(t, *dep.Spec.Template.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation)
	secret, err := cs.CoreV1().Secrets(ns).Get(ctx, "shop-secrets", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{"API_KEY": []byte("s3cr3t")}, secret.Data)

	// Rolled out: the ReplicaSet's pods were admitted and are Ready (kwok).
	svc, err := cs.CoreV1().Services(ns).Get(ctx, "shop", metav1.GetOptions{})
	require.NoError(t, err)
	waitRolledOut(ctx, t, cl.kube, ns, svc, m.ConfigHash, 2)

	// Applying the same objects again changes nothing: what Vigil renders
	// round-trips through server-side apply (quantities, Secret data,
	// defaults), so redeploying an unchanged app is a no-op.
	before := versions(ctx, t, c, m)
	apply(m.Objects())
	assert.Equal(t, before, versions(ctx, t, c, m))

	// A configuration change rolls the pods through the config hash.
	app.Env = maps.Clone(app.Env)
	app.Env["LOG_LEVEL"] = "debug"
	changed := mustRender(t, app, render.Options{})
	require.NotEqual(t, m.ConfigHash, changed.ConfigHash)
	apply(changed.Objects())
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "shop-config", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "debug", cm.Data["LOG_LEVEL"])
	waitRolledOut(ctx, t, cl.kube, ns, svc, changed.ConfigHash, 2)
}

// waitRolledOut waits until the Deployment "shop" has rolled out replicas
// pods carrying hash, and the Service selects exactly those pods and
// routes to their http port.
func waitRolledOut(ctx context.Context, t *testing.T, k *testkit.Kube, ns string, svc *corev1.Service, hash string, replicas int32) {
	t.Helper()
	cs := k.Clientset
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		dep, err := cs.AppsV1().Deployments(ns).Get(ctx, "shop", metav1.GetOptions{})
		if !assert.NoError(c, err) {
			return
		}
		assert.Equal(c, dep.Generation, dep.Status.ObservedGeneration)
		assert.Equal(c, replicas, dep.Status.UpdatedReplicas)
		assert.Equal(c, replicas, dep.Status.AvailableReplicas)
		assert.Equal(c, replicas, dep.Status.Replicas, "old pods gone")

		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(svc.Spec.Selector).String()})
		if !assert.NoError(c, err) {
			return
		}
		var ips []string
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				continue
			}
			assert.Equal(c, hash, p.Annotations["vigil.dev/config-hash"], p.Name)
			assert.Equal(c, corev1.PodRunning, p.Status.Phase, p.Name)
			ips = append(ips, p.Status.PodIP)
		}
		assert.Len(c, ips, int(replicas), "pods the Service selects")

		slices, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=shop"})
		if !assert.NoError(c, err) {
			return
		}
		var ready []string
		for _, s := range slices.Items {
			for _, p := range s.Ports {
				assert.Equal(c, "http", *p.Name)
				assert.Equal(c, int32(8000), *p.Port, "targetPort http is the container port")
			}
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					ready = append(ready, e.Addresses...)
				}
			}
		}
		assert.ElementsMatch(c, ips, ready, "the Service's ready endpoints are the pods")
	}, rolloutTimeout, 250*time.Millisecond, "deployment shop in %s did not roll out", ns)
}

// versions identifies the state of m's live objects: metadata.generation
// where the API keeps one (it moves with the spec only, not with the
// status controllers write), else resourceVersion.
func versions(ctx context.Context, t *testing.T, c *client, m *render.Manifests) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range m.Objects() {
		live, err := c.get(ctx, o)
		require.NoError(t, err, "%s %s", o.GetKind(), o.GetName())
		v := "rv " + live.GetResourceVersion()
		if g := live.GetGeneration(); g != 0 {
			v = "generation " + strconv.FormatInt(g, 10)
		}
		out[o.GetKind()+"/"+o.GetName()] = v
	}
	return out
}
