package workload

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Ref names an object in a namespace by kind and name.
type Ref struct{ Kind, Name string }

// Controller follows controller owner references from kind/name in
// namespace ns up to the workload that controls it: Pod → ReplicaSet →
// Deployment, Pod → StatefulSet, Pod → Job → CronJob... An object of a
// kind it does not read (a Deployment, a StatefulSet) is its own
// workload. When an object in the chain is gone, it returns that object
// and the error, which wraps the API's NotFound: a caller may still judge
// by its name, which its controller made.
func Controller(ctx context.Context, c kubernetes.Interface, ns, kind, name string) (Ref, error) {
	for range 4 {
		var (
			meta metav1.Object
			err  error
		)
		switch kind {
		case "Pod":
			meta, err = c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		case "ReplicaSet":
			meta, err = c.AppsV1().ReplicaSets(ns).Get(ctx, name, metav1.GetOptions{})
		case "Job":
			meta, err = c.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		default:
			return Ref{kind, name}, nil
		}
		if err != nil {
			return Ref{kind, name}, fmt.Errorf("get %s %s/%s: %w", kind, ns, name, err)
		}
		ctrl := metav1.GetControllerOfNoCopy(meta)
		if ctrl == nil {
			return Ref{kind, name}, nil
		}
		kind, name = ctrl.Kind, ctrl.Name
	}
	return Ref{}, fmt.Errorf("owner chain of %s/%s too deep", ns, name)
}
