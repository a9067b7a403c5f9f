// Package deployer records deployments and carries them out: the
// onboarding steps, each applied with server-side apply and recorded (and
// announced on deploy.progress) as it goes, then the wait for the rollout.
package deployer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/pkg/kubeaccess"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/pkg/reserved"
	"github.com/vigil-ops/vigil/pkg/workload"
	"github.com/vigil-ops/vigil/services/deploy/internal/kube"
	"github.com/vigil-ops/vigil/services/deploy/internal/ownership"
	"github.com/vigil-ops/vigil/services/deploy/internal/postgres"
	"github.com/vigil-ops/vigil/services/deploy/internal/render"
)

// Producer names the deploy service in the events it publishes.
const Producer = "deploy"

// StepWaitRollout follows the onboarding steps: the wait until the
// Deployment is rolled out.
const StepWaitRollout = "wait_rollout"

// StepNames are a deployment's steps, in order.
var StepNames = append(append([]string(nil), render.Steps...), StepWaitRollout)

// Options tune deployments.
type Options struct {
	// RolloutTimeout bounds the wait for a rollout (default 5m).
	RolloutTimeout time.Duration
	// Render tunes the manifests (ingress class, cluster issuer...).
	Render render.Options
	// Reserved are the namespaces no app may be deployed into (required).
	Reserved *ownership.Reserved
	// RepairReserved are the namespaces the repair identity is never
	// granted, even an app's (nil: reserved.Default()).
	RepairReserved *reserved.Namespaces
}

// Deployer records and runs deployments.
type Deployer struct {
	pool  *pgxpool.Pool
	store *postgres.Store
	kube  *kube.Pool
	opts  Options
	log   *slog.Logger
}

// New returns a Deployer.
func New(pool *pgxpool.Pool, store *postgres.Store, kp *kube.Pool, opts Options, log *slog.Logger) *Deployer {
	if opts.RolloutTimeout <= 0 {
		opts.RolloutTimeout = 5 * time.Minute
	}
	return &Deployer{pool: pool, store: store, kube: kp, opts: opts, log: log}
}

// RenderApp is the renderer's view of a revision.
func RenderApp(name string, revision int64, spec postgres.Spec, secrets map[string]string) render.App {
	return render.App{
		Name: name, Namespace: spec.Namespace, DisplayName: spec.DisplayName, Domain: spec.Domain,
		Framework: spec.Framework, Plan: spec.Plan, Image: spec.Image, Replicas: spec.Replicas, Port: spec.Port,
		Env: spec.Env, Secrets: secrets, Owner: spec.Owner, Revision: revision, MemoryLimitBytes: spec.MemoryLimitBytes,
	}
}

// Render renders what the app's next deployment would apply (secret
// values left out: for people and GitOps repositories).
func (d *Deployer) Render(a *postgres.App) ([]byte, error) {
	opts := d.opts.Render
	opts.RedactSecrets = true
	m, err := render.Render(RenderApp(a.Name, a.CurrentRevision, postgres.SpecOf(a), a.Secrets), opts)
	if err != nil {
		return nil, err
	}
	return m.YAML()
}

// Request says what to deploy.
type Request struct {
	App string
	// Image to deploy and keep as the app's; the app's own when empty.
	Image string
	// RollbackTo, when not zero, restores that revision; -1 restores the
	// app's last good revision: the one its Deployment's last good
	// ReplicaSet ran (pkg/workload), as a repair's rollback would.
	RollbackTo  int64
	RequestedBy string
	// ID for the deployment; a new one when empty. A request event's id
	// makes a redelivered request find the deployment it already made.
	ID string
	// Replicas and MemoryLimitBytes, when not zero, become the app's
	// before it is deployed (a repair's scale or memory limit), so that
	// later deployments keep them.
	Replicas         int32
	MemoryLimitBytes int64
}

// Errors a caller maps to status codes.
var (
	// ErrNoRevision: nothing to roll back to.
	ErrNoRevision = errors.New("no such revision to roll back to")
	// ErrNoGoodRevision: no revision of the app is known good.
	ErrNoGoodRevision = errors.New("no revision of the app is known good to roll back to")
)

// Request records a pending deployment, the next revision of the app, and
// announces it on deploy.requested in the same transaction; the consumer
// of deploy.requested runs it. For a rollback, the app itself returns to
// the revision's image, configuration and secrets.
func (d *Deployer) Request(ctx context.Context, r Request) (*postgres.Deployment, error) {
	if r.ID == "" {
		r.ID = uuid.Must(uuid.NewV7()).String()
	}
	if r.RollbackTo < 0 {
		a, err := d.store.GetApp(ctx, d.pool, r.App, false)
		if err != nil {
			return nil, err
		}
		if r.RollbackTo, err = d.lastGood(ctx, a); err != nil {
			return nil, err
		}
	}
	var out *postgres.Deployment
	err := db.InTx(ctx, d.pool, func(tx pgx.Tx) error {
		a, err := d.store.GetApp(ctx, tx, r.App, true)
		if err != nil {
			return err
		}
		now := time.Now()
		dep := &postgres.Deployment{Deployment: &deployv1.Deployment{
			Id: r.ID, App: a.Name, Kind: deployv1.DeploymentKind_DEPLOYMENT_KIND_DEPLOY,
			Cluster: a.Cluster, RequestedBy: r.RequestedBy, CreateTime: timestamppb.New(now),
			Status: deployv1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING,
		}}
		switch {
		case r.RollbackTo != 0:
			src, err := d.store.Revision(ctx, tx, a.Name, r.RollbackTo)
			if errors.Is(err, postgres.ErrNotFound) {
				return ErrNoRevision
			}
			if err != nil {
				return err
			}
			dep.Kind = deployv1.DeploymentKind_DEPLOYMENT_KIND_ROLLBACK
			dep.RollbackTo = src.Revision
			dep.Spec, dep.Secrets = src.Spec, src.Secrets
			// The app returns to that revision, so its next plain deploy
			// does not bring back what was rolled back.
			s := src.Spec
			a.DisplayName, a.Domain, a.Framework, a.Plan, a.Image = s.DisplayName, s.Domain, s.Framework, s.Plan, s.Image
			a.Replicas, a.Port, a.Env, a.Owner, a.AutoRepair = s.Replicas, s.Port, s.Env, s.Owner, s.AutoRepair
			a.MemoryLimitBytes, a.Secrets = s.MemoryLimitBytes, src.Secrets
			a.UpdateTime = timestamppb.New(now)
			if err := d.store.UpdateApp(ctx, tx, a); err != nil {
				return err
			}
		default:
			changed := false
			for _, c := range []struct {
				set  bool
				edit func()
			}{
				{r.Image != "" && r.Image != a.Image, func() { a.Image = r.Image }},
				{r.Replicas != 0 && r.Replicas != a.Replicas, func() { a.Replicas = r.Replicas }},
				{r.MemoryLimitBytes != 0 && r.MemoryLimitBytes != a.MemoryLimitBytes, func() { a.MemoryLimitBytes = r.MemoryLimitBytes }},
			} {
				if c.set {
					c.edit()
					changed = true
				}
			}
			if changed {
				a.UpdateTime = timestamppb.New(now)
				if err := d.store.UpdateApp(ctx, tx, a); err != nil {
					return err
				}
			}
			dep.Spec, dep.Secrets = postgres.SpecOf(a), a.Secrets
		}
		if dep.Revision, err = d.store.NextRevision(ctx, tx, a.Name); err != nil {
			return err
		}
		m, err := render.Render(RenderApp(a.Name, dep.Revision, dep.Spec, dep.Secrets), d.opts.Render)
		if err != nil {
			return err
		}
		dep.Image, dep.ConfigHash = dep.Spec.Image, m.ConfigHash
		for _, name := range StepNames {
			dep.Steps = append(dep.Steps, &deployv1.Step{Name: name, Status: deployv1.StepStatus_STEP_STATUS_PENDING})
		}
		if err := d.store.InsertDeployment(ctx, tx, dep); err != nil {
			return err
		}
		out = dep
		return outbox.Add(ctx, tx, &eventsv1.DeployRequested{
			Meta:         bus.NewMeta(Producer, nil),
			DeploymentId: dep.Id, App: dep.App, Image: dep.Image, RequestedBy: dep.RequestedBy,
			Revision: dep.Revision, RollbackTo: dep.RollbackTo, Team: dep.Spec.Owner,
		})
	})
	return out, err
}

// lastGood is the revision of app a that its Deployment's last good
// ReplicaSet ran (pkg/workload: all its replicas were ready for the
// settle time, skipping bad ones), read from the ReplicaSet's
// AnnotationRevision.
func (d *Deployer) lastGood(ctx context.Context, a *postgres.App) (int64, error) {
	client, err := d.clientFor(ctx, a.Cluster)
	if err != nil {
		return 0, err
	}
	w, err := workload.Read(ctx, client.Typed, a.Namespace, a.Name, time.Now())
	if apierrors.IsNotFound(err) {
		return 0, fmt.Errorf("%w: app %s has no Deployment in cluster %s", ErrNoGoodRevision, a.Name, a.Cluster)
	}
	if err != nil {
		return 0, err
	}
	g := w.LastGood()
	if g == nil {
		return 0, fmt.Errorf("%w: none of the revisions of app %s kept in the cluster had all its replicas ready for %s", ErrNoGoodRevision, a.Name, workload.Settle)
	}
	rev, err := strconv.ParseInt(g.ReplicaSet.Annotations[render.AnnotationRevision], 10, 64)
	if err != nil || rev <= 0 {
		return 0, fmt.Errorf("%w: the last good ReplicaSet of app %s, %s, names no revision of the app", ErrNoGoodRevision, a.Name, g.ReplicaSet.Name)
	}
	return rev, nil
}

// recordSettled records, on the app's ReplicaSets, the revisions good
// now (workload.Record), before a new one replaces them: scaled to zero,
// a ReplicaSet no longer says it was good. A failure costs only that
// record: it is logged, and the deployment goes on.
func (d *Deployer) recordSettled(ctx context.Context, client *kube.Client, dep *postgres.Deployment) {
	now := time.Now()
	w, err := workload.Read(ctx, client.Typed, dep.Spec.Namespace, dep.App, now)
	if err == nil {
		err = workload.Record(ctx, client.Typed, w, now)
	}
	if err != nil && !apierrors.IsNotFound(err) {
		d.log.WarnContext(ctx, "record the app's good revisions", "deployment_id", dep.Id, "app", dep.App, "error", err)
	}
}

// Run carries out deployment id: claims it (a deployment already ended,
// or running elsewhere while this is its first delivery, is left alone),
// runs its steps and the rollout wait, and records the outcome. A failed
// deployment is an outcome, not an error; Run returns an error only when
// the outcome could not be recorded, so that the request is redelivered
// (resume: a redelivery resumes a deployment left running).
func (d *Deployer) Run(ctx context.Context, id string, resume bool) error {
	claimed, err := d.store.Claim(ctx, d.pool, id, time.Now(), resume)
	if err != nil || !claimed {
		return err
	}
	dep, err := d.store.GetDeployment(ctx, d.pool, id)
	if err != nil {
		return err
	}
	log := d.log.With("deployment_id", id, "app", dep.App, "revision", dep.Revision)
	log.InfoContext(ctx, "deployment started", "image", dep.Image, "cluster", dep.Cluster)
	reason, stepErr := d.steps(ctx, dep)
	if stepErr != nil {
		return stepErr
	}
	return d.finish(ctx, log, dep, reason)
}

// steps runs every step and returns why the deployment failed ("" when it
// succeeded); the error is for failures to record.
func (d *Deployer) steps(ctx context.Context, dep *postgres.Deployment) (string, error) {
	fail := func(step, reason string) (string, error) {
		return reason, d.setStep(ctx, dep, step, deployv1.StepStatus_STEP_STATUS_FAILED, reason)
	}
	kubeconfig, err := d.store.Kubeconfig(ctx, d.pool, dep.Cluster)
	if err != nil {
		if errors.Is(err, postgres.ErrNotFound) {
			return fail(render.StepCreateNamespace, fmt.Sprintf("ClusterNotFound: cluster %s is not registered", dep.Cluster))
		}
		return fail(render.StepCreateNamespace, "ClusterUnavailable: "+err.Error())
	}
	client, err := d.kube.Get(dep.Cluster, kubeconfig)
	if err != nil {
		return fail(render.StepCreateNamespace, "ClusterUnavailable: "+err.Error())
	}
	client.Refresh() // CRDs may have come or gone since the last deployment
	// Before anything is applied: a namespace that exists and is not the
	// app's is someone else's, and forced server-side apply would take it
	// over (labels, Pod Security, NetworkPolicy).
	if err := d.checkNamespace(ctx, client, dep.Spec.Namespace, dep.App); err != nil {
		if fe, ok := errors.AsType[*ownership.ForeignError](err); ok {
			reason := "ForeignNamespace: "
			if fe.Reserved != "" {
				reason = "ReservedNamespace: "
			}
			return fail(render.StepCreateNamespace, reason+fe.Error())
		}
		return fail(render.StepCreateNamespace, "ClusterUnavailable: "+err.Error())
	}

	d.recordSettled(ctx, client, dep)
	m, err := render.Render(RenderApp(dep.App, dep.Revision, dep.Spec, dep.Secrets), d.opts.Render)
	if err != nil {
		return fail(render.StepCreateNamespace, "RenderFailed: "+err.Error())
	}
	final := map[string]*unstructured.Unstructured{}
	for _, o := range m.Objects() {
		final[describe(o)] = o
	}
	for _, st := range m.Steps {
		if err := d.setStep(ctx, dep, st.Name, deployv1.StepStatus_STEP_STATUS_RUNNING, ""); err != nil {
			return "", err
		}
		status, msg := d.runStep(ctx, client, dep, final, st)
		if status == deployv1.StepStatus_STEP_STATUS_FAILED {
			return fail(st.Name, msg)
		}
		if err := d.setStep(ctx, dep, st.Name, status, msg); err != nil {
			return "", err
		}
	}
	if err := d.setStep(ctx, dep, StepWaitRollout, deployv1.StepStatus_STEP_STATUS_RUNNING, ""); err != nil {
		return "", err
	}
	if err := client.WaitRollout(ctx, dep.Spec.Namespace, dep.App, d.opts.RolloutTimeout); err != nil {
		var re *kube.RolloutError
		if !errors.As(err, &re) {
			err = &kube.RolloutError{Reason: "ClusterUnavailable", Message: err.Error()}
		}
		return fail(StepWaitRollout, err.Error())
	}
	return "", d.setStep(ctx, dep, StepWaitRollout, deployv1.StepStatus_STEP_STATUS_DONE, "every replica updated and available")
}

// prunable are the kinds each step renders only sometimes: what the step
// rendered before and renders no more is deleted (by the labels Vigil puts
// on everything it renders).
var prunable = map[string][]schema.GroupVersionKind{
	render.StepApplyConfig:         {{Version: "v1", Kind: "Secret"}},
	render.StepDeployApp:           {{Group: "autoscaling", Version: "v2", Kind: "HorizontalPodAutoscaler"}},
	render.StepConfigureIngress:    {{Group: "networking.k8s.io", Version: "v1", Kind: "Ingress"}},
	render.StepConfigureMonitoring: {{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"}, {Group: "monitoring.coreos.com", Version: "v1", Kind: "PrometheusRule"}},
}

// runStep applies one step's objects and prunes what the step no longer
// renders.
//
// final holds each object's last version (Manifests.Objects): an object a
// later step applies again in another version (the Ingress, which gets its
// TLS in setup_tls) gets its final version here when it exists already,
// so a redeploy never takes away for a moment what the later step adds.
func (d *Deployer) runStep(ctx context.Context, client *kube.Client, dep *postgres.Deployment, final map[string]*unstructured.Unstructured, st render.Step) (deployv1.StepStatus, string) {
	if st.Name == render.StepEnableAutoRepair {
		status, msg := deployv1.StepStatus_STEP_STATUS_SKIPPED, "auto-repair off: repairs are proposed for approval"
		if dep.Spec.AutoRepair {
			status, msg = deployv1.StepStatus_STEP_STATUS_DONE, "auto-repair on: Vigil repairs the app within its guardrails without asking"
		}
		// Approved or automatic, a repair acts as the repair identity,
		// which may act only where it is granted.
		err := d.repairGrants(client).Grant(ctx, dep.Spec.Namespace, kubeaccess.SourceApp)
		if re, ok := errors.AsType[*reserved.Error](err); ok {
			return status, msg + "; " + re.Error()
		}
		if err != nil {
			return deployv1.StepStatus_STEP_STATUS_FAILED, "RepairAccessFailed: " + err.Error()
		}
		return status, msg + "; Vigil's repair identity may act in namespace " + dep.Spec.Namespace
	}
	pruned, err := d.prune(ctx, client, dep, st)
	if err != nil {
		return deployv1.StepStatus_STEP_STATUS_FAILED, "PruneFailed: " + err.Error()
	}
	if len(st.Objects) == 0 {
		msg := "nothing to apply"
		if st.Name == render.StepConfigureIngress || st.Name == render.StepSetupTLS {
			msg = "no domain: the app is not exposed outside the cluster"
		}
		if len(pruned) > 0 {
			return deployv1.StepStatus_STEP_STATUS_DONE, msg + "; deleted " + strings.Join(pruned, ", ")
		}
		return deployv1.StepStatus_STEP_STATUS_SKIPPED, msg
	}
	var applied, missing []string
	for _, obj := range st.Objects {
		served, err := client.Served(obj.GroupVersionKind())
		if err != nil {
			return deployv1.StepStatus_STEP_STATUS_FAILED, "ClusterUnavailable: " + err.Error()
		}
		if !served {
			missing = append(missing, obj.GetKind())
			continue
		}
		if last := final[describe(obj)]; last != obj {
			exists, err := client.Exists(ctx, obj)
			if err != nil {
				return deployv1.StepStatus_STEP_STATUS_FAILED, "ClusterUnavailable: " + err.Error()
			}
			if exists {
				obj = last
			}
		}
		if _, err := client.Apply(ctx, obj); err != nil {
			return deployv1.StepStatus_STEP_STATUS_FAILED, fmt.Sprintf("ApplyFailed: %s: %v", describe(obj), err)
		}
		applied = append(applied, describe(obj))
	}
	var msg string
	status := deployv1.StepStatus_STEP_STATUS_DONE
	switch {
	case len(applied) == 0:
		status = deployv1.StepStatus_STEP_STATUS_SKIPPED
		msg = fmt.Sprintf("the cluster does not serve %s (is the Prometheus Operator installed?)", strings.Join(missing, ", "))
	case len(missing) > 0:
		msg = fmt.Sprintf("applied %s; skipped %s: not served by the cluster", strings.Join(applied, ", "), strings.Join(missing, ", "))
	default:
		msg = "applied " + strings.Join(applied, ", ")
	}
	if len(pruned) > 0 {
		msg += "; deleted " + strings.Join(pruned, ", ")
	}
	return status, msg
}

// prune deletes what st rendered before and renders no more.
func (d *Deployer) prune(ctx context.Context, client *kube.Client, dep *postgres.Deployment, st render.Step) ([]string, error) {
	var deleted []string
	selector := render.LabelManagedBy + "=vigil," + render.LabelApp + "=" + dep.App
	for _, gvk := range prunable[st.Name] {
		keep := map[string]bool{}
		for _, o := range st.Objects {
			if o.GroupVersionKind() == gvk {
				keep[o.GetName()] = true
			}
		}
		served, err := client.Served(gvk)
		if err != nil {
			return deleted, err
		}
		if !served {
			continue
		}
		gone, err := client.Prune(ctx, gvk, dep.Spec.Namespace, selector, keep)
		deleted = append(deleted, gone...)
		if err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}

func describe(obj *unstructured.Unstructured) string {
	return obj.GetKind() + "/" + obj.GetName()
}

// setStep records a step's state and announces it on deploy.progress, in
// one transaction.
func (d *Deployer) setStep(ctx context.Context, dep *postgres.Deployment, step string, st deployv1.StepStatus, msg string) error {
	return db.InTx(ctx, d.pool, func(tx pgx.Tx) error {
		if err := d.store.SetStep(ctx, tx, dep.Id, step, st, msg, time.Now()); err != nil {
			return err
		}
		return outbox.Add(ctx, tx, &eventsv1.DeployProgress{
			Meta:         bus.NewMeta(Producer, nil),
			DeploymentId: dep.Id, App: dep.App, Revision: dep.Revision,
			Step: step, Status: postgres.StepStatusName(st), Message: msg, Team: dep.Spec.Owner,
		})
	})
}

// finish records the outcome and announces it: deploy.succeeded (or
// deploy.rolled_back for a rollback) or deploy.failed.
func (d *Deployer) finish(ctx context.Context, log *slog.Logger, dep *postgres.Deployment, reason string) error {
	now := time.Now()
	return db.InTx(ctx, d.pool, func(tx pgx.Tx) error {
		var ev bus.Event
		status := deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED
		switch {
		case reason != "":
			status = deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED
			ev = &eventsv1.DeployFailed{
				Meta: bus.NewMeta(Producer, nil), DeploymentId: dep.Id, App: dep.App, Revision: dep.Revision, Reason: reason,
				Team: dep.Spec.Owner,
			}
			log.WarnContext(ctx, "deployment failed", "reason", reason)
		case dep.Kind == deployv1.DeploymentKind_DEPLOYMENT_KIND_ROLLBACK:
			from, err := d.store.LastSucceeded(ctx, tx, dep.App, dep.Revision)
			var fromRev int64
			if err == nil {
				fromRev = from.Revision
			}
			ev = &eventsv1.DeployRolledBack{
				Meta: bus.NewMeta(Producer, nil), DeploymentId: dep.Id, App: dep.App,
				FromRevision: fromRev, ToRevision: dep.RollbackTo, Revision: dep.Revision, Team: dep.Spec.Owner,
			}
			log.InfoContext(ctx, "rollback succeeded", "to_revision", dep.RollbackTo)
		default:
			started := dep.CreateTime.AsTime()
			ev = &eventsv1.DeploySucceeded{
				Meta: bus.NewMeta(Producer, nil), DeploymentId: dep.Id, App: dep.App, Revision: dep.Revision,
				Image: dep.Image, Duration: durationpb.New(now.Sub(started)), Team: dep.Spec.Owner,
			}
			log.InfoContext(ctx, "deployment succeeded")
		}
		if err := d.store.Finish(ctx, tx, dep.Id, status, reason, now); err != nil {
			return err
		}
		return outbox.Add(ctx, tx, ev)
	})
}
