package workload

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Autoscaler is a HorizontalPodAutoscaler that targets a Deployment: it,
// not the Deployment's spec, owns the replica count. A scale of the
// Deployment past its bounds is undone at its next sync, so Vigil scales
// only within them, or not at all.
type Autoscaler struct {
	Name     string
	Min, Max int32
}

// AtMax says whether replicas is already at (or past) the most the
// autoscaler allows: more capacity is a person's decision (its bounds
// are not Vigil's to change).
func (a *Autoscaler) AtMax(replicas int32) bool { return a != nil && replicas >= a.Max }

// Allows says why a count of want replicas is outside the autoscaler's
// bounds, "" when it is within them (or there is no autoscaler).
func (a *Autoscaler) Allows(want int32) string {
	if a == nil || (want >= a.Min && want <= a.Max) {
		return ""
	}
	return fmt.Sprintf("HorizontalPodAutoscaler %s owns the replica count, between %d and %d: %d would be undone", a.Name, a.Min, a.Max, want)
}

// ReadAutoscaler returns the HorizontalPodAutoscaler that targets d, nil
// when none does.
func ReadAutoscaler(ctx context.Context, c kubernetes.Interface, d *appsv1.Deployment) (*Autoscaler, error) {
	list, err := c.AutoscalingV2().HorizontalPodAutoscalers(d.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list horizontal pod autoscalers of deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	return autoscalerOf(list.Items, d.Name), nil
}

func autoscalerOf(hpas []autoscalingv2.HorizontalPodAutoscaler, deployment string) *Autoscaler {
	for _, h := range hpas {
		ref := h.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.Name != deployment {
			continue
		}
		a := &Autoscaler{Name: h.Name, Min: 1, Max: h.Spec.MaxReplicas}
		if h.Spec.MinReplicas != nil {
			a.Min = *h.Spec.MinReplicas
		}
		return a
	}
	return nil
}
