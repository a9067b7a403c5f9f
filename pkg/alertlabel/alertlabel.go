// Package alertlabel holds Vigil's conventions about alert labels, shared
// by every service that reads them: how an alert is fingerprinted and which
// label names the app it concerns.
package alertlabel

import "github.com/prometheus/common/model"

// Fingerprint hashes labels as Prometheus and Alertmanager do, so the same
// alert gets the same fingerprint from Vigil and from Alertmanager.
func Fingerprint(labels map[string]string) string {
	ls := make(model.LabelSet, len(labels))
	for k, v := range labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls.Fingerprint().String()
}

// AppLabels name the app an alert concerns, most specific first.
var AppLabels = []string{"app", "app_kubernetes_io_name", "service"}

// App is the app an alert concerns: its "app" label, or the Kubernetes
// recommended one, or "service"; empty when none is set.
func App(labels map[string]string) string {
	for _, k := range AppLabels {
		if v := labels[k]; v != "" {
			return v
		}
	}
	return ""
}
