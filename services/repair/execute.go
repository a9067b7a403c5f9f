package repair

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	kresource "k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"

	"github.com/vigil-ops/vigil/pkg/appteam"
	"github.com/vigil-ops/vigil/pkg/db"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
	"github.com/vigil-ops/vigil/services/repair/internal/guard"
	"github.com/vigil-ops/vigil/services/repair/internal/lifecycle"
)

// execute runs a queued repair (or one whose worker stopped mid-way:
// executors make the second execution a no-op).
func (s *Service) execute(ctx context.Context, rp *lifecycle.Repair) error {
	r := rp.Proto()
	id := rp.ID()
	set, err := s.settings(ctx, s.deps.Pool, r)
	if err != nil {
		return err
	}
	// What no one can override is checked again now: the deny list and
	// the namespaces may have changed since the decision.
	if err := guard.Approvable(set, guard.Facts{
		Proposal: r.GetProposal(), Supported: true, Now: s.now(), HealthyAfter: -1,
	}); err != nil {
		return s.block(ctx, id, err.Error())
	}
	// The subject, checked again (the pod's controller once the cluster
	// is at hand, below).
	verdict, err := s.subjectVerdict(ctx, r)
	if err != nil {
		return err
	}
	if !verdict.OK {
		return s.block(ctx, id, verdict.Reason)
	}
	queued := rp.Status() == repairv1.RepairStatus_REPAIR_STATUS_QUEUED
	if queued && rp.Automatic() && r.GetDecidedBy() == "" && set.Paused {
		// The kill switch stops automatic repairs at once, those queued
		// included: a person is asked instead.
		return s.repairs.Update(ctx, id, func(rp *lifecycle.Repair) error {
			return rp.AskInstead("kill switch on: automatic repairs paused", set.ApprovalTTL, s.now())
		})
	}
	if queued {
		if err := s.repairs.Update(ctx, id, func(rp *lifecycle.Repair) error { return rp.Start(set.DryRun, s.now()) }); err != nil {
			return err
		}
	}
	c, err := s.client(ctx, r)
	if errors.Is(err, errNoClusters) {
		s.fail(ctx, r, err.Error(), nil)
		return nil
	}
	if err != nil {
		return err
	}
	if why, err := s.ownsPod(ctx, c, r, verdict); err != nil {
		return err
	} else if why != "" {
		return s.block(ctx, id, why)
	}
	st := rp.State()
	app, ok, err := s.vigilApp(ctx, r, set)
	if err != nil {
		return err
	}
	if ok {
		return s.throughDeploy(ctx, r, c, app, st, set)
	}
	execCtx, cancel := context.WithTimeout(ctx, callTimeout)
	res, err := s.actions.Execute(execCtx, c, r.GetProposal(), action.Run{
		RepairID: id, DryRun: set.DryRun, Limits: limits(set), Planned: st.Plan,
	})
	cancel()
	if _, ok := errors.AsType[*action.RefusedError](err); ok {
		return s.refused(ctx, r, err)
	}
	if err != nil {
		return err
	}
	if res.DryRun {
		b, _ := json.Marshal(res.Object)
		return s.repairs.Update(ctx, id, func(rp *lifecycle.Repair) error { return rp.DryRun(b, res.Summary, s.now()) })
	}
	return s.repairs.Update(ctx, id, func(rp *lifecycle.Repair) error {
		return rp.Executed(lifecycle.Change{
			Summary: res.Summary, Verify: res.Verify, Undo: &res.Undo, Window: set.VerifyWindow, UndoOnFailure: set.UndoOnFailure,
		}, s.now())
	})
}

// vigilApp is the app of Vigil's whose Deployment r changes, when it is
// one: decided from what the deploy service announced (pkg/appteam: the
// app's cluster, namespace and name), never from the repair's app, which
// came from an alert's labels. Its rollback, scale and memory limit go
// through the deploy service. A dry run stays the executor's: the API
// server's dry run changes nothing anywhere.
func (s *Service) vigilApp(ctx context.Context, r *repairv1.Repair, set guard.Settings) (appteam.App, bool, error) {
	p := r.GetProposal()
	switch p.GetAction() {
	case typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT,
		typesv1.RepairAction_REPAIR_ACTION_INCREASE_MEMORY_LIMIT:
	default:
		return appteam.App{}, false, nil
	}
	t := p.GetTarget()
	// An app's workload is the Deployment the deploy service renders,
	// named after the app.
	if set.DryRun || t.GetKind() != "Deployment" {
		return appteam.App{}, false, nil
	}
	cluster, err := s.targetCluster(ctx, r)
	if err != nil {
		return appteam.App{}, false, err
	}
	return appteam.At(ctx, s.deps.Pool, cluster, t.GetNamespace(), t.GetName())
}

// throughDeploy makes the change of a repair of one of Vigil's apps
// through the deploy service — a revision of the app requested by
// repair/<id>, which the next deployment keeps — waits for its rollout,
// then verifies as any repair. It is checked first against the cluster
// and the guardrails as an executor would check it.
func (s *Service) throughDeploy(ctx context.Context, r *repairv1.Repair, c kubernetes.Interface, app appteam.App, st lifecycle.State, set guard.Settings) error {
	p := r.GetProposal()
	if s.deps.Apps == nil {
		s.fail(ctx, r, fmt.Sprintf("%s is app %s of Vigil's, changed only through the deploy service, which this process cannot reach", lifecycle.TargetName(p.GetTarget()), app.Name), nil)
		return nil
	}
	if st.Deploy == nil {
		planCtx, cancel := context.WithTimeout(ctx, callTimeout)
		pl, err := s.actions.Plan(planCtx, c, p, limits(set))
		cancel()
		if err == nil {
			err = action.Run{Planned: st.Plan}.CheckPlanned(pl.UID, pl.Generation)
		}
		if _, ok := errors.AsType[*action.RefusedError](err); ok {
			return s.refused(ctx, r, err)
		}
		if err != nil {
			return err
		}
		ch := lifecycle.DeployChange{Replicas: pl.Replicas, Container: pl.Container, MemoryLimitBytes: pl.MemoryLimitBytes}
		if p.GetAction() == typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT {
			ch = lifecycle.DeployChange{Rollback: true}
		}
		if err := s.repairs.Update(ctx, r.GetId(), func(rp *lifecycle.Repair) error { return rp.AskDeploy(ch, s.now()) }); err != nil {
			return err
		}
		st.Deploy = &ch
	}
	// Deploy waits for the rollout; the worker's lease is renewed
	// meanwhile (advance).
	var (
		d    *deployv1.Deployment
		err  error
		what string
	)
	switch ch := st.Deploy; {
	case ch.Rollback:
		what = fmt.Sprintf("app %s rolled back", app.Name)
		d, err = s.deps.Apps.RollbackForRepair(ctx, app.Name, r.GetId())
	case ch.MemoryLimitBytes > 0:
		what = fmt.Sprintf("memory limit of app %s (container %q) set to %s", app.Name, ch.Container, quantity(ch.MemoryLimitBytes))
		d, err = s.deps.Apps.SetMemoryLimitForRepair(ctx, app.Name, r.GetId(), ch.Container, ch.MemoryLimitBytes)
	default:
		what = fmt.Sprintf("app %s scaled to %d replicas", app.Name, ch.Replicas)
		d, err = s.deps.Apps.ScaleForRepair(ctx, app.Name, r.GetId(), ch.Replicas)
	}
	if err != nil {
		if ctx.Err() != nil || deployUnreachable(err) {
			// Tried again by the next lease (deploy is idempotent by the
			// repair's id): deploy may well have made the change and its
			// answer been lost, and a deploy or Postgres that is down for
			// a moment says nothing about the change itself.
			return err
		}
		s.fail(ctx, r, "the deploy service did not make the change: "+err.Error(), nil)
		return nil
	}
	// No undo behind the deploy service's back: a change that does not
	// verify is escalated to a person, and the app's history has it.
	return s.repairs.Update(ctx, r.GetId(), func(rp *lifecycle.Repair) error {
		return rp.Executed(lifecycle.Change{
			Summary: fmt.Sprintf("%s through the deploy service: revision %d (deployment %s)", what, d.GetRevision(), d.GetId()),
			Window:  set.VerifyWindow, UndoOnFailure: set.UndoOnFailure,
		}, s.now())
	})
}

func quantity(b int64) string { return kresource.NewQuantity(b, kresource.BinarySI).String() }

// refused ends r refused before anything was changed (err, an
// action.RefusedError). A target changed since the plan (another repair
// of it, a deploy) made it stale: superseded, not failed — no cooldown,
// no page; a new proposal is planned on what is there now. Any other
// refusal (the policy forbids it now) fails it, for a person to look at.
func (s *Service) refused(ctx context.Context, r *repairv1.Repair, err error) error {
	if errors.Is(err, action.ErrChanged) {
		return s.block(ctx, r.GetId(), "superseded: "+err.Error())
	}
	s.fail(ctx, r, "refused: "+err.Error(), nil)
	return nil
}

// block refuses a repair that the guardrails, or its subject, no
// longer allow, even approved.
func (s *Service) block(ctx context.Context, id, reason string) error {
	return s.repairs.Update(ctx, id, func(rp *lifecycle.Repair) error { return rp.Block(reason, s.now()) })
}

// undone is what putting back a change that did not verify did.
type undone struct {
	why, summary string
	err          error
}

// fail ends a repair that did not work (after its undo, when u is not
// nil): cooldown for its resource, escalation to people, repair.failed.
func (s *Service) fail(ctx context.Context, r *repairv1.Repair, reason string, u *undone) {
	set, err := s.settings(ctx, s.deps.Pool, r)
	if err != nil {
		set = s.base
	}
	err = s.repairs.Update(ctx, r.GetId(), func(rp *lifecycle.Repair) error {
		now := s.now()
		if u != nil {
			if err := rp.Undone(u.why, u.summary, u.err, now); err != nil {
				return err
			}
		}
		return rp.Fail(reason, u != nil && u.err == nil, set.Cooldown, now)
	})
	if err != nil && ctx.Err() == nil {
		s.log.ErrorContext(ctx, "record a failed repair", "repair_id", r.GetId(), "error", err)
		return
	}
	s.log.WarnContext(ctx, "repair failed", "repair_id", r.GetId(), "reason", reason, "undone", u != nil && u.err == nil)
}

// deployUnreachable reports whether err says the deploy service (over
// gRPC, or in process its Postgres) could not answer for now rather than
// that it refused the change.
func deployUnreachable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.ResourceExhausted:
		return true
	}
	return db.Unavailable(err)
}
