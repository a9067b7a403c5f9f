package testkit

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/vigil-ops/vigil/pkg/kubedev"
)

// Kube is a running Kubernetes control plane (see pkg/kubedev).
type Kube struct {
	// Config is an admin (system:masters) client configuration.
	Config *rest.Config
	// Kubeconfig is the path of an admin kubeconfig file.
	Kubeconfig string
	// Clientset talks to it as admin.
	Clientset kubernetes.Interface
}

var sharedKube struct {
	once sync.Once
	kube *Kube
	err  error
}

// KubeBinDir is where the control plane's binaries are looked for:
// $VIGIL_K8S_BIN_DIR, or where `make k8s-bins` builds them.
func KubeBinDir() string {
	if dir := os.Getenv("VIGIL_K8S_BIN_DIR"); dir != "" {
		return dir
	}
	return kubedev.DefaultBinDir()
}

// SharedKube returns the test binary's Kubernetes control plane, started
// on first use (about ten seconds) and stopped by Main. Tests share it and
// isolate themselves by namespace (Namespace).
//
// Without the binaries it fails the test with how to build them; it never
// skips.
func SharedKube(t testing.TB) *Kube {
	t.Helper()
	sharedKube.once.Do(func() {
		sharedKube.kube, sharedKube.err = startKube(onExit)
	})
	if sharedKube.err != nil {
		t.Fatalf("testkit: start Kubernetes: %v", sharedKube.err)
	}
	return sharedKube.kube
}

// NewKube starts a control plane of the test's own, stopped when the test
// ends: for tests that need a second API server (several clusters).
func NewKube(t testing.TB) *Kube {
	t.Helper()
	k, err := startKube(t.Cleanup)
	if err != nil {
		t.Fatalf("testkit: start Kubernetes: %v", err)
	}
	return k
}

func startKube(cleanup func(func())) (*Kube, error) {
	// Not t.TempDir: the shared cluster outlives the first test.
	dir, err := os.MkdirTemp("", "vigil-testkit-kube-")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := kubedev.Start(ctx, kubedev.Options{BinDir: KubeBinDir(), Dir: dir, Nodes: 2})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	cleanup(func() {
		c.Stop()
		_ = os.RemoveAll(dir)
	})
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return nil, err
	}
	return &Kube{Config: c.Config, Kubeconfig: c.Kubeconfig, Clientset: cs}, nil
}

//go:embed monitoring-crds.yaml
var monitoringCRDs []byte

// InstallMonitoringCRDs installs stand-ins for the Prometheus Operator's
// ServiceMonitor and PrometheusRule CRDs (monitoring.coreos.com/v1, schema
// left open) and waits until the API server serves them. Installing them
// again is harmless.
func (k *Kube) InstallMonitoringCRDs(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dyn, err := dynamic.NewForConfig(k.Config)
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	crds := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(monitoringCRDs), 4096)
	var names []string
	for {
		obj := map[string]any{}
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("testkit: monitoring-crds.yaml: %v", err)
		}
		u := &unstructured.Unstructured{Object: obj}
		data, err := u.MarshalJSON()
		if err != nil {
			t.Fatalf("testkit: %v", err)
		}
		if _, err := crds.Patch(ctx, u.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "testkit", Force: ptr.To(true)}); err != nil {
			t.Fatalf("testkit: install CRD %s: %v", u.GetName(), err)
		}
		names = append(names, u.GetName())
	}
	for _, name := range names {
		err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			crd, err := crds.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, c := range conds {
				if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("testkit: CRD %s not established: %v", name, err)
		}
	}
}

// Namespace creates a namespace for the test on k, named after it, and
// deletes it when the test ends. It returns once pods can be created in
// it (its default service account exists).
func (k *Kube) Namespace(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns, err := k.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: namespacePrefix(t.Name())},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("testkit: create namespace: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := k.Clientset.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("testkit: delete namespace %s: %v", ns.Name, err)
		}
	})
	if err := kubedev.WaitForServiceAccount(ctx, k.Clientset, ns.Name); err != nil {
		t.Fatalf("testkit: %v", err)
	}
	return ns.Name
}

// namespacePrefix turns a test name into the start of a DNS-1123 label,
// leaving room for the generated suffix.
func namespacePrefix(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			if s := b.String(); s != "" && !strings.HasSuffix(s, "-") {
				b.WriteByte('-')
			}
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > 40 {
		name = strings.TrimRight(name[:40], "-")
	}
	if name == "" || name[0] < 'a' {
		name = "t" + name
	}
	return name + "-"
}
