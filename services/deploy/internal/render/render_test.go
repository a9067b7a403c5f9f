package render_test

import (
	"bytes"
	"encoding/base64"
	"maps"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/deploy/internal/render"
)

// TestMain stops the shared control plane the Kubernetes tests start.
func TestMain(m *testing.M) { testkit.Main(m) }

// shop is the app the tests and golden files render.
func shop() render.App {
	return render.App{
		Name: "shop", Namespace: "shop", DisplayName: "Shop", Domain: "shop.example.com",
		Framework: "flask", Plan: "standard", Image: "registry.example.com/shop:1.0.0",
		Env: map[string]string{"LOG_LEVEL": "info"}, Secrets: map[string]string{"API_KEY": "s3cr3t"},
		Owner: "team-a", Revision: 1,
	}
}

func mustRender(t *testing.T, app render.App, opts render.Options) *render.Manifests {
	t.Helper()
	m, err := render.Render(app, opts)
	require.NoError(t, err)
	return m
}

// find returns the final version of the object of kind, or nil.
func find(m *render.Manifests, kind string) *unstructured.Unstructured {
	for _, o := range m.Objects() {
		if o.GetKind() == kind {
			return o
		}
	}
	return nil
}

// typed converts the final object of kind into out, failing the test when
// there is none.
func typed(t *testing.T, m *render.Manifests, kind string, out any) {
	t.Helper()
	u := find(m, kind)
	require.NotNil(t, u, "no %s", kind)
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out))
}

func deployment(t *testing.T, m *render.Manifests) *appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	typed(t, m, "Deployment", &d)
	return &d
}

// stepObjects lists a step's objects as Kind/name.
func stepObjects(t *testing.T, m *render.Manifests, step string) []string {
	t.Helper()
	for _, s := range m.Steps {
		if s.Name == step {
			var out []string
			for _, o := range s.Objects {
				out = append(out, o.GetKind()+"/"+o.GetName())
			}
			return out
		}
	}
	t.Fatalf("no step %s", step)
	return nil
}

func mustYAML(t *testing.T, m *render.Manifests) string {
	t.Helper()
	y, err := m.YAML()
	require.NoError(t, err)
	return string(y)
}

func TestStepsAndObjects(t *testing.T) {
	t.Parallel()
	m := mustRender(t, shop(), render.Options{})

	var names []string
	for _, s := range m.Steps {
		names = append(names, s.Name)
	}
	require.Equal(t, []string{
		"create_namespace", "apply_config", "deploy_app", "configure_ingress",
		"setup_tls", "configure_monitoring", "enable_auto_repair",
	}, render.Steps)
	assert.Equal(t, render.Steps, names)

	assert.Equal(t, []string{"Namespace/shop", "ServiceAccount/shop", "NetworkPolicy/shop-isolation"}, stepObjects(t, m, render.StepCreateNamespace))
	assert.Equal(t, []string{"ConfigMap/shop-config", "Secret/shop-secrets"}, stepObjects(t, m, render.StepApplyConfig))
	assert.Equal(t, []string{"Deployment/shop", "Service/shop", "PodDisruptionBudget/shop"}, stepObjects(t, m, render.StepDeployApp))
	assert.Equal(t, []string{"Ingress/shop"}, stepObjects(t, m, render.StepConfigureIngress))
	assert.Equal(t, []string{"Ingress/shop"}, stepObjects(t, m, render.StepSetupTLS))
	assert.Equal(t, []string{"ServiceMonitor/shop", "PrometheusRule/shop"}, stepObjects(t, m, render.StepConfigureMonitoring))
	assert.Empty(t, stepObjects(t, m, render.StepEnableAutoRepair))

	// configure_ingress routes without TLS; setup_tls adds it.
	var plain, withTLS networkingv1.Ingress
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(m.Steps[3].Objects[0].Object, &plain))
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(m.Steps[4].Objects[0].Object, &withTLS))
	assert.Empty(t, plain.Spec.TLS)
	assert.Empty(t, plain.Annotations)
	assert.Equal(t, []networkingv1.IngressTLS{{Hosts: []string{"shop.example.com"}, SecretName: "shop-tls"}}, withTLS.Spec.TLS)
	assert.Equal(t, "letsencrypt", withTLS.Annotations["cert-manager.io/cluster-issuer"])
	assert.Equal(t, plain.Spec.Rules, withTLS.Spec.Rules)

	// Objects lists each object once, the Ingress in its final version at
	// its first place.
	var objects []string
	for _, o := range m.Objects() {
		objects = append(objects, o.GetKind()+"/"+o.GetName())
	}
	assert.Equal(t, []string{
		"Namespace/shop", "ServiceAccount/shop", "NetworkPolicy/shop-isolation",
		"ConfigMap/shop-config", "Secret/shop-secrets",
		"Deployment/shop", "Service/shop", "PodDisruptionBudget/shop",
		"Ingress/shop", "ServiceMonitor/shop", "PrometheusRule/shop",
	}, objects)
	assert.Same(t, m.Steps[4].Objects[0], find(m, "Ingress"))

	// Common labels everywhere; the namespace everywhere but on the
	// Namespace.
	for _, o := range m.Objects() {
		for k, v := range map[string]string{
			"app.kubernetes.io/name": "shop", "app.kubernetes.io/instance": "shop",
			"app.kubernetes.io/managed-by": "vigil", "vigil.dev/app": "shop",
		} {
			assert.Equal(t, v, o.GetLabels()[k], "%s %s label %s", o.GetKind(), o.GetName(), k)
		}
		if o.GetKind() == "Namespace" {
			assert.Empty(t, o.GetNamespace())
		} else {
			assert.Equal(t, "shop", o.GetNamespace(), o.GetKind())
		}
	}
}

func TestInvalidApp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		edit  func(*render.App)
		field string
		msg   string // a part of the message
	}{
		{
			"unknown framework", func(a *render.App) { a.Framework = "rails" }, "framework",
			`framework: unknown "rails", want one of django, flask, go, nextjs, nodejs, static`,
		},
		{"no framework", func(a *render.App) { a.Framework = "" }, "framework", `unknown ""`},
		{
			"unknown plan", func(a *render.App) { a.Plan = "gold" }, "plan",
			`plan: unknown "gold", want one of basic, standard, advanced, professional`,
		},
		{"no image", func(a *render.App) { a.Image = "" }, "image", "image: is required"},
		{"image with spaces", func(a *render.App) { a.Image = "shop :1" }, "image", "white space"},
		{"no name", func(a *render.App) { a.Name = "" }, "name", "DNS-1035"},
		{"upper-case name", func(a *render.App) { a.Name = "Shop" }, "name", `"Shop"`},
		{"name starting with a digit", func(a *render.App) { a.Name = "1shop" }, "name", "starting with a letter"},
		{"long name", func(a *render.App) { a.Name = strings.Repeat("a", 64) }, "name", "at most 63"},
		{"no namespace", func(a *render.App) { a.Namespace = "" }, "namespace", "DNS-1123"},
		{"bad namespace", func(a *render.App) { a.Namespace = "shop_1" }, "namespace", "DNS-1123"},
		{"kube-system", func(a *render.App) { a.Namespace = "kube-system" }, "namespace", "reserved"},
		{"default namespace", func(a *render.App) { a.Namespace = "default" }, "namespace", "reserved"},
		{"negative replicas", func(a *render.App) { a.Replicas = -1 }, "replicas", "negative"},
		{"port too high", func(a *render.App) { a.Port = 65536 }, "port", "between 1 and 65535"},
		{"negative port", func(a *render.App) { a.Port = -1 }, "port", "between 1 and 65535"},
		{"bad env key", func(a *render.App) { a.Env = map[string]string{"A B": "x"} }, "env", `key "A B"`},
		{"env PORT not the port", func(a *render.App) { a.Env = map[string]string{"PORT": "9000"} }, "env", "PORT is the container port (8000)"},
		{"bad secret key", func(a *render.App) { a.Secrets = map[string]string{"a/b": "x"} }, "secrets", `key "a/b"`},
		{"secret PORT", func(a *render.App) { a.Secrets = map[string]string{"PORT": "8000"} }, "secrets", "PORT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			app := shop()
			tc.edit(&app)
			m, err := render.Render(app, render.Options{})
			require.Nil(t, m)
			var fe *render.FieldError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tc.field, fe.Field)
			assert.True(t, strings.HasPrefix(err.Error(), tc.field+": "), err.Error())
			assert.Contains(t, err.Error(), tc.msg)
		})
	}

	// Env may repeat the port: it says nothing new.
	app := shop()
	app.Env = map[string]string{"PORT": "8000"}
	_, err := render.Render(app, render.Options{})
	require.NoError(t, err)
}

func TestFrameworksAndPlansAreSorted(t *testing.T) {
	t.Parallel()
	assert.Equal(t, []string{"django", "flask", "go", "nextjs", "nodejs", "static"}, render.Frameworks())
	assert.Equal(t, []string{"basic", "standard", "advanced", "professional"}, render.Plans(), "cheapest first")
}

func TestPlans(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		plan                      string
		reqCPU, reqMem            string
		limCPU, limMem            string
		replicas                  int32
		hpaMax                    int32 // 0: no HPA
		overrideReplicas, overMax int32 // with App.Replicas = overrideReplicas
	}{
		{"basic", "250m", "256Mi", "500m", "512Mi", 1, 0, 4, 0},
		{"standard", "500m", "512Mi", "1", "1Gi", 2, 0, 4, 0},
		{"advanced", "1", "1Gi", "2", "2Gi", 3, 6, 4, 8},
		{"professional", "2", "2Gi", "4", "4Gi", 3, 9, 4, 12},
	} {
		t.Run(tc.plan, func(t *testing.T) {
			t.Parallel()
			want := corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(tc.reqCPU), corev1.ResourceMemory: resource.MustParse(tc.reqMem)},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(tc.limCPU), corev1.ResourceMemory: resource.MustParse(tc.limMem)},
			}
			got, ok := render.PlanResources(tc.plan)
			require.True(t, ok)
			assert.Equal(t, want.Requests.Cpu().String(), got.Requests.Cpu().String())
			assert.Equal(t, want.Requests.Memory().String(), got.Requests.Memory().String())
			assert.Equal(t, want.Limits.Cpu().String(), got.Limits.Cpu().String())
			assert.Equal(t, want.Limits.Memory().String(), got.Limits.Memory().String())

			for _, replicas := range []int32{0, tc.overrideReplicas} {
				app := shop()
				app.Plan, app.Replicas = tc.plan, replicas
				m := mustRender(t, app, render.Options{})
				d := deployment(t, m)
				c := d.Spec.Template.Spec.Containers[0]
				assert.Equal(t, tc.reqCPU, c.Resources.Requests.Cpu().String())
				assert.Equal(t, tc.reqMem, c.Resources.Requests.Memory().String())
				assert.Equal(t, tc.limCPU, c.Resources.Limits.Cpu().String())
				assert.Equal(t, tc.limMem, c.Resources.Limits.Memory().String())

				wantReplicas, wantMax := tc.replicas, tc.hpaMax
				if replicas != 0 {
					wantReplicas, wantMax = tc.overrideReplicas, tc.overMax
				}
				if tc.hpaMax == 0 {
					assert.Nil(t, find(m, "HorizontalPodAutoscaler"), "no HPA for %s", tc.plan)
					require.NotNil(t, d.Spec.Replicas)
					assert.Equal(t, wantReplicas, *d.Spec.Replicas)
					continue
				}
				// The HPA owns the replica count: the Deployment leaves
				// it alone.
				assert.Nil(t, d.Spec.Replicas)
				var hpa autoscalingv2.HorizontalPodAutoscaler
				typed(t, m, "HorizontalPodAutoscaler", &hpa)
				assert.Equal(t, autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "shop"}, hpa.Spec.ScaleTargetRef)
				require.NotNil(t, hpa.Spec.MinReplicas)
				assert.Equal(t, wantReplicas, *hpa.Spec.MinReplicas)
				assert.Equal(t, wantMax, hpa.Spec.MaxReplicas)
				require.Len(t, hpa.Spec.Metrics, 1)
				assert.Equal(t, corev1.ResourceCPU, hpa.Spec.Metrics[0].Resource.Name)
				assert.Equal(t, int32(70), *hpa.Spec.Metrics[0].Resource.Target.AverageUtilization)
				assert.Equal(t, []string{"Deployment/shop", "Service/shop", "PodDisruptionBudget/shop", "HorizontalPodAutoscaler/shop"},
					stepObjects(t, m, render.StepDeployApp))
			}
		})
	}

	_, ok := render.PlanResources("gold")
	assert.False(t, ok)
	// A caller cannot change a plan for everyone.
	r, _ := render.PlanResources("basic")
	r.Requests[corev1.ResourceCPU] = resource.MustParse("64")
	again, _ := render.PlanResources("basic")
	assert.Equal(t, "250m", again.Requests.Cpu().String())
}

// An app's memory limit (a repair raised it) replaces the plan's only
// when above it: a move to a bigger plan is never held back by an old
// repair. The request stays the plan's.
func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		plan        string
		memoryLimit int64
		want        string
	}{
		{"the plan's", "basic", 0, "512Mi"},
		{"raised", "basic", 768 << 20, "768Mi"},
		{"below the plan's", "standard", 768 << 20, "1Gi"},
		{"at the plan's", "standard", 1 << 30, "1Gi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			app := shop()
			app.Plan, app.MemoryLimitBytes = tc.plan, tc.memoryLimit
			c := deployment(t, mustRender(t, app, render.Options{})).Spec.Template.Spec.Containers[0]
			assert.Equal(t, render.ContainerName, c.Name)
			assert.Equal(t, tc.want, c.Resources.Limits.Memory().String())
			plan, _ := render.PlanResources(tc.plan)
			assert.Equal(t, plan.Requests.Memory().String(), c.Resources.Requests.Memory().String())
			assert.Equal(t, plan.Limits.Cpu().String(), c.Resources.Limits.Cpu().String())
		})
	}
	app := shop()
	app.MemoryLimitBytes = -1
	_, err := render.Render(app, render.Options{})
	var fe *render.FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "memory_limit_bytes", fe.Field)
}

func TestFrameworks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		framework string
		port      int32
		health    string
		env       map[string]string // besides LOG_LEVEL and PORT
	}{
		{"flask", 8000, "/healthz", map[string]string{"PYTHONUNBUFFERED": "1"}},
		{"django", 8000, "/healthz", map[string]string{"PYTHONUNBUFFERED": "1"}},
		{"nodejs", 3000, "/healthz", map[string]string{"NODE_ENV": "production"}},
		{"nextjs", 3000, "/api/health", map[string]string{"NODE_ENV": "production", "NEXT_TELEMETRY_DISABLED": "1"}},
		{"static", 8080, "/", nil},
		{"go", 8080, "/healthz", nil},
	} {
		t.Run(tc.framework, func(t *testing.T) {
			t.Parallel()
			app := shop()
			app.Framework = tc.framework
			m := mustRender(t, app, render.Options{})
			assertPort(t, m, tc.port)
			c := deployment(t, m).Spec.Template.Spec.Containers[0]
			for _, p := range []*corev1.Probe{c.StartupProbe, c.ReadinessProbe, c.LivenessProbe} {
				require.NotNil(t, p)
				assert.Equal(t, tc.health, p.HTTPGet.Path)
			}
			var cm corev1.ConfigMap
			typed(t, m, "ConfigMap", &cm)
			want := map[string]string{"LOG_LEVEL": "info", "PORT": cm.Data["PORT"]}
			maps.Copy(want, tc.env)
			assert.Equal(t, want, cm.Data)

			// The app's port and env override the framework's.
			app.Port = 9090
			app.Env = map[string]string{"NODE_ENV": "development", "PYTHONUNBUFFERED": "0"}
			m = mustRender(t, app, render.Options{})
			assertPort(t, m, 9090)
			typed(t, m, "ConfigMap", &cm)
			want = map[string]string{"PORT": "9090"}
			maps.Copy(want, tc.env)
			maps.Copy(want, app.Env)
			assert.Equal(t, want, cm.Data)
		})
	}
}

// assertPort checks every place the container port shows.
func assertPort(t *testing.T, m *render.Manifests, port int32) {
	t.Helper()
	d := deployment(t, m)
	c := d.Spec.Template.Spec.Containers[0]
	assert.Equal(t, []corev1.ContainerPort{{Name: "http", ContainerPort: port, Protocol: corev1.ProtocolTCP}}, c.Ports)
	assert.Equal(t, itoa(port), d.Spec.Template.Annotations["prometheus.io/port"])
	var cm corev1.ConfigMap
	typed(t, m, "ConfigMap", &cm)
	assert.Equal(t, itoa(port), cm.Data["PORT"])
	var np networkingv1.NetworkPolicy
	typed(t, m, "NetworkPolicy", &np)
	assert.Equal(t, port, np.Spec.Ingress[1].Ports[0].Port.IntVal)
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

func TestDeploymentSpec(t *testing.T) {
	t.Parallel()
	m := mustRender(t, shop(), render.Options{})
	d := deployment(t, m)
	sel := map[string]string{"app.kubernetes.io/name": "shop", "app.kubernetes.io/instance": "shop"}

	assert.Equal(t, map[string]string{"vigil.dev/revision": "1", "vigil.dev/owner": "team-a"}, d.Annotations)
	assert.Equal(t, sel, d.Spec.Selector.MatchLabels)
	assert.Equal(t, int32(10), *d.Spec.RevisionHistoryLimit)
	assert.Equal(t, int32(600), *d.Spec.ProgressDeadlineSeconds)
	assert.Equal(t, appsv1.RollingUpdateDeploymentStrategyType, d.Spec.Strategy.Type)
	assert.Equal(t, int32(0), d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntVal)
	assert.Equal(t, int32(1), d.Spec.Strategy.RollingUpdate.MaxSurge.IntVal)

	tpl := d.Spec.Template
	assert.NotContains(t, tpl.Annotations, "vigil.dev/revision", "a new revision alone must not roll pods")
	assert.Equal(t, m.ConfigHash, tpl.Annotations["vigil.dev/config-hash"])
	assert.Equal(t, "true", tpl.Annotations["prometheus.io/scrape"])
	assert.Equal(t, "/metrics", tpl.Annotations["prometheus.io/path"])
	for k, v := range sel {
		assert.Equal(t, v, tpl.Labels[k])
	}

	spec := tpl.Spec
	assert.Equal(t, "shop", spec.ServiceAccountName)
	assert.False(t, *spec.AutomountServiceAccountToken)
	assert.Equal(t, int64(30), *spec.TerminationGracePeriodSeconds)
	psc := spec.SecurityContext
	assert.True(t, *psc.RunAsNonRoot)
	assert.Equal(t, int64(10001), *psc.RunAsUser)
	assert.Equal(t, int64(10001), *psc.RunAsGroup)
	assert.Equal(t, int64(10001), *psc.FSGroup)
	assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, psc.SeccompProfile.Type)
	anti := spec.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution
	require.Len(t, anti, 1)
	assert.Equal(t, int32(100), anti[0].Weight)
	assert.Equal(t, "kubernetes.io/hostname", anti[0].PodAffinityTerm.TopologyKey)
	assert.Equal(t, sel, anti[0].PodAffinityTerm.LabelSelector.MatchLabels)

	require.Len(t, spec.Containers, 1)
	c := spec.Containers[0]
	assert.Equal(t, "app", c.Name)
	assert.Equal(t, "registry.example.com/shop:1.0.0", c.Image)
	assert.False(t, *c.SecurityContext.AllowPrivilegeEscalation)
	assert.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
	assert.Equal(t, []corev1.Capability{"ALL"}, c.SecurityContext.Capabilities.Drop)
	assert.Equal(t, []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}}, c.VolumeMounts)
	require.Len(t, spec.Volumes, 1)
	assert.NotNil(t, spec.Volumes[0].EmptyDir)
	for _, p := range []struct {
		probe             *corev1.Probe
		period, threshold int32
	}{{c.StartupProbe, 2, 60}, {c.ReadinessProbe, 5, 3}, {c.LivenessProbe, 10, 3}} {
		assert.Equal(t, "http", p.probe.HTTPGet.Port.StrVal)
		assert.Equal(t, p.period, p.probe.PeriodSeconds)
		assert.Equal(t, p.threshold, p.probe.FailureThreshold)
	}
	assert.Equal(t, []corev1.EnvFromSource{
		{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "shop-config"}}},
		{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "shop-secrets"}}},
	}, c.EnvFrom)

	var svc corev1.Service
	typed(t, m, "Service", &svc)
	assert.Equal(t, corev1.ServiceTypeClusterIP, svc.Spec.Type)
	assert.Equal(t, sel, svc.Spec.Selector)
	require.Len(t, svc.Spec.Ports, 1)
	assert.Equal(t, "http", svc.Spec.Ports[0].Name)
	assert.Equal(t, int32(80), svc.Spec.Ports[0].Port)
	assert.Equal(t, "http", svc.Spec.Ports[0].TargetPort.StrVal)
}

func TestNamespaceAndNetworkPolicy(t *testing.T) {
	t.Parallel()
	m := mustRender(t, shop(), render.Options{IngressNamespace: "traefik", MonitoringNamespace: "prom"})
	var ns corev1.Namespace
	typed(t, m, "Namespace", &ns)
	assert.Equal(t, "restricted", ns.Labels["pod-security.kubernetes.io/enforce"])
	assert.Equal(t, "latest", ns.Labels["pod-security.kubernetes.io/enforce-version"])
	assert.Equal(t, map[string]string{"vigil.dev/display-name": "Shop"}, ns.Annotations)

	var sa corev1.ServiceAccount
	typed(t, m, "ServiceAccount", &sa)
	assert.False(t, *sa.AutomountServiceAccountToken)

	var np networkingv1.NetworkPolicy
	typed(t, m, "NetworkPolicy", &np)
	assert.Empty(t, np.Spec.PodSelector.MatchLabels, "the whole namespace")
	assert.Equal(t, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}, np.Spec.PolicyTypes)
	require.Len(t, np.Spec.Ingress, 2)
	assert.NotNil(t, np.Spec.Ingress[0].From[0].PodSelector, "the namespace's own pods")
	var from []string
	for _, p := range np.Spec.Ingress[1].From {
		from = append(from, p.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"])
	}
	assert.Equal(t, []string{"traefik", "prom"}, from)
	require.Len(t, np.Spec.Egress, 2)
	for _, p := range np.Spec.Egress[0].Ports {
		assert.Equal(t, int32(53), p.Port.IntVal)
	}
	assert.Equal(t, []string{"169.254.169.254/32"}, np.Spec.Egress[1].To[0].IPBlock.Except)
	assert.Equal(t, "::/0", np.Spec.Egress[1].To[1].IPBlock.CIDR)

	m = mustRender(t, shop(), render.Options{})
	typed(t, m, "NetworkPolicy", &np)
	assert.Equal(t, "ingress-nginx", np.Spec.Ingress[1].From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"])
	assert.Equal(t, "monitoring", np.Spec.Ingress[1].From[1].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"])
}

func TestIngressOptions(t *testing.T) {
	t.Parallel()
	m := mustRender(t, shop(), render.Options{IngressClass: "nginx", ClusterIssuer: "internal-ca"})
	for _, step := range m.Steps[3:5] {
		var ing networkingv1.Ingress
		require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(step.Objects[0].Object, &ing))
		assert.Equal(t, "nginx", *ing.Spec.IngressClassName)
		rule := ing.Spec.Rules[0]
		assert.Equal(t, "shop.example.com", rule.Host)
		path := rule.HTTP.Paths[0]
		assert.Equal(t, "/", path.Path)
		assert.Equal(t, networkingv1.PathTypePrefix, *path.PathType)
		assert.Equal(t, "shop", path.Backend.Service.Name)
		assert.Equal(t, "http", path.Backend.Service.Port.Name)
	}
	assert.Equal(t, "internal-ca", find(m, "Ingress").GetAnnotations()["cert-manager.io/cluster-issuer"])

	m = mustRender(t, shop(), render.Options{})
	_, found, err := unstructured.NestedString(find(m, "Ingress").Object, "spec", "ingressClassName")
	require.NoError(t, err)
	assert.False(t, found, "the cluster's default class")
}

func TestNoDomainNoIngress(t *testing.T) {
	t.Parallel()
	app := shop()
	app.Domain = ""
	m := mustRender(t, app, render.Options{})
	assert.Len(t, m.Steps, len(render.Steps), "every step, even empty")
	assert.Empty(t, stepObjects(t, m, render.StepConfigureIngress))
	assert.Empty(t, stepObjects(t, m, render.StepSetupTLS))
	assert.Nil(t, find(m, "Ingress"))
	assert.NotContains(t, mustYAML(t, m), "kind: Ingress")
}

func TestNoSecrets(t *testing.T) {
	t.Parallel()
	for _, secrets := range []map[string]string{nil, {}} {
		app := shop()
		app.Secrets = secrets
		m := mustRender(t, app, render.Options{RedactSecrets: true})
		assert.Equal(t, []string{"ConfigMap/shop-config"}, stepObjects(t, m, render.StepApplyConfig))
		assert.Nil(t, find(m, "Secret"))
		assert.Equal(t, []corev1.EnvFromSource{
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "shop-config"}}},
		}, deployment(t, m).Spec.Template.Spec.Containers[0].EnvFrom)
		y := mustYAML(t, m)
		assert.NotContains(t, y, "secretRef")
		assert.NotContains(t, y, "shop-secrets")
	}
}

func TestConfigHash(t *testing.T) {
	t.Parallel()
	hash := func(edit func(*render.App)) string {
		t.Helper()
		app := shop()
		edit(&app)
		m := mustRender(t, app, render.Options{})
		require.Len(t, m.ConfigHash, 64)
		require.Equal(t, m.ConfigHash, deployment(t, m).Spec.Template.Annotations["vigil.dev/config-hash"])
		return m.ConfigHash
	}
	base := hash(func(*render.App) {})

	for name, edit := range map[string]func(*render.App){
		"image":        func(a *render.App) { a.Image = "registry.example.com/shop:2.0.0" },
		"revision":     func(a *render.App) { a.Revision = 7 },
		"replicas":     func(a *render.App) { a.Replicas = 5 },
		"owner":        func(a *render.App) { a.Owner = "team-b" },
		"domain":       func(a *render.App) { a.Domain = "" },
		"plan":         func(a *render.App) { a.Plan = "basic" },
		"display name": func(a *render.App) { a.DisplayName = "The shop" },
		"same maps":    func(a *render.App) { a.Env, a.Secrets = maps.Clone(a.Env), maps.Clone(a.Secrets) },
	} {
		assert.Equal(t, base, hash(edit), "%s is not configuration", name)
	}

	seen := map[string]string{"base": base}
	for name, edit := range map[string]func(*render.App){
		"env value":    func(a *render.App) { a.Env["LOG_LEVEL"] = "debug" },
		"env key":      func(a *render.App) { a.Env["DEBUG"] = "1" },
		"secret value": func(a *render.App) { a.Secrets["API_KEY"] = "other" },
		"secret key":   func(a *render.App) { a.Secrets["TOKEN"] = "t" },
		"no secrets":   func(a *render.App) { a.Secrets = nil },
		"port":         func(a *render.App) { a.Port = 9000 },
		"framework":    func(a *render.App) { a.Framework = "nodejs" },
		// The same strings, arranged differently, are another
		// configuration: the encoding is unambiguous.
		"secret moved to env": func(a *render.App) { a.Env["API_KEY"], a.Secrets = "s3cr3t", nil },
		"key/value boundary":  func(a *render.App) { a.Env = map[string]string{"LOG_LEVELi": "nfo"} },
	} {
		h := hash(edit)
		for other, oh := range seen {
			assert.NotEqual(t, oh, h, "%s and %s", name, other)
		}
		seen[name] = h
	}
}

func TestRedactSecrets(t *testing.T) {
	t.Parallel()
	plain := mustRender(t, shop(), render.Options{})
	red := mustRender(t, shop(), render.Options{RedactSecrets: true})

	var s corev1.Secret
	typed(t, plain, "Secret", &s)
	assert.Equal(t, map[string][]byte{"API_KEY": []byte("s3cr3t")}, s.Data)
	assert.Empty(t, s.StringData, "data round-trips through server-side apply; stringData does not")
	assert.Equal(t, corev1.SecretTypeOpaque, s.Type)
	assert.NotContains(t, s.Annotations, "vigil.dev/secret-values")

	typed(t, red, "Secret", &s)
	assert.Equal(t, map[string][]byte{"API_KEY": {}}, s.Data)
	assert.Equal(t, "managed by Vigil", s.Annotations["vigil.dev/secret-values"])

	// The hash is the real values', so the redacted Deployment is the one
	// applied.
	assert.Equal(t, plain.ConfigHash, red.ConfigHash)
	assert.Equal(t, find(plain, "Deployment").Object, find(red, "Deployment").Object)

	y := mustYAML(t, red)
	assert.NotContains(t, y, "s3cr3t")
	assert.NotContains(t, y, base64.StdEncoding.EncodeToString([]byte("s3cr3t")))
	assert.Contains(t, y, "API_KEY")
	assert.Contains(t, mustYAML(t, plain), base64.StdEncoding.EncodeToString([]byte("s3cr3t")))
}

func TestYAML(t *testing.T) {
	t.Parallel()
	app := shop()
	app.Plan = "advanced"
	for i := range 20 {
		app.Env[string(rune('A'+i))+"_VAR"] = "x"
		app.Secrets[string(rune('A'+i))+"_SECRET"] = "y"
	}
	m := mustRender(t, app, render.Options{RedactSecrets: true})
	first := mustYAML(t, m)
	for range 20 {
		// Map iteration order differs from run to run: the bytes must not.
		assert.Equal(t, first, mustYAML(t, mustRender(t, app, render.Options{RedactSecrets: true})))
	}

	docs := bytes.Split([]byte(first), []byte("\n---\n"))
	require.Len(t, docs, len(m.Objects()))
	for i, doc := range docs {
		var obj map[string]any
		require.NoError(t, yaml.Unmarshal(doc, &obj))
		assert.Equal(t, m.Objects()[i].Object, normalize(t, obj), "document %d reads back as the object", i)
		for _, k := range []string{"apiVersion", "kind", "metadata"} {
			assert.Contains(t, obj, k)
		}
		assert.NotContains(t, obj, "status")
	}
	assert.NotContains(t, first, "creationTimestamp")
	assert.NotContains(t, first, "null")
}

// normalize gives a decoded YAML document the number types of an
// unstructured object (int64).
func normalize(t *testing.T, obj map[string]any) map[string]any {
	t.Helper()
	b, err := yaml.Marshal(obj)
	require.NoError(t, err)
	u := &unstructured.Unstructured{}
	j, err := yaml.YAMLToJSON(b)
	require.NoError(t, err)
	require.NoError(t, u.UnmarshalJSON(j))
	return u.Object
}

func TestMonitoring(t *testing.T) {
	t.Parallel()
	m := mustRender(t, shop(), render.Options{})
	sm := find(m, "ServiceMonitor")
	assert.Equal(t, "monitoring.coreos.com/v1", sm.GetAPIVersion())
	sel, _, err := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	require.NoError(t, err)
	var svc corev1.Service
	typed(t, m, "Service", &svc)
	for k, v := range sel {
		assert.Equal(t, v, svc.Labels[k], "the ServiceMonitor selects the Service")
	}
	endpoints, _, err := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	require.NoError(t, err)
	assert.Equal(t, []any{map[string]any{"port": "http", "path": "/metrics", "interval": "30s"}}, endpoints)

	pr := find(m, "PrometheusRule")
	assert.Equal(t, "monitoring.coreos.com/v1", pr.GetAPIVersion())
	groups, _, err := unstructured.NestedSlice(pr.Object, "spec", "groups")
	require.NoError(t, err)
	require.Len(t, groups, 1)
	g := groups[0].(map[string]any)
	assert.Equal(t, "vigil.shop", g["name"])
	rules := g["rules"].([]any)
	require.NotEmpty(t, rules)
	for _, r := range rules {
		rule := r.(map[string]any)
		labels := rule["labels"].(map[string]any)
		assert.Equal(t, "shop", labels["app"], rule["alert"])
		assert.Equal(t, "shop", labels["namespace"], rule["alert"])
		assert.Contains(t, []any{"warning", "critical"}, labels["severity"], rule["alert"])
		assert.Contains(t, rule["expr"], `namespace="shop"`, rule["alert"])
	}
	// Deep copies work: the objects hold only JSON types.
	assert.Equal(t, pr.Object, pr.DeepCopy().Object)
}

// Kinds names every namespaced kind any plan renders, so deleting an
// app's objects by Kinds misses none.
func TestKindsCoverEveryPlan(t *testing.T) {
	t.Parallel()
	kinds := map[string]bool{}
	for _, k := range render.Kinds {
		kinds[k.GroupVersion().String()+"/"+k.Kind] = true
	}
	for _, plan := range render.Plans() {
		app := shop()
		app.Plan = plan
		for _, o := range mustRender(t, app, render.Options{}).Objects() {
			if o.GetKind() == "Namespace" {
				continue
			}
			assert.True(t, kinds[o.GetAPIVersion()+"/"+o.GetKind()], "plan %s renders %s %s, not in render.Kinds", plan, o.GetAPIVersion(), o.GetKind())
		}
	}
	assert.Equal(t, []string{"ingress-nginx", "monitoring"}, render.Options{}.TrustedNamespaces())
	assert.Equal(t, []string{"nginx", "obs"}, render.Options{IngressNamespace: "nginx", MonitoringNamespace: "obs"}.TrustedNamespaces())
}
