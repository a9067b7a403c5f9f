package chart

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/vigil-ops/vigil/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// root is the repository's root: the directory holding go.work.
func root(t *testing.T) string { return testkit.RepoRoot(t) }

// chartDir is deploy/helm/vigil.
func chartDir(t *testing.T) string { return filepath.Join(root(t), "deploy", "helm", "vigil") }

// tool is the path of a pinned tool in .bin (tools/<name>), failing the
// test with how to build it when it is missing.
func tool(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(root(t), ".bin", name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s: %v: run `make tools` (it builds the pinned %s of tools/%s into .bin)", path, err, name, name)
	}
	return path
}

// run runs a pinned tool and returns its standard output; err carries its
// standard error.
func run(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool(t, name), args...)
	cmd.Dir = root(t)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), errors.New(strings.TrimSpace(stderr.String() + "\n" + stdout.String() + "\n" + err.Error()))
	}
	return stdout.String(), nil
}

// helm runs .bin/helm with its caches and configuration in the test's
// temporary directory, so nothing of the user's is read or written.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	env := []string{
		"HELM_CACHE_HOME=" + filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME=" + filepath.Join(home, "config"),
		"HELM_DATA_HOME=" + filepath.Join(home, "data"),
	}
	return run(t, env, "helm", args...)
}

// The values files of the profiles the tests render.
const (
	evalValues = "deploy/helm/vigil/values-eval.yaml"
)

// fullValues turns on everything off by default: Ingress, the Prometheus
// Operator's objects, the dashboard, cluster access, and limits traffic
// to NATS and Postgres to named peers.
func fullValues(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "full.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`
ingress:
  enabled: true
  className: nginx
  annotations: {cert-manager.io/cluster-issuer: letsencrypt}
  hosts:
    - host: vigil.example.com
      paths: [{path: /, pathType: Prefix}]
  tls:
    - {secretName: vigil-tls, hosts: [vigil.example.com]}
metrics:
  serviceMonitor: {enabled: true, labels: {release: kps}}
  prometheusRule: {enabled: true}
  dashboard: {enabled: true}
rbac:
  clusterAccess: true
networkPolicy:
  natsTo:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: nats}}
  postgresTo:
    - ipBlock: {cidr: 10.20.0.0/16}
  gatewayFrom:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ingress-nginx}}
services:
  notify:
    envFromSecret: vigil-notify
    env: {VIGIL_LANGUAGE: zh-TW}
  gateway:
    replicas: 3
    env: {VIGIL_TRUSTED_PROXIES: 10.0.0.0/8}
postgres:
  admin: {existingSecret: pg-superuser}
`), 0o600))
	return file
}

// objects decodes a multi-document YAML stream into its objects.
func objects(t *testing.T, manifest string) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	var out []*unstructured.Unstructured
	for {
		obj := map[string]any{}
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		if len(obj) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: obj})
	}
}

// kinds counts the objects of each kind.
func kinds(objs []*unstructured.Unstructured) map[string]int {
	out := map[string]int{}
	for _, o := range objs {
		out[o.GetKind()]++
	}
	return out
}

// jsonOf is v as indented JSON, for failure messages.
func jsonOf(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// apply applies objs server-side on k as admin, in namespace ns where they
// are namespaced (only a dry run with dryRun), and deletes what it made
// outside ns when the test ends (ns goes with the test).
func apply(t *testing.T, k *testkit.Kube, ns string, objs []*unstructured.Unstructured, dryRun bool) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(k.Config)
	require.NoError(t, err)
	dc, err := discovery.NewDiscoveryClientForConfig(k.Config)
	require.NoError(t, err)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := metav1.PatchOptions{FieldManager: "vigil-chart-test", Force: new(true)}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	for _, o := range objs {
		m, err := mapper.RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version)
		require.NoError(t, err, "%s %s", o.GetKind(), o.GetName())
		data, err := o.MarshalJSON()
		require.NoError(t, err)
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = dyn.Resource(m.Resource).Namespace(ns)
		} else if !dryRun {
			t.Cleanup(func() { _ = ri.Delete(context.Background(), o.GetName(), metav1.DeleteOptions{}) })
		}
		_, err = ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, opts)
		require.NoError(t, err, "server-side apply (dry run: %v) of %s %s", dryRun, o.GetKind(), o.GetName())
	}
}

// only keeps the objects of the kinds named.
func only(objs []*unstructured.Unstructured, kinds ...string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if slices.Contains(kinds, o.GetKind()) {
			out = append(out, o)
		}
	}
	return out
}
