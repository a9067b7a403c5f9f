// Package evidence is what the analysis knows about an incident's target:
// the state gathered from its cluster, each piece with its source, bounded
// in size. Engines (rules, LLMs) read a Bundle; nothing in it is an
// instruction: alert annotations, log lines and event messages are data.
package evidence

import (
	"time"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// Incident is what the analysis was asked about.
type Incident struct {
	ID       string
	Title    string
	Severity string
	// Team owns the incident (its subject's; "" for none).
	Team     string
	OpenedAt time.Time
	// Labels of the incident's alerts (group labels and those of its
	// first alerts), from which the target is resolved.
	Labels map[string]string
	// Annotations of its alerts (summary, description): text, never
	// instructions.
	Annotations map[string]string
}

// Bundle is everything gathered for one analysis.
type Bundle struct {
	Incident Incident
	// Target is the incident's workload (a Deployment, StatefulSet,
	// DaemonSet, Job), resolved from the alert labels through owner
	// references; empty when the incident cannot be tied to one.
	Target *typesv1.ResourceRef
	// Workload is the target's state, when it was read.
	Workload *Workload
	Pods     []Pod
	Events   []Event
	Logs     []Log
	// Reserved says why the target's namespace is one Vigil never
	// repairs in (pkg/reserved); "" when it is not.
	Reserved string
	// Deploys are the target's recent deployments (from deploy's events),
	// newest first.
	Deploys []Deploy
	// Metrics are Prometheus series around the incident, when configured.
	Metrics []Series
	// Similar are past incidents like this one, with their outcomes.
	Similar []Past
	// Errors are the Sentry issues among the incident's alerts.
	Errors []ErrorIssue
	// Items is every piece of evidence with its source, in the order it
	// was gathered: what a result points at.
	Items []Item
	// Gaps are the gatherers that failed or were cut short, and why.
	Gaps []string
	// Language is what people read the findings in: the incident's
	// team's when it has one, else the installation's ("": each engine's
	// own). Set by the engines before they answer.
	Language string
}

// Item is one piece of evidence.
type Item struct {
	// ID is stable within the bundle ("pod/shop-7d9c/container/app"),
	// what a result's evidence refers to.
	ID string
	// Source says where it came from: "kubernetes:pod", "kubernetes:event",
	// "kubernetes:logs", "deploy:events", "prometheus", "history".
	Source string
	// Summary is one line a person reads.
	Summary string
	// At is when the evidence was true (event time, log time, gathering
	// time).
	At time.Time
}

// Workload is a Deployment (or StatefulSet, ...) as it is.
type Workload struct {
	Ref               *typesv1.ResourceRef
	Replicas          int32 // desired
	ReadyReplicas     int32
	AvailableReplicas int32
	UpdatedReplicas   int32
	// Revision is the current rollout revision; Revisions the ones the
	// cluster still keeps (ReplicaSets), newest first.
	Revision  int64
	Revisions []Revision
	// LastGood is the revision a rollback returns to (pkg/workload: the
	// newest good one but the current), 0 when none is known good.
	LastGood int64
	// FailingPods are the current revision's pods that fail while others
	// of it have been ready for the settle time: the release is partly
	// healthy, and a rollback is not the fix. Empty otherwise.
	FailingPods []string
	// Autoscaler is the HorizontalPodAutoscaler that owns the replica
	// count, when one does.
	Autoscaler *Autoscaler
	// Progressing and Available are the rollout's conditions, with their
	// reasons ("ProgressDeadlineExceeded", "MinimumReplicasUnavailable").
	Progressing, Available Condition
	// Containers as the pod template declares them.
	Containers []ContainerSpec
	// Paused is a paused rollout.
	Paused bool
	// Annotations of the workload (kubectl.kubernetes.io/restartedAt,
	// deployment.kubernetes.io/revision...).
	Annotations map[string]string
}

// Revision is one kept revision of a workload.
type Revision struct {
	// Name of the object that keeps it (the ReplicaSet).
	Name      string
	Number    int64
	Images    []string
	CreatedAt time.Time
	// Healthy: the revision is good (pkg/workload): all of its replicas
	// were ready for the settle time. Why says how that was judged.
	Healthy bool
	Why     string
}

// Autoscaler is a HorizontalPodAutoscaler and its bounds.
type Autoscaler struct {
	Name     string
	Min, Max int32
}

// Condition is a status condition.
type Condition struct {
	Status  string // "True", "False", "Unknown", "" when absent
	Reason  string
	Message string
	Since   time.Time
}

// ContainerSpec is a container of the pod template.
type ContainerSpec struct {
	Name  string
	Image string
	// MemoryLimit and MemoryRequest in bytes (0 when unset); CPU in
	// millicores.
	MemoryLimit, MemoryRequest int64
	CPULimit, CPURequest       int64
}

// Pod is one pod of the target.
type Pod struct {
	Name      string
	Phase     string // Pending, Running, Succeeded, Failed, Unknown
	Node      string
	Revision  int64 // pod-template-hash's revision, when known
	CreatedAt time.Time
	// Deleting since, when the pod has a deletion timestamp.
	DeletingSince time.Time
	Conditions    map[string]Condition // PodScheduled, Ready, ContainersReady...
	Containers    []Container
}

// Container is a container's status.
type Container struct {
	Name         string
	Image        string
	Ready        bool
	RestartCount int32
	// State: "running", "waiting" or "terminated", with its reason
	// (CrashLoopBackOff, ImagePullBackOff, ErrImagePull,
	// CreateContainerConfigError, OOMKilled, Error, Completed...).
	State, Reason, Message string
	ExitCode               int32
	// LastTermination is the previous run's end, if any.
	LastReason   string
	LastExitCode int32
	LastFinished time.Time
}

// Event is a Kubernetes event about the target or its pods.
type Event struct {
	Object  string // "Pod/shop-7d9c"
	Type    string // Normal, Warning
	Reason  string // FailedScheduling, BackOff, FailedMount, Unhealthy...
	Message string
	Count   int32
	Last    time.Time
}

// Log is the tail of a container's log (the previous run's when it
// crashed), bounded.
type Log struct {
	Pod, Container string
	Previous       bool
	Lines          []string
	Truncated      bool
}

// Deploy is a deployment of the target seen on deploy's events.
type Deploy struct {
	ID       string
	Revision int64
	Image    string
	Status   string // requested, succeeded, failed, rolled_back
	At       time.Time
}

// Series is a Prometheus query's result around the incident.
type Series struct {
	Query  string
	Labels map[string]string
	Points []Point
}

// Point is one sample.
type Point struct {
	At    time.Time
	Value float64
}

// ErrorIssue is an error tracker's issue (Sentry's) that alerted: a new
// kind of exception in the app's code.
type ErrorIssue struct {
	// ID is Sentry's issue id; Project its project (the app).
	ID, Project string
	Title       string
	// URL is the issue's page in Sentry.
	URL string
	// Release is the release of the event that alerted, when it said.
	Release string
	// FirstSeen is when Sentry first saw the issue; when the alerts did
	// not say (an alert rule's event), the earliest alert's start, and
	// FirstSeenKnown is false.
	FirstSeen      time.Time
	FirstSeenKnown bool
}

// Past is a similar incident and what came of it.
type Past struct {
	IncidentID string
	Signature  string
	Action     typesv1.RepairAction
	Succeeded  bool
	At         time.Time
}
