package kubedev

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// kwok serves container logs (the API server's pods/log) from files in
// the CRI log format: ClusterLogs in stages.yaml gives every container
// logs/app.log, and the crash stages give each crashing pod a Logs
// resource (this CRD) pointing its failing containers at logs/crash.log
// or logs/oomkill.log. The paths are relative to the cluster directory,
// where kwok runs.
//
//go:embed kwok-logs-crd.yaml
var logsCRD []byte

type logLine struct{ stream, text string }

var containerLogs = map[string][]logLine{
	"app.log": {
		{"stdout", "starting"},
		{"stdout", "listening on :8080"},
	},
	"crash.log": {
		// Exit code 1, so not a Go panic (2): a fatal error at start.
		{"stdout", "starting"},
		{"stderr", "error: load config: required variable DATABASE_URL is not set"},
	},
	"oomkill.log": {
		{"stdout", "starting"},
		{"stdout", "loading cache"},
		{"stderr", "fatal error: runtime: out of memory"},
	},
}

// writeContainerLogs writes the log files kwok serves into dir/logs,
// stamped now (so `kubectl logs --since` finds them).
func writeContainerLogs(dir string, now time.Time) error {
	logDir := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return fmt.Errorf("kubedev: %w", err)
	}
	for name, lines := range containerLogs {
		var b strings.Builder
		for i, l := range lines {
			// CRI format: timestamp, stream, F(ull line), text.
			ts := now.Add(time.Duration(i) * time.Millisecond).UTC().Format(time.RFC3339Nano)
			fmt.Fprintf(&b, "%s %s F %s\n", ts, l.stream, l.text)
		}
		if err := os.WriteFile(filepath.Join(logDir, name), []byte(b.String()), 0o600); err != nil {
			return fmt.Errorf("kubedev: %w", err)
		}
	}
	return nil
}

// installLogsCRD creates kwok's Logs CRD (if missing) and waits until the
// API server serves it, so kwok can watch it and the stages create Logs.
func (c *Cluster) installLogsCRD(ctx context.Context, cfg *rest.Config) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	crds := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	obj := map[string]any{}
	if err := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(logsCRD), 4096).Decode(&obj); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("kubedev: kwok-logs-crd.yaml: %w", err)
	}
	crd := &unstructured.Unstructured{Object: obj}
	if _, err := crds.Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kubedev: create CRD %s: %w", crd.GetName(), err)
	}
	return c.waitFor(ctx, "CRD "+crd.GetName()+" to be established", func(ctx context.Context) (bool, error) {
		got, err := crds.Get(ctx, crd.GetName(), metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, cond := range conds {
			if m, ok := cond.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
}
