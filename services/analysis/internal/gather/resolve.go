// Package gather reads, from a cluster, what an incident is about: it
// resolves the incident's target (Pod → ReplicaSet → Deployment, ...)
// from its alert labels, and gathers the target's state, pods, events and
// log tails into an evidence bundle, each gatherer bounded in time and
// size and recorded with its source. It only reads.
package gather

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/workload"
)

// Resolve finds the workload of subject s in cluster: nil (and why) when
// it names none that exists. A pod leads to its controller; a name
// without a kind is a Deployment, StatefulSet or DaemonSet of that name,
// or the one Deployment labelled app.kubernetes.io/name with it. It looks
// only in the subject's namespace.
func Resolve(ctx context.Context, kc kubernetes.Interface, cluster string, s *typesv1.Subject) (*typesv1.ResourceRef, string, error) {
	ns, name := s.GetNamespace(), s.GetName()
	if ns == "" {
		return nil, "the incident's subject names no namespace", nil
	}
	ref := func(kind, name string) *typesv1.ResourceRef {
		return &typesv1.ResourceRef{Cluster: cluster, Namespace: ns, Kind: kind, Name: name}
	}
	if pod := s.GetPod(); pod != "" {
		if r, err := workload.Controller(ctx, kc, ns, "Pod", pod); err == nil {
			return ref(r.Kind, r.Name), "", nil
		}
	}
	kinds := []string{s.GetKind()}
	if s.GetKind() == "" {
		kinds = []string{"Deployment", "StatefulSet", "DaemonSet"}
	}
	if name != "" {
		for _, kind := range kinds {
			if ok, err := exists(ctx, kc, ns, kind, name); err != nil {
				return nil, "", err
			} else if ok {
				return ref(kind, name), "", nil
			}
		}
	}
	if name != "" && s.GetKind() == "" {
		deps, err := kc.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + name, Limit: 2})
		if err != nil {
			return nil, "", fmt.Errorf("list deployments of %s/%s: %w", ns, name, err)
		}
		if len(deps.Items) == 1 {
			return ref("Deployment", deps.Items[0].Name), "", nil
		}
	}
	return nil, "no workload in namespace " + ns + " matches the incident's subject (pod, workload or app name)", nil
}

func exists(ctx context.Context, kc kubernetes.Interface, ns, kind, name string) (bool, error) {
	var err error
	switch kind {
	case "Deployment":
		_, err = kc.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	case "StatefulSet":
		_, err = kc.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
	case "DaemonSet":
		_, err = kc.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
	case "Job":
		_, err = kc.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	default:
		return false, nil
	}
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, fmt.Errorf("get %s %s/%s: %w", kind, ns, name, err)
}
