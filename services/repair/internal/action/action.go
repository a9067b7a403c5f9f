// Package action is what a repair does to a cluster: one Executor per
// action of the closed enum (typesv1.RepairAction), each in a package of
// its own under this one, found through a Registry. An executor first
// plans, reading the live target and saying what the repair would change,
// to whom and at what cost to the workload's health, so that guardrails can
// decide; then executes, once or again on redelivery, for real or as a
// server-side dry run, and returns what it takes to verify and to undo the
// change.
//
// Executors know Kubernetes and nothing else: no database, no bus, no
// policy beyond the Limits they are given. They are handed a client acting
// as Vigil's repair identity (pkg/kubeaccess.RepairRules) and touch only
// what those rules allow.
package action

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// Executor carries out one action of the enum on Kubernetes.
type Executor interface {
	// Action is the enum value this executor carries out.
	Action() typesv1.RepairAction
	// Plan reads the target as it is now, changes nothing, and says what
	// the repair would do. It refuses (a *RefusedError) a proposal that
	// does not apply to the target as it is or that lim forbids.
	Plan(ctx context.Context, c kubernetes.Interface, p *typesv1.RepairProposal, lim Limits) (Plan, error)
	// Execute makes the change. It reads the target again and refuses
	// what Plan would refuse now, so a repair approved an hour ago is
	// checked against the cluster as it is. Executing the same repair
	// (run.RepairID) again does not repeat the change: it returns a Result
	// with Changed false. Any error that is not a *RefusedError (the API
	// server unreachable, a conflict that outlasted the retries) may be
	// retried.
	Execute(ctx context.Context, c kubernetes.Interface, p *typesv1.RepairProposal, run Run) (Result, error)
}

// Limits are the policy's bounds on a repair, enforced when it is planned
// and again when it is executed. The zero value allows no growth: no
// scaling up, no raising of memory.
type Limits struct {
	// MinReplicas is the fewest healthy (available) replicas a repair may
	// leave the workload with by its own doing, and the fewest a scale
	// down may ask for. A workload already below it can still be
	// repaired by a change that does not take it lower.
	MinReplicas int32
	// MaxReplicas is the most replicas a scale up may ask for; 0 refuses
	// scaling up.
	MaxReplicas int32
	// MaxMemoryBytes caps a raised memory limit; 0 refuses raising.
	MaxMemoryBytes int64
}

// CheckHealthy refuses a plan whose change would take the workload's
// healthy replicas below MinReplicas: a repair may find a workload below
// its minimum, but never put it there.
func (l Limits) CheckHealthy(p Plan) error {
	if p.HealthyDuring < l.MinReplicas && p.HealthyDuring < p.HealthyBefore {
		return Refuse(ErrLimit, "it would leave %d healthy replicas of %d, fewer than the minimum of %d", p.HealthyDuring, p.HealthyBefore, l.MinReplicas)
	}
	return nil
}

// Plan is what a repair would do to its target as the target is now.
type Plan struct {
	// UID is the object the plan was made for; Generation is its
	// metadata.generation (Deployments; 0 for a Pod). Given back in
	// Run.Planned, they let Execute refuse a target that changed since.
	UID        types.UID
	Generation int64
	// Change says what the repair will change, for people (an approval
	// card): "restart Deployment shop/web: replaces its 3 pods rolling,
	// keeping at least 3 healthy".
	Change string
	// NoOp is true when the target already is as the repair would leave
	// it: executing changes nothing.
	NoOp bool
	// PodsAffected is how many running pods the change deletes or
	// replaces; Pods names them when they are known before the change
	// (a scale down leaves the choice to the ReplicaSet controller).
	PodsAffected int
	Pods         []string
	// HealthyBefore is how many healthy (available) replicas the workload
	// has now; HealthyDuring the fewest it keeps while the change rolls
	// out; HealthyAfter how many it should have once the change is done,
	// if the new pods become ready.
	HealthyBefore int32
	HealthyDuring int32
	HealthyAfter  int32
	// Downtime is an estimate of how long the workload will have no
	// healthy replica because of the change (HealthyDuring 0 while
	// HealthyBefore is not), from the pod template: termination grace
	// period for a Recreate rollout, readiness probe delay,
	// minReadySeconds. Image pulls and slow starts add to it; 0 when a
	// healthy replica is kept throughout.
	Downtime time.Duration
	// Replicas is the count a scale leaves the workload with; Container
	// and MemoryLimitBytes the container a memory raise changes and its
	// limit after it (the current one when there is nothing to raise):
	// what another party (the deploy service, for Vigil's apps) is asked
	// to set in place of the executor.
	Replicas         int32  `json:",omitempty"`
	Container        string `json:",omitempty"`
	MemoryLimitBytes int64  `json:",omitempty"`
}

// Run is how to execute a repair.
type Run struct {
	// RepairID identifies the repair; executing it again is a no-op. It
	// is recorded on the object the repair changes (RepairIDAnnotation)
	// where the action allows.
	RepairID string
	// DryRun sends the change with server-side dry run (metav1.DryRunAll):
	// the API server validates and admits it, and answers with the object
	// as it would be (Result.Object), but persists nothing.
	DryRun bool
	// Limits are enforced again against the target as it is now.
	Limits Limits
	// Planned is the plan the repair was approved on, if any: a target
	// that is no longer that object (UID) or whose spec has changed since
	// (Generation) is refused with ErrChanged, unless the repair had
	// already been done.
	Planned *Plan
	// GracePeriod is how long a deleted pod gets to stop (default 30s).
	GracePeriod time.Duration
	// Restore marks an undo: a rollback returns to the revision the
	// repair replaced, whether or not it was good, rather than only to
	// the last good one.
	Restore bool
}

// Result is what Execute did.
type Result struct {
	// Changed is false when nothing was sent: the repair had been done
	// already (redelivery), or the target already was as asked.
	Changed bool
	// DryRun is true when the change was admitted but not persisted.
	DryRun bool
	// Summary says what was done, for people and the audit log.
	Summary string
	// Object is the API server's answer: the object as written, or as it
	// would be in a dry run; the object as read when nothing was sent.
	Object runtime.Object
	// Verify is what to watch to know the change took effect.
	Verify Verify
	// Undo is what the change replaced; zero when nothing was sent (a
	// redelivered repair: keep the first execution's).
	Undo Undo
}

// Verify is what a verifier waits for after a change.
type Verify struct {
	// Generation is the Deployment's metadata.generation carrying the
	// change: the Deployment controller has acted on it once
	// status.observedGeneration reaches it.
	Generation int64
	// PodTemplateHash is the pod-template-hash label of the ReplicaSet
	// the Deployment rolls out to, when known: always for a rollback (to
	// an existing ReplicaSet), and for a restart or a new memory limit
	// once the controller has made the new ReplicaSet (Execute waits a
	// few seconds at most for it; never in a dry run).
	PodTemplateHash string
	// Replicas is how many healthy replicas the workload should end with.
	Replicas int32
	// PodUID is a deleted pod: the deletion is done when no pod has it.
	PodUID types.UID
}

// Undo is what a change replaced, for putting it back.
type Undo struct {
	// Revision is the Deployment's revision before the change
	// (deployment.kubernetes.io/revision): rolling back to it undoes a
	// restart, a rollback or a new memory limit.
	Revision int64
	// Replicas is the Deployment's spec.replicas before the change.
	Replicas int32
	// TemplateAnnotations are the values the pod template's annotations
	// that the change set had before ("" for absent).
	TemplateAnnotations map[string]string
	// Container and Resources are a container's resources before its
	// memory limit was raised.
	Container string
	Resources *corev1.ResourceRequirements
}

// Annotations and field manager Vigil's repairs write.
const (
	// RepairIDAnnotation records which repair made a change, so that
	// running the repair again finds it done.
	RepairIDAnnotation = "vigil.dev/repair-id"
	// FieldManager owns the fields repairs set.
	FieldManager = "vigil-repair"
)

// DefaultGracePeriod is how long a deleted pod gets to stop unless
// Run.GracePeriod says otherwise: the Kubernetes default.
const DefaultGracePeriod = 30 * time.Second

// Target checks that p is a proposal of action a on an object of kind
// (exact Kubernetes kind: "Deployment", "Pod") and returns its target.
func Target(p *typesv1.RepairProposal, a typesv1.RepairAction, kind string) (*typesv1.ResourceRef, error) {
	if p == nil {
		return nil, Refuse(ErrInvalid, "no proposal")
	}
	if p.GetAction() != a {
		return nil, Refuse(ErrNotSupported, "%s given to the executor of %s", p.GetAction(), a)
	}
	t := p.GetTarget()
	if t == nil {
		return nil, Refuse(ErrInvalid, "%s without a target", a)
	}
	if t.GetKind() != kind {
		return nil, Refuse(ErrNotSupported, "%s applies to a %s, not to %q", a, kind, t.GetKind())
	}
	if t.GetNamespace() == "" || t.GetName() == "" {
		return nil, Refuse(ErrInvalid, "target %s without namespace or name", kind)
	}
	return t, nil
}

// Name is how a target is written in messages: Kind namespace/name.
func Name(t *typesv1.ResourceRef) string {
	return fmt.Sprintf("%s %s/%s", t.GetKind(), t.GetNamespace(), t.GetName())
}

// Validate refuses a run without a repair id: without it, a redelivered
// repair could not be told from a new one.
func (r Run) Validate() error {
	if r.RepairID == "" {
		return Refuse(ErrInvalid, "no repair id")
	}
	if r.GracePeriod < 0 {
		return Refuse(ErrInvalid, "negative grace period %s", r.GracePeriod)
	}
	return nil
}

// CheckPlanned refuses, with ErrChanged, a target that is not the object
// r.Planned was made for (uid) or whose spec has changed since
// (generation; 0 when the target has none to compare). Without a plan it
// accepts anything.
func (r Run) CheckPlanned(uid types.UID, generation int64) error {
	if r.Planned == nil {
		return nil
	}
	if r.Planned.UID != "" && r.Planned.UID != uid {
		return Refuse(ErrChanged, "it was deleted and created again (uid %s, planned on %s)", uid, r.Planned.UID)
	}
	if generation != 0 && r.Planned.Generation != 0 && r.Planned.Generation != generation {
		return Refuse(ErrChanged, "its spec changed (generation %d, planned on %d)", generation, r.Planned.Generation)
	}
	return nil
}
