package rules

import (
	"fmt"
	"strings"
	"time"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
)

// The bundles of these tests are what the gatherers produce: the state of
// shop/checkout on cluster "dev" (a Deployment of 3 replicas), with every
// piece recorded as an item under the IDs of ids.go.

var (
	opened = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) // the incident
	now    = opened.Add(2 * time.Minute)                  // the analysis
)

const mi = int64(1) << 20

func checkoutRef() *typesv1.ResourceRef {
	return &typesv1.ResourceRef{Cluster: "dev", Namespace: "shop", Kind: "Deployment", Name: "checkout"}
}

func podName(i int) string { return fmt.Sprintf("checkout-6f7d8-%c", 'a'+i) }

// healthy is shop/checkout at revision 2, deployed three days ago, 3/3
// ready, revision 1 kept and healthy.
func healthy() *evidence.Bundle {
	b := &evidence.Bundle{
		Incident: evidence.Incident{
			ID: "inc-1", Title: "CheckoutErrors", Severity: "critical", OpenedAt: opened,
			Labels: map[string]string{"alertname": "CheckoutErrors", "cluster": "dev", "namespace": "shop", "deployment": "checkout"},
		},
		Target: checkoutRef(),
		Workload: &evidence.Workload{
			Ref: checkoutRef(), Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3, UpdatedReplicas: 3,
			Revision: 2, LastGood: 1,
			Revisions: []evidence.Revision{
				{Number: 2, Images: []string{"registry.example/checkout:1.2"}, CreatedAt: opened.Add(-72 * time.Hour), Healthy: true},
				{Number: 1, Images: []string{"registry.example/checkout:1.1"}, CreatedAt: opened.Add(-240 * time.Hour), Healthy: true},
			},
			Progressing: evidence.Condition{Status: "True", Reason: "NewReplicaSetAvailable"},
			Available:   evidence.Condition{Status: "True", Reason: "MinimumReplicasAvailable"},
			Containers:  []evidence.ContainerSpec{{Name: "app", Image: "registry.example/checkout:1.2", MemoryLimit: 512 * mi, MemoryRequest: 256 * mi, CPURequest: 250}},
		},
	}
	for i := range 3 {
		b.Pods = append(b.Pods, evidence.Pod{
			Name: podName(i), Phase: "Running", Node: fmt.Sprintf("node-%d", i), Revision: 2,
			CreatedAt: opened.Add(-72 * time.Hour),
			Conditions: map[string]evidence.Condition{
				"PodScheduled": {Status: "True"},
				"Ready":        {Status: "True", Since: opened.Add(-72*time.Hour + 20*time.Second)},
			},
			Containers: []evidence.Container{{Name: "app", Image: "registry.example/checkout:1.2", Ready: true, State: "running"}},
		})
	}
	return b
}

// finish records every piece of state as an item, as gatherers do.
func finish(b *evidence.Bundle) *evidence.Bundle {
	b.Items = nil
	add := func(id, source, summary string) {
		b.Items = append(b.Items, evidence.Item{ID: id, Source: source, Summary: summary, At: now})
	}
	add(labelsID, "incident", "labels")
	if b.Target != nil && b.Workload != nil {
		add(workloadID(b), "kubernetes:"+strings.ToLower(b.Target.GetKind()), "state")
		for _, r := range b.Workload.Revisions {
			add(revisionID(b, r.Number), "kubernetes:replicaset", "revision")
		}
	}
	if b.Workload != nil && b.Workload.Autoscaler != nil {
		add(autoscalerID(b), "kubernetes:horizontalpodautoscaler", "bounds")
	}
	for _, p := range b.Pods {
		add(podID(p.Name), "kubernetes:pod", p.Phase)
		for _, c := range p.Containers {
			add(containerID(p.Name, c.Name), "kubernetes:pod", c.State+" "+c.Reason)
		}
	}
	for _, e := range b.Events {
		add(eventID(e), "kubernetes:event", e.Reason+": "+e.Message)
	}
	for _, l := range b.Logs {
		add(logID(l.Pod, l.Container), "kubernetes:logs", strings.Join(l.Lines, "\n"))
	}
	for _, d := range b.Deploys {
		add(deployID(d), "deploy:events", d.Status)
	}
	for _, s := range b.Metrics {
		add(metricID(s.Labels["signal"]), "prometheus", s.Query)
	}
	for _, is := range b.Errors {
		add(errorID(is), "sentry", is.Title)
	}
	return b
}

// A change of the bundle.
type change func(b *evidence.Bundle)

func build(cs ...change) *evidence.Bundle {
	b := healthy()
	for _, c := range cs {
		c(b)
	}
	return finish(b)
}

func container(b *evidence.Bundle, pod int) *evidence.Container { return &b.Pods[pod].Containers[0] }

func setReady(b *evidence.Bundle, pod int, ready bool, since time.Time) {
	p := &b.Pods[pod]
	st := "False"
	if ready {
		st = "True"
	}
	p.Conditions["Ready"] = evidence.Condition{Status: st, Since: since}
	p.Containers[0].Ready = ready
	b.Workload.ReadyReplicas = 0
	for _, q := range b.Pods {
		if q.Conditions["Ready"].Status == "True" {
			b.Workload.ReadyReplicas++
		}
	}
	b.Workload.AvailableReplicas = b.Workload.ReadyReplicas
}

// asJob: the target is a Job, as gather reads one: no revisions and no
// replica count (Replicas 0), whatever its pods do.
func asJob(b *evidence.Bundle) {
	b.Target.Kind, b.Workload.Ref.Kind = "Job", "Job"
	b.Workload.Replicas, b.Workload.ReadyReplicas, b.Workload.AvailableReplicas, b.Workload.UpdatedReplicas = 0, 0, 0, 0
	b.Workload.Revision, b.Workload.Revisions = 0, nil
	for i := range b.Pods {
		b.Pods[i].Revision = 0
	}
}

// crashLoop: the pods' app crashes with exit 1 and backs off.
func crashLoop(pods ...int) change {
	return func(b *evidence.Bundle) {
		for _, i := range pods {
			c := container(b, i)
			c.State, c.Reason, c.RestartCount = "waiting", "CrashLoopBackOff", 6
			c.Message = "back-off 2m40s restarting failed container=app"
			c.LastReason, c.LastExitCode, c.LastFinished = "Error", 1, opened
			setReady(b, i, false, opened.Add(-5*time.Minute))
			b.Logs = append(b.Logs, evidence.Log{Pod: podName(i), Container: "app", Previous: true, Lines: []string{"panic: nil map"}})
			b.Events = append(b.Events, evidence.Event{Object: "Pod/" + podName(i), Type: "Warning", Reason: "BackOff", Message: "Back-off restarting failed container app", Count: 12, Last: opened})
		}
	}
}

// crashRunning: the pods' app crash-loops and is read between two crashes,
// running again after its restarts-th, ended ago before now; without a
// readiness probe it is Ready meanwhile, as the kubelet reports it.
func crashRunning(restarts int32, ago time.Duration, pods ...int) change {
	return func(b *evidence.Bundle) {
		for _, i := range pods {
			c := container(b, i)
			c.State, c.RestartCount = "running", restarts
			c.LastReason, c.LastExitCode, c.LastFinished = "Error", 1, now.Add(-ago)
			setReady(b, i, true, now.Add(-ago+time.Second))
		}
	}
}

// crashExited: the pods' app crash-loops and is read the moment it has
// exited, before the kubelet backs off.
func crashExited(restarts int32, pods ...int) change {
	return func(b *evidence.Bundle) {
		for _, i := range pods {
			c := container(b, i)
			c.State, c.Reason, c.ExitCode, c.RestartCount = "terminated", "Error", 1, restarts
			if restarts > 0 {
				c.LastReason, c.LastExitCode, c.LastFinished = "Error", 1, now.Add(-2*time.Second)
			}
			setReady(b, i, false, now)
		}
	}
}

// oomKill: the pods' app is OOMKilled (exit 137) and backs off.
func oomKill(pods ...int) change {
	return func(b *evidence.Bundle) {
		for _, i := range pods {
			c := container(b, i)
			c.State, c.Reason, c.RestartCount = "waiting", "CrashLoopBackOff", 4
			c.LastReason, c.LastExitCode, c.LastFinished = "OOMKilled", 137, opened
			setReady(b, i, false, opened.Add(-5*time.Minute))
		}
	}
}

// imagePull: the pods cannot pull their image.
func imagePull(pods ...int) change {
	return func(b *evidence.Bundle) {
		for _, i := range pods {
			c := container(b, i)
			c.State, c.Reason = "waiting", "ImagePullBackOff"
			c.Message = `Back-off pulling image "` + c.Image + `"`
			setReady(b, i, false, opened.Add(-5*time.Minute))
			b.Events = append(b.Events, evidence.Event{Object: "Pod/" + podName(i), Type: "Warning", Reason: "Failed", Message: "Failed to pull image \"" + c.Image + "\": not found", Count: 5, Last: opened})
		}
	}
}

// failReadiness: the pods run but fail readiness since since.
func failReadiness(since time.Time, pods ...int) change {
	return func(b *evidence.Bundle) {
		for _, i := range pods {
			setReady(b, i, false, since)
			b.Events = append(b.Events, evidence.Event{Object: "Pod/" + podName(i), Type: "Warning", Reason: "Unhealthy", Message: "Readiness probe failed: HTTP probe failed with statuscode: 503", Count: 30, Last: opened})
		}
	}
}

// deployed: revision 3 (image tag) rolled out ago before the incident;
// its pods are all of the workload's (rev 2 scaled down). keepHealthy
// false: no kept revision before it was healthy.
func deployed(ago time.Duration, tag string, keepHealthy bool) change {
	return func(b *evidence.Bundle) {
		w := b.Workload
		img := "registry.example/checkout:" + tag
		w.Revision = 3
		w.Revisions = append([]evidence.Revision{{Number: 3, Images: []string{img}, CreatedAt: opened.Add(-ago)}}, w.Revisions...)
		w.LastGood = 2
		if !keepHealthy {
			w.LastGood = 0
			for i := range w.Revisions {
				w.Revisions[i].Healthy = false
			}
		}
		w.Containers[0].Image = img
		for i := range b.Pods {
			b.Pods[i].Revision = 3
			b.Pods[i].CreatedAt = opened.Add(-ago)
			b.Pods[i].Containers[0].Image = img
		}
		b.Deploys = append(b.Deploys, evidence.Deploy{ID: "dep-7", Revision: 3, Image: img, Status: "succeeded", At: opened.Add(-ago)})
	}
}

// pending: the pods are not scheduled, with a FailedScheduling event
// (message) or none ("").
func pending(message string, pods ...int) change {
	return func(b *evidence.Bundle) {
		for _, i := range pods {
			p := &b.Pods[i]
			p.Phase, p.Node = "Pending", ""
			p.Conditions = map[string]evidence.Condition{
				"PodScheduled": {Status: "False", Reason: "Unschedulable", Message: message},
			}
			p.Containers[0] = evidence.Container{Name: "app", Image: p.Containers[0].Image, State: "waiting", Reason: "ContainerCreating"}
			if message != "" {
				b.Events = append(b.Events, evidence.Event{Object: "Pod/" + p.Name, Type: "Warning", Reason: "FailedScheduling", Message: message, Count: 3, Last: opened})
			}
		}
		b.Workload.ReadyReplicas = int32(len(b.Pods) - len(pods))
	}
}

func event(object, reason, message string) change {
	return func(b *evidence.Bundle) {
		b.Events = append(b.Events, evidence.Event{Object: object, Type: "Warning", Reason: reason, Message: message, Count: 3, Last: opened})
	}
}

// cpu: the cpu_utilization series, one sample a minute for 15 minutes
// before the incident at value.
func cpu(value float64) change {
	return func(b *evidence.Bundle) {
		s := evidence.Series{Query: `sum(rate(container_cpu_usage_seconds_total{namespace="shop",pod=~"checkout-.*"}[2m])) / sum(kube_pod_container_resource_requests{resource="cpu"})`, Labels: map[string]string{"signal": signalCPU}}
		for m := 15; m >= 0; m-- {
			s.Points = append(s.Points, evidence.Point{At: opened.Add(-time.Duration(m) * time.Minute), Value: value})
		}
		b.Metrics = append(b.Metrics, s)
	}
}

// autoscaler: HorizontalPodAutoscaler checkout owns the count, between
// lo and hi.
func autoscaler(lo, hi int32) change {
	return func(b *evidence.Bundle) {
		b.Workload.Autoscaler = &evidence.Autoscaler{Name: "checkout", Min: lo, Max: hi}
	}
}

// scaledToZero: desired 0 since 10 minutes before the incident; with
// before > 0 the replicas series shows the count before.
func scaledToZero(before int) change {
	return func(b *evidence.Bundle) {
		w := b.Workload
		w.Replicas, w.ReadyReplicas, w.AvailableReplicas, w.UpdatedReplicas = 0, 0, 0, 0
		b.Pods = nil
		b.Events = append(b.Events, evidence.Event{Object: "Deployment/checkout", Type: "Normal", Reason: "ScalingReplicaSet", Message: "Scaled down replica set checkout-6f7d8 to 0 from 3", Last: opened.Add(-10 * time.Minute)})
		if before > 0 {
			s := evidence.Series{Query: `kube_deployment_spec_replicas{namespace="shop",deployment="checkout"}`, Labels: map[string]string{"signal": signalReplicas}}
			for m := 30; m >= 0; m -= 5 {
				v := float64(before)
				if m <= 10 {
					v = 0
				}
				s.Points = append(s.Points, evidence.Point{At: opened.Add(-time.Duration(m) * time.Minute), Value: v})
			}
			b.Metrics = append(b.Metrics, s)
		}
	}
}

func memoryLimit(n int64) change {
	return func(b *evidence.Bundle) { b.Workload.Containers[0].MemoryLimit = n }
}

// sentryIssue: the incident's alerts include Sentry issue 1170820242,
// first seen at (known: the issue webhook said so; else its first alert).
func sentryIssue(at time.Time, known bool) change {
	return func(b *evidence.Bundle) {
		b.Errors = append(b.Errors, evidence.ErrorIssue{
			ID: "1170820242", Project: "checkout", Title: "KeyError: 'currency'",
			URL: "https://sentry.io/organizations/acme/issues/1170820242/", Release: "checkout@1.3",
			FirstSeen: at, FirstSeenKnown: known,
		})
	}
}
