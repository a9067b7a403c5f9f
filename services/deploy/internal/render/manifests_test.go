package render_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/deploy/internal/kube"
	"github.com/vigil-ops/vigil/services/deploy/internal/render"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestMain(m *testing.M) { testkit.Main(m) }

func shop() render.App {
	return render.App{
		Name: "shop", Namespace: "shop", DisplayName: "Shop", Domain: "shop.example.com",
		Framework: "flask", Plan: "standard", Image: "registry.example.com/shop:1.0.0",
		Env: map[string]string{"LOG_LEVEL": "info"}, Secrets: map[string]string{"API_KEY": "s3cr3t"},
		Owner: "team-a", Revision: 1,
	}
}

func find(m *render.Manifests, kind string) *unstructured.Unstructured {
	for _, o := range m.Objects() {
		if o.GetKind() == kind {
			return o
		}
	}
	return nil
}

func stepObjects(m *render.Manifests, step string) []string {
	for _, s := range m.Steps {
		if s.Name == step {
			var out []string
			for _, o := range s.Objects {
				out = append(out, o.GetKind()+"/"+o.GetName())
			}
			return out
		}
	}
	return nil
}

func TestStepsAndObjects(t *testing.T) {
	t.Parallel()
	m, err := render.Render(shop(), render.Options{})
	require.NoError(t, err)
	var names []string
	for _, s := range m.Steps {
		names = append(names, s.Name)
	}
	assert.Equal(t, render.Steps, names)
	assert.Equal(t, []string{"Namespace/shop", "ServiceAccount/shop", "NetworkPolicy/shop-isolation"}, stepObjects(m, render.StepCreateNamespace))
	assert.Equal(t, []string{"ConfigMap/shop-config", "Secret/shop-secrets"}, stepObjects(m, render.StepApplyConfig))
	assert.Equal(t, []string{"Deployment/shop", "Service/shop", "PodDisruptionBudget/shop"}, stepObjects(m, render.StepDeployApp))
	assert.Equal(t, []string{"Ingress/shop"}, stepObjects(m, render.StepConfigureIngress))
	assert.Equal(t, []string{"Ingress/shop"}, stepObjects(m, render.StepSetupTLS))
	assert.Equal(t, []string{"ServiceMonitor/shop", "PrometheusRule/shop"}, stepObjects(m, render.StepConfigureMonitoring))
	assert.Empty(t, stepObjects(m, render.StepEnableAutoRepair))

	// The Ingress appears once, in its final form: with TLS.
	ing := find(m, "Ingress")
	tls, _, _ := unstructured.NestedSlice(ing.Object, "spec", "tls")
	assert.Len(t, tls, 1)
	assert.Equal(t, "letsencrypt", ing.GetAnnotations()["cert-manager.io/cluster-issuer"])
	n := 0
	for _, o := range m.Objects() {
		if o.GetKind() == "Ingress" {
			n++
		}
	}
	assert.Equal(t, 1, n)
}

func TestPlansAndFrameworks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		plan     string
		cpu, mem string
		limitCPU string
		replicas int64
		hpa      bool
		hpaMax   int64
	}{
		{"basic", "250m", "256Mi", "500m", 1, false, 0},
		{"standard", "500m", "512Mi", "1", 2, false, 0},
		{"advanced", "1", "1Gi", "2", 3, true, 6},
		{"professional", "2", "2Gi", "4", 3, true, 9},
	} {
		t.Run(tc.plan, func(t *testing.T) {
			t.Parallel()
			app := shop()
			app.Plan = tc.plan
			m, err := render.Render(app, render.Options{})
			require.NoError(t, err)
			d := find(m, "Deployment")
			replicas, found, _ := unstructured.NestedInt64(d.Object, "spec", "replicas")
			assert.Equal(t, !tc.hpa, found, "the HPA, when there is one, owns the replica count")
			containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
			c := containers[0].(map[string]any)
			assert.Equal(t, tc.cpu, c["resources"].(map[string]any)["requests"].(map[string]any)["cpu"])
			assert.Equal(t, tc.mem, c["resources"].(map[string]any)["requests"].(map[string]any)["memory"])
			assert.Equal(t, tc.limitCPU, c["resources"].(map[string]any)["limits"].(map[string]any)["cpu"])
			hpa := find(m, "HorizontalPodAutoscaler")
			assert.Equal(t, tc.hpa, hpa != nil)
			if hpa != nil {
				minR, _, _ := unstructured.NestedInt64(hpa.Object, "spec", "minReplicas")
				maxR, _, _ := unstructured.NestedInt64(hpa.Object, "spec", "maxReplicas")
				assert.Equal(t, tc.replicas, minR)
				assert.Equal(t, tc.hpaMax, maxR)
			} else {
				assert.Equal(t, tc.replicas, replicas)
			}
		})
	}
	assert.Equal(t, []string{"basic", "standard", "advanced", "professional"}, render.Plans())
	assert.Equal(t, []string{"django", "flask", "go", "nextjs", "nodejs", "static"}, render.Frameworks())

	app := shop()
	app.Framework, app.Port, app.Replicas = "nextjs", 4000, 5
	m, err := render.Render(app, render.Options{})
	require.NoError(t, err)
	cm := find(m, "ConfigMap")
	data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	assert.Equal(t, map[string]string{"PORT": "4000", "NODE_ENV": "production", "NEXT_TELEMETRY_DISABLED": "1", "LOG_LEVEL": "info"}, data)
	d := find(m, "Deployment")
	replicas, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas")
	assert.Equal(t, int64(5), replicas)
	assert.Contains(t, mustYAML(t, m), "path: /api/health")
}

func TestWithoutDomainOrSecrets(t *testing.T) {
	t.Parallel()
	app := shop()
	app.Domain, app.Secrets = "", nil
	m, err := render.Render(app, render.Options{})
	require.NoError(t, err)
	assert.Empty(t, stepObjects(m, render.StepConfigureIngress))
	assert.Empty(t, stepObjects(m, render.StepSetupTLS))
	assert.Nil(t, find(m, "Secret"))
	assert.NotContains(t, mustYAML(t, m), "secretRef", "no Secret referenced when there is none")
}

func TestConfigHash(t *testing.T) {
	t.Parallel()
	hash := func(edit func(*render.App)) string {
		app := shop()
		edit(&app)
		m, err := render.Render(app, render.Options{})
		require.NoError(t, err)
		d := find(m, "Deployment")
		ann, _, _ := unstructured.NestedStringMap(d.Object, "spec", "template", "metadata", "annotations")
		require.Equal(t, m.ConfigHash, ann["vigil.dev/config-hash"])
		return m.ConfigHash
	}
	base := hash(func(*render.App) {})
	assert.Equal(t, base, hash(func(a *render.App) { a.Image = "registry.example.com/shop:2" }), "images are not configuration")
	assert.Equal(t, base, hash(func(a *render.App) { a.Revision = 7 }))
	assert.NotEqual(t, base, hash(func(a *render.App) { a.Env = map[string]string{"LOG_LEVEL": "debug"} }))
	assert.NotEqual(t, base, hash(func(a *render.App) { a.Secrets = map[string]string{"API_KEY": "other"} }))
	assert.NotEqual(t, base, hash(func(a *render.App) {
		a.Env, a.Secrets = map[string]string{"LOG_LEVEL": "info", "API_KEY": "s3cr3t"}, nil
	}), "a value moved from secrets to env is another configuration")

	// Redacted output keeps the real values' hash and loses the values.
	red, err := render.Render(shop(), render.Options{RedactSecrets: true})
	require.NoError(t, err)
	assert.Equal(t, base, red.ConfigHash)
	y := mustYAML(t, red)
	assert.NotContains(t, y, "s3cr3t")
	assert.NotContains(t, y, "czNjcjN0", "nor base64")
	assert.Contains(t, y, "API_KEY")
}

func TestInvalidInput(t *testing.T) {
	t.Parallel()
	for field, edit := range map[string]func(*render.App){
		"app.framework": func(a *render.App) { a.Framework = "rails" },
		"app.plan":      func(a *render.App) { a.Plan = "gold" },
		"app.image":     func(a *render.App) { a.Image = "" },
		"app.name":      func(a *render.App) { a.Name = "Shop" },
	} {
		app := shop()
		edit(&app)
		_, err := render.Render(app, render.Options{})
		var fe *render.FieldError
		require.ErrorAs(t, err, &fe, field)
		assert.Equal(t, field, fe.Field)
	}
}

func mustYAML(t *testing.T, m *render.Manifests) string {
	t.Helper()
	y, err := m.YAML()
	require.NoError(t, err)
	return string(y)
}

// Golden files: the rendered YAML of every framework × plan, reviewed when
// it changes (go test ./internal/render -run Golden -update rewrites them).
func TestGolden(t *testing.T) {
	t.Parallel()
	for _, fw := range render.Frameworks() {
		for _, plan := range render.Plans() {
			t.Run(fw+"-"+plan, func(t *testing.T) {
				t.Parallel()
				app := shop()
				app.Framework, app.Plan = fw, plan
				m, err := render.Render(app, render.Options{RedactSecrets: true})
				require.NoError(t, err)
				got := mustYAML(t, m)
				again, err := render.Render(app, render.Options{RedactSecrets: true})
				require.NoError(t, err)
				require.Equal(t, got, mustYAML(t, again), "deterministic")
				path := filepath.Join("testdata", "golden", fw+"-"+plan+".yaml")
				if *update {
					require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
				}
				want, err := os.ReadFile(path)
				require.NoError(t, err, "run with -update to create it")
				assert.Equal(t, string(want), got)
			})
		}
	}
}

// Every rendered object of every framework × plan passes a server-side
// dry-run on a real API server: schema validation, defaulting and
// admission, Pod Security "restricted" included.
func TestServerSideDryRun(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	k.InstallMonitoringCRDs(t)
	client, err := kube.NewClient(k.Config)
	require.NoError(t, err)
	for i, fw := range render.Frameworks() {
		for j, plan := range render.Plans() {
			t.Run(fw+"-"+plan, func(t *testing.T) {
				app := shop()
				app.Framework, app.Plan = fw, plan
				app.Name = fmt.Sprintf("dry-%d-%d", i, j)
				app.Namespace = app.Name
				app.Domain = app.Name + ".example.com"
				m, err := render.Render(app, render.Options{})
				require.NoError(t, err)
				// Namespaced dry-runs need the namespace: create it for real.
				ns := m.Steps[0].Objects[0]
				require.Equal(t, "Namespace", ns.GetKind())
				_, err = client.Apply(t.Context(), ns, false)
				require.NoError(t, err)
				t.Cleanup(func() {
					_ = k.Clientset.CoreV1().Namespaces().Delete(context.Background(), app.Namespace, metav1.DeleteOptions{})
				})
				for _, o := range m.Objects()[1:] {
					_, err := client.Apply(t.Context(), o, true)
					require.NoError(t, err, "%s/%s", o.GetKind(), o.GetName())
				}
			})
		}
	}
}
