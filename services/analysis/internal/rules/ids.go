package rules

import (
	"fmt"
	"strings"

	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
)

// The item IDs the rules cite, as gatherers give them:
//
//	deployment/checkout               the workload's state (lowercase kind)
//	deployment/checkout/revision/3    a kept revision
//	deployment/checkout/autoscaler    the HorizontalPodAutoscaler that owns its count
//	pod/checkout-7d9c-x               a pod's phase, conditions, deletion
//	pod/checkout-7d9c-x/container/app a container's state and last termination
//	event/Pod/checkout-7d9c-x/BackOff an event, by object and reason
//	logs/checkout-7d9c-x/app          a container's log tail
//	deploy/<id>                       a deployment seen on deploy's events
//	metric/cpu_utilization            a Prometheus series, by its signal label
//	history/<incident id>             a past incident of the same kind and its outcome
//	sentry/<issue id>                 a Sentry issue among the incident's alerts
//	alert/labels                      the incident's labels

func workloadID(b *evidence.Bundle) string {
	return strings.ToLower(b.Target.GetKind()) + "/" + b.Target.GetName()
}

func revisionID(b *evidence.Bundle, n int64) string {
	return fmt.Sprintf("%s/revision/%d", workloadID(b), n)
}

func autoscalerID(b *evidence.Bundle) string { return workloadID(b) + "/autoscaler" }

func podID(pod string) string { return "pod/" + pod }

func containerID(pod, c string) string { return "pod/" + pod + "/container/" + c }

func eventID(e evidence.Event) string { return "event/" + e.Object + "/" + e.Reason }

func logID(pod, c string) string { return "logs/" + pod + "/" + c }

func deployID(d evidence.Deploy) string { return "deploy/" + d.ID }

func metricID(signal string) string { return "metric/" + signal }

func errorID(is evidence.ErrorIssue) string { return "sentry/" + is.ID }

const labelsID = "alert/labels"

// cite keeps the IDs that are the bundle's items, once each, in order.
func (f *facts) cite(ids ...string) []string {
	var out []string
	seen := map[string]bool{}
	for _, id := range ids {
		if f.items[id] && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
