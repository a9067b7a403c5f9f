package chart

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit"
)

// kubeconformSchemas writes, for every kind the control plane serves (the
// monitoring CRDs installed first), the strict JSON schema kubeconform
// looks for, from the API server's own OpenAPI v2 document, and returns
// kubeconform's -schema-location for them. No network: the schemas are
// those of the very Kubernetes the tests run.
func kubeconformSchemas(t *testing.T, k *testkit.Kube) string {
	t.Helper()
	k.InstallMonitoringCRDs(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	raw, err := k.Clientset.Discovery().RESTClient().Get().AbsPath("/openapi/v2").DoRaw(ctx)
	require.NoError(t, err)
	var doc struct {
		Definitions map[string]any `json:"definitions"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	require.NotEmpty(t, doc.Definitions)
	for _, d := range doc.Definitions {
		strict(d)
	}
	// As openapi2jsonschema does: the API server takes a number or a
	// string for these.
	doc.Definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = map[string]any{"type": []string{"string", "integer"}}
	doc.Definitions["io.k8s.apimachinery.pkg.api.resource.Quantity"] = map[string]any{"type": []string{"string", "number"}}

	dir := t.TempDir()
	for name, d := range doc.Definitions {
		def, _ := d.(map[string]any)
		gvks, _ := def["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			gvk, _ := g.(map[string]any)
			group, _ := gvk["group"].(string)
			version, _ := gvk["version"].(string)
			kind, _ := gvk["kind"].(string)
			// kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}: the kind
			// in lower case, the group's first label, the version.
			file := strings.ToLower(kind)
			if group != "" {
				file += "-" + strings.ToLower(strings.Split(group, ".")[0])
			}
			file += "-" + strings.ToLower(version) + ".json"
			schema := map[string]any{"$ref": "#/definitions/" + name, "definitions": reachable(doc.Definitions, name)}
			b, err := json.Marshal(schema)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, file), b, 0o600))
		}
	}
	return filepath.Join(dir, "{{ .ResourceKind }}{{ .KindSuffix }}.json")
}

// reachable are the definitions name refers to, directly or not, and
// itself: what kubeconform needs to compile for that kind, not all of them.
func reachable(defs map[string]any, name string) map[string]any {
	out := map[string]any{}
	var walk func(v any)
	visit := func(n string) {
		if _, seen := out[n]; seen {
			return
		}
		out[n] = defs[n]
		walk(defs[n])
	}
	walk = func(v any) {
		switch s := v.(type) {
		case map[string]any:
			if ref, ok := s["$ref"].(string); ok {
				visit(strings.TrimPrefix(ref, "#/definitions/"))
			}
			for _, c := range s {
				walk(c)
			}
		case []any:
			for _, c := range s {
				walk(c)
			}
		}
	}
	visit(name)
	return out
}

// strict forbids properties a schema does not name, in it and every schema
// inside it (kubeconform's -strict schemas), and accepts the explicit nulls
// the API server does (nullable fields).
func strict(v any) {
	switch s := v.(type) {
	case map[string]any:
		if props, ok := s["properties"].(map[string]any); ok && len(props) > 0 {
			if _, set := s["additionalProperties"]; !set {
				s["additionalProperties"] = false
			}
		}
		if f, _ := s["format"].(string); f == "int-or-string" {
			delete(s, "format")
			s["type"] = []string{"string", "integer"}
		}
		for _, c := range s {
			strict(c)
		}
	case []any:
		for _, c := range s {
			strict(c)
		}
	}
}

// kubeconform validates manifest against the schemas at location, strictly
// (unknown fields and duplicate keys are errors), and fails the test with
// its report when anything is invalid or has no schema.
func kubeconform(t *testing.T, location, manifest string) {
	t.Helper()
	out, err := kubeconformRun(t, location, manifest)
	require.NoError(t, err, "kubeconform -strict:\n%s", out)
	require.Contains(t, out, "Invalid: 0, Errors: 0, Skipped: 0", out)
}

func kubeconformRun(t *testing.T, location, manifest string) (string, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "manifest.yaml")
	require.NoError(t, os.WriteFile(file, []byte(manifest), 0o600))
	return run(t, nil, "kubeconform", "-strict", "-summary", "-output", "text", "-schema-location", location, file)
}
