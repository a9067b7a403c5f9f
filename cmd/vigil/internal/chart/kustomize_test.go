package chart

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/vigil-ops/vigil/pkg/testkit"
)

// kustomize renders a kustomization with the pinned Kustomize
// (tools/kustomize): the engine `kubectl apply -k` embeds, without needing
// kubectl, which Debian does not package.
func kustomize(t *testing.T, dir string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, tool(t, "kustomize"), "build", filepath.Join(root(t), dir))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "kustomize build %s: %s", dir, stderr.String())
	return stdout.String()
}

// deploy/k8s/base is what the chart renders with its default values.
func TestKustomizeBaseIsTheChart(t *testing.T) {
	rendered, err := helm(t, "template", "vigil", "deploy/helm/vigil", "--namespace", "vigil")
	require.NoError(t, err)
	base, err := os.ReadFile(filepath.Join(root(t), "deploy", "k8s", "base", "vigil.yaml"))
	require.NoError(t, err)
	require.Equal(t, rendered, string(base),
		"deploy/k8s/base/vigil.yaml is not what the chart renders: .bin/helm template vigil deploy/helm/vigil --namespace vigil > deploy/k8s/base/vigil.yaml")

	objs := objects(t, kustomize(t, "deploy/k8s/base"))
	require.Equal(t, kinds(objects(t, rendered)), kinds(objs))
	for _, o := range objs {
		require.Equal(t, "vigil", o.GetNamespace(), "%s %s", o.GetKind(), o.GetName())
	}
}

// The example overlay renders objects the API server's schemas accept, in
// its namespace, with its image, replicas and NATS.
func TestKustomizeOverlay(t *testing.T) {
	k := testkit.SharedKube(t)
	manifest := kustomize(t, "deploy/k8s/overlays/example")
	kubeconform(t, kubeconformSchemas(t, k), manifest)

	deployments := 0
	for _, o := range objects(t, manifest) {
		require.Equal(t, "vigil-prod", o.GetNamespace(), "%s %s", o.GetKind(), o.GetName())
		if o.GetKind() == "RoleBinding" {
			subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
			require.Equal(t, "vigil-prod", subjects[0].(map[string]any)["namespace"], "the RoleBinding names the moved service account")
		}
		if o.GetKind() != "Deployment" {
			continue
		}
		deployments++
		replicas, _, _ := unstructured.NestedFieldNoCopy(o.Object, "spec", "replicas")
		want := "2"
		if o.GetName() == "vigil-gateway" {
			want = "3"
		}
		require.Equal(t, want, fmt.Sprint(replicas), o.GetName())
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		c := containers[0].(map[string]any)
		require.Equal(t, "registry.example.com/vigil:0.1.0", c["image"], o.GetName())
		env := map[string]any{}
		for _, e := range c["env"].([]any) {
			env[e.(map[string]any)["name"].(string)] = e.(map[string]any)["value"]
		}
		require.Equal(t, "nats://nats.nats.svc:4222", env["VIGIL_NATS_URL"], o.GetName())
	}
	require.Equal(t, 6, deployments)
}
