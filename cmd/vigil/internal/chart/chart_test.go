package chart

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/vigil-ops/vigil/pkg/testkit"
)

// The chart ships the nats.conf of deploy/nats (the eval profile's NATS
// reads it): a copy, since Helm reads only files inside the chart.
func TestChartNATSConfigIsTheShippedOne(t *testing.T) {
	shipped, err := os.ReadFile(filepath.Join(root(t), "deploy", "nats", "nats.conf"))
	require.NoError(t, err)
	copied, err := os.ReadFile(filepath.Join(chartDir(t), "files", "nats.conf"))
	require.NoError(t, err)
	require.Equal(t, string(shipped), string(copied),
		"deploy/helm/vigil/files/nats.conf differs from deploy/nats/nats.conf: cp deploy/nats/nats.conf deploy/helm/vigil/files/nats.conf")
}

func TestChartLint(t *testing.T) {
	for name, args := range map[string][]string{
		"default": nil,
		"eval":    {"-f", evalValues},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := helm(t, append([]string{"lint", "--strict", "deploy/helm/vigil"}, args...)...)
			require.NoError(t, err, out)
			require.Contains(t, out, "1 chart(s) linted, 0 chart(s) failed")
		})
	}
}

// values.schema.json refuses a value of the wrong type and a key it does
// not know, naming it, and nothing is rendered.
func TestChartSchemaRefusesBadValues(t *testing.T) {
	for name, tc := range map[string]struct {
		set  string
		want []string
	}{
		"a count that is not a number":  {"services.gateway.replicas=two", []string{"at '/services/gateway/replicas': got string, want integer"}},
		"a misspelt key":                {"services.gateway.replica=2", []string{"at '/services/gateway': additional properties 'replica' not allowed"}},
		"an unknown service":            {"services.web.replicas=2", []string{"at '/services': additional properties 'web' not allowed"}},
		"a value not among the choices": {"postgres.sslmode=on", []string{"at '/postgres/sslmode': value must be one of"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := helm(t, "lint", "--strict", "deploy/helm/vigil", "--set", tc.set)
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			require.Contains(t, err.Error(), "1 chart(s) failed")
			out, err := helm(t, "template", "vigil", "deploy/helm/vigil", "--set", tc.set)
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			require.Empty(t, out, "nothing rendered")
		})
	}
}

// Every profile renders objects the dev control plane's own schemas accept
// strictly (kubeconform), and its API server accepts in a server-side
// dry-run apply, admission included.
func TestChartRendersValidObjects(t *testing.T) {
	k := testkit.SharedKube(t)
	location := kubeconformSchemas(t, k)
	ns := k.Namespace(t)

	// The schemas are strict: a field Kubernetes does not know is refused.
	_, err := kubeconformRun(t, location, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n  selector: {matchLabels: {a: b}}\n  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: x, image: x}]}}\n")
	require.ErrorContains(t, err, "additional properties 'replica' not allowed")

	for name, tc := range map[string]struct {
		args []string
		want map[string]int
	}{
		"default":              {nil, map[string]int{"Deployment": 6, "Service": 6, "PodDisruptionBudget": 6, "NetworkPolicy": 10, "Job": 3, "ServiceAccount": 8}},
		"eval":                 {[]string{"-f", evalValues}, map[string]int{"Deployment": 6, "StatefulSet": 2, "Service": 8, "ConfigMap": 1, "NetworkPolicy": 12, "Job": 3}},
		"eval without volumes": {[]string{"-f", evalValues, "--set", "eval.persistence=false"}, map[string]int{"StatefulSet": 2}},
		// Secrets all the operator's: no secrets Job, nor its rights.
		"own secrets": {[]string{"--set", "keys.existingSecret=k,nats.existingSecret=n,postgres.existingSecret=p"}, map[string]int{"Job": 2, "Role": 0, "RoleBinding": 0, "ServiceAccount": 7}},
		"full": {nil, map[string]int{
			"Ingress": 1, "ServiceMonitor": 1, "PrometheusRule": 1, "ConfigMap": 1, "ClusterRole": 1, "ClusterRoleBinding": 1, "Secret": 1,
		}},
	} {
		t.Run(name, func(t *testing.T) {
			args := tc.args
			if name == "full" {
				args = []string{"-f", fullValues(t)} // a file of the test's own
			}
			manifest, err := helm(t, append([]string{"template", "vigil", "deploy/helm/vigil", "--namespace", ns}, args...)...)
			require.NoError(t, err)
			kubeconform(t, location, manifest)

			objs := objects(t, manifest)
			got := kinds(objs)
			for kind, n := range tc.want {
				require.Equal(t, n, got[kind], "%s objects; rendered: %s", kind, jsonOf(got))
			}
			for _, o := range objs {
				shipped(t, o)
			}
			apply(t, k, ns, objs, true)
		})
	}
}

// shipped checks what the chart carries from files/ into an object: the
// PrometheusRule's spec is groups of named rules (files/prometheus-rules.yaml
// holds the groups), the dashboard's ConfigMap a Grafana dashboard in JSON.
// The CRD stand-ins leave spec open, so kubeconform and the API server do
// not check these.
func shipped(t *testing.T, o *unstructured.Unstructured) {
	t.Helper()
	switch o.GetKind() {
	case "PrometheusRule":
		groups, found, err := unstructured.NestedSlice(o.Object, "spec", "groups")
		require.NoError(t, err, "spec.groups of files/prometheus-rules.yaml: a list")
		require.True(t, found, "files/prometheus-rules.yaml: want the PrometheusRule's spec, groups: [...]")
		for _, g := range groups {
			group, ok := g.(map[string]any)
			require.True(t, ok, "a group: %v", g)
			require.NotEmpty(t, group["name"], "every group has a name")
			_, isList := group["rules"].([]any)
			require.True(t, isList, "group %v: rules: [...]", group["name"])
		}
	case "ConfigMap":
		if o.GetName() != "vigil-dashboard" {
			return
		}
		data, _, _ := unstructured.NestedString(o.Object, "data", "vigil.json")
		var dashboard map[string]any
		require.NoError(t, json.Unmarshal([]byte(data), &dashboard), "files/dashboards/vigil.json")
		require.NotEmpty(t, dashboard["title"])
		require.Equal(t, "1", o.GetLabels()["grafana_dashboard"], "the sidecar's label")
	}
}
