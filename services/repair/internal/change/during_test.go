package change

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// The fewest healthy replicas a rollout keeps follows the Deployment
// controller's arithmetic: maxUnavailable rounded down, maxSurge up, and
// one pod at a time when both come to zero.
func TestDuring(t *testing.T) {
	t.Parallel()
	rolling := func(unavailable, surge string) appsv1.DeploymentStrategy {
		u, s := intstr.Parse(unavailable), intstr.Parse(surge)
		return appsv1.DeploymentStrategy{
			Type:          appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &u, MaxSurge: &s},
		}
	}
	for _, tc := range []struct {
		name               string
		strategy           appsv1.DeploymentStrategy
		replicas, ready    int32
		probeDelay, minRdy int32
		during             int32
		downtime           time.Duration
	}{
		{"default, 4 replicas", rolling("25%", "25%"), 4, 4, 0, 0, 3, 0},
		{"default, 1 replica", rolling("25%", "25%"), 1, 1, 0, 0, 1, 0},
		{"no strategy set", appsv1.DeploymentStrategy{}, 4, 4, 0, 0, 3, 0},
		{"fewer ready than the bound", rolling("25%", "25%"), 4, 2, 0, 0, 2, 0},
		{"both zero: one at a time", rolling("0", "0"), 3, 3, 0, 0, 2, 0},
		{"half unavailable", rolling("50%", "0"), 5, 5, 0, 0, 3, 0},
		{"all at once", rolling("100%", "0"), 2, 2, 10, 5, 0, 15 * time.Second},
		{"recreate", appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}, 2, 2, 10, 0, 0, 40 * time.Second},
		{"already down: no new outage", appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}, 2, 0, 10, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := &appsv1.Deployment{
				Spec: appsv1.DeploymentSpec{
					Replicas:        ptr.To(tc.replicas),
					Strategy:        tc.strategy,
					MinReadySeconds: tc.minRdy,
					Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
						Containers: []corev1.Container{{Name: "app", ReadinessProbe: &corev1.Probe{InitialDelaySeconds: tc.probeDelay}}},
					}},
				},
				Status: appsv1.DeploymentStatus{AvailableReplicas: tc.ready},
			}
			during, downtime := during(d)
			assert.Equal(t, tc.during, during)
			assert.Equal(t, tc.downtime, downtime)
		})
	}
}
