package render

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The Prometheus Operator's kinds are built as unstructured objects: Vigil
// does not depend on its Go module for two small shapes.
const monitoringAPIVersion = "monitoring.coreos.com/v1"

func stringsToAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (r *renderer) monitoringObject(kind string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": monitoringAPIVersion,
		"kind":       kind,
		"metadata": map[string]any{
			"name":      r.app.Name,
			"namespace": r.app.Namespace,
			"labels":    stringsToAny(r.labels()),
		},
		"spec": spec,
	}}
}

// serviceMonitor has Prometheus scrape the app's pods through its Service
// (it selects the Service by the selector labels, which the Service
// carries) on the http port's /metrics, matching the pods' prometheus.io
// annotations for setups that scrape by annotation instead.
func (r *renderer) serviceMonitor() *unstructured.Unstructured {
	return r.monitoringObject("ServiceMonitor", map[string]any{
		"selector": map[string]any{"matchLabels": stringsToAny(r.selector())},
		"endpoints": []any{
			map[string]any{"port": "http", "path": "/metrics", "interval": "30s"},
		},
	})
}

// alert is one alerting rule of the app's PrometheusRule.
type alert struct {
	name, expr, forDuration, severity, summary string
}

// prometheusRule holds the app's alerts, on kube-state-metrics and
// cAdvisor series. Every alert is labelled with namespace and app, which
// Vigil's monitor groups incidents by, whatever labels the expression
// keeps.
func (r *renderer) prometheusRule() *unstructured.Unstructured {
	ns, app := r.app.Namespace, r.app.Name
	inNS := fmt.Sprintf(`namespace=%q`, ns)
	deployment := fmt.Sprintf(`namespace=%q,deployment=%q`, ns, app)
	alerts := []alert{
		{
			name:     "AppPodRestarting",
			expr:     fmt.Sprintf(`increase(kube_pod_container_status_restarts_total{%s}[15m]) > 3`, inNS),
			severity: "warning",
			summary:  "A container of " + app + " restarted more than 3 times in 15 minutes",
		},
		{
			// The startup probe allows two minutes; five without a single
			// available replica is an outage, not a slow start.
			name:        "AppDown",
			expr:        fmt.Sprintf(`kube_deployment_status_replicas_available{%s} == 0 and on (namespace, deployment) kube_deployment_spec_replicas{%s} > 0`, deployment, deployment),
			forDuration: "5m",
			severity:    "critical",
			summary:     app + " has had no available replica for 5 minutes",
		},
		{
			name:        "AppReplicasUnavailable",
			expr:        fmt.Sprintf(`kube_deployment_status_replicas_available{%s} < on (namespace, deployment) kube_deployment_spec_replicas{%s}`, deployment, deployment),
			forDuration: "10m",
			severity:    "warning",
			summary:     app + " has had fewer available replicas than desired for 10 minutes",
		},
		{
			// max by: cAdvisor can briefly report a restarted container
			// twice, which would break one-to-one matching.
			name: "AppMemoryNearLimit",
			expr: fmt.Sprintf(`max by (namespace, pod, container) (container_memory_working_set_bytes{%s,container="app"})`+
				` / on (namespace, pod, container) max by (namespace, pod, container) (kube_pod_container_resource_limits{%s,container="app",resource="memory"}) > 0.9`, inNS, inNS),
			forDuration: "10m",
			severity:    "warning",
			summary:     "A pod of " + app + " has used more than 90% of its memory limit for 10 minutes",
		},
		{
			// last_terminated_reason stays OOMKilled until the container
			// ends again for another reason: only a recent restart counts.
			name: "AppOOMKilled",
			expr: fmt.Sprintf(`increase(kube_pod_container_status_restarts_total{%s}[15m]) > 0`+
				` and on (namespace, pod, container) kube_pod_container_status_last_terminated_reason{%s,reason="OOMKilled"} == 1`, inNS, inNS),
			severity: "critical",
			summary:  "A container of " + app + " was killed for running out of memory",
		},
	}
	rules := make([]any, 0, len(alerts))
	for _, a := range alerts {
		rule := map[string]any{
			"alert":       a.name,
			"expr":        a.expr,
			"labels":      map[string]any{"severity": a.severity, "namespace": ns, "app": app},
			"annotations": map[string]any{"summary": a.summary},
		}
		if a.forDuration != "" {
			rule["for"] = a.forDuration
		}
		rules = append(rules, rule)
	}
	return r.monitoringObject("PrometheusRule", map[string]any{
		"groups": []any{map[string]any{"name": "vigil." + app, "rules": rules}},
	})
}
