package repair

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"
	kresource "k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"

	"github.com/vigil-ops/vigil/pkg/appteam"
	"github.com/vigil-ops/vigil/pkg/bus"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
	"github.com/vigil-ops/vigil/services/repair/internal/guard"
	"github.com/vigil-ops/vigil/services/repair/internal/postgres"
)

// maxDryRunResult bounds the server's answer kept for a dry run.
const maxDryRunResult = 16 << 10

// execute runs a queued repair (or one whose worker stopped mid-way:
// executors make the second execution a no-op).
func (s *Service) execute(ctx context.Context, row postgres.Row) error {
	r := row.Repair
	set, err := s.settings(ctx, s.deps.Pool, r)
	if err != nil {
		return err
	}
	// What no one can override is checked again now: the deny list and
	// the namespaces may have changed since the decision.
	if err := guard.Approvable(set, guard.Facts{
		Proposal: r.GetProposal(), Supported: true, Now: s.now(), HealthyAfter: -1,
	}); err != nil {
		return s.block(ctx, row, err.Error())
	}
	// The subject, checked again (the pod's controller once the cluster
	// is at hand, below).
	verdict, err := s.subjectVerdict(ctx, r)
	if err != nil {
		return err
	}
	if !verdict.OK {
		return s.block(ctx, row, verdict.Reason)
	}
	if r.GetStatus() == repairv1.RepairStatus_REPAIR_STATUS_QUEUED && row.Automatic && r.GetDecidedBy() == "" && set.Paused {
		// The kill switch stops automatic repairs at once, those queued
		// included: a person is asked instead.
		return s.askInstead(ctx, row, set, "kill switch on: automatic repairs paused")
	}
	if r.GetStatus() == repairv1.RepairStatus_REPAIR_STATUS_QUEUED {
		r.Status, r.DryRun = repairv1.RepairStatus_REPAIR_STATUS_RUNNING, set.DryRun
		by, via := r.GetDecidedBy(), r.GetDecidedVia()
		if row.Automatic {
			by = "guardrails"
		}
		err := pgx.BeginFunc(ctx, s.deps.Pool, func(tx pgx.Tx) error {
			if err := s.store.Save(ctx, tx, r, postgres.Update{}, s.now()); err != nil {
				return err
			}
			msg := fmt.Sprintf("%s of %s", actionName(r.GetProposal().GetAction()), targetName(r.GetProposal().GetTarget()))
			if set.DryRun {
				msg += " (server-side dry run: nothing will change)"
			}
			if err := s.step(ctx, tx, r.GetId(), repairv1.StepKind_STEP_KIND_EXECUTION_STARTED, "repair", "", msg); err != nil {
				return err
			}
			return outbox.Add(ctx, tx, &eventsv1.RepairRequested{
				Meta: bus.NewMeta(Producer, nil), RepairId: r.GetId(), IncidentId: r.GetIncidentId(), AnalysisId: r.GetAnalysisId(),
				Proposal: r.GetProposal(), ApprovedBy: by, Channel: via, DryRun: set.DryRun,
			})
		})
		if err != nil {
			return err
		}
	}
	c, err := s.client(ctx, r)
	if errors.Is(err, errNoClusters) {
		s.fail(ctx, row, err.Error(), false)
		return nil
	}
	if err != nil {
		return err
	}
	if why, err := s.ownsPod(ctx, c, r, verdict); err != nil {
		return err
	} else if why != "" {
		return s.block(ctx, row, why)
	}
	st := loadState(row)
	app, ok, err := s.vigilApp(ctx, r, set)
	if err != nil {
		return err
	}
	if ok {
		return s.throughDeploy(ctx, row, c, app, st, set)
	}
	execCtx, cancel := context.WithTimeout(ctx, callTimeout)
	res, err := s.actions.Execute(execCtx, c, r.GetProposal(), action.Run{
		RepairID: r.GetId(), DryRun: set.DryRun, Limits: limits(set), Planned: st.Plan,
	})
	cancel()
	var refused *action.RefusedError
	if errors.As(err, &refused) {
		// The cluster is not as planned, or the policy forbids it now:
		// nothing was changed.
		s.fail(ctx, row, "refused: "+err.Error(), false)
		return nil
	}
	if err != nil {
		return err
	}
	now := s.now()
	if res.DryRun {
		b, _ := json.Marshal(res.Object)
		if len(b) > maxDryRunResult {
			b = b[:maxDryRunResult]
		}
		r.Status, r.DryRunResult, r.UpdateTime = repairv1.RepairStatus_REPAIR_STATUS_DRY_RUN, string(b), timestamppb.New(now)
		return pgx.BeginFunc(ctx, s.deps.Pool, func(tx pgx.Tx) error {
			if err := s.store.Save(ctx, tx, r, postgres.Update{Release: true}, now); err != nil {
				return err
			}
			return s.step(ctx, tx, r.GetId(), repairv1.StepKind_STEP_KIND_DRY_RUN, "repair", "", "the API server admitted it: "+res.Summary)
		})
	}
	st = st.verifying(&res.Verify, &res.Undo, now, set)
	r.Status, r.UpdateTime = repairv1.RepairStatus_REPAIR_STATUS_VERIFYING, timestamppb.New(now)
	return pgx.BeginFunc(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		if err := s.store.Save(ctx, tx, r, postgres.Update{Result: st.json(), Release: true}, now); err != nil {
			return err
		}
		// This worker leases it again at once: no wake-up needed.
		return s.step(ctx, tx, r.GetId(), repairv1.StepKind_STEP_KIND_EXECUTED, "repair", "", res.Summary)
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

// deployChange is what a repair asked the deploy service for, kept in its
// state before asking: asked again (a worker that stopped midway), the
// repair sends the same change, which the deploy service finds made,
// rather than planning again against a Deployment it already changed.
type deployChange struct {
	// Rollback: to the last good revision, which the deploy service
	// finds as the executor did (pkg/workload).
	Rollback         bool   `json:"rollback,omitempty"`
	Replicas         int32  `json:"replicas,omitempty"`
	Container        string `json:"container,omitempty"`
	MemoryLimitBytes int64  `json:"memory_limit_bytes,omitempty"`
}

// throughDeploy makes the change of a repair of one of Vigil's apps
// through the deploy service — a revision of the app requested by
// repair/<id>, which the next deployment keeps — waits for its rollout,
// then verifies as any repair. It is checked first against the cluster
// and the guardrails as an executor would check it.
func (s *Service) throughDeploy(ctx context.Context, row postgres.Row, c kubernetes.Interface, app appteam.App, st state, set guard.Settings) error {
	r := row.Repair
	p := r.GetProposal()
	if s.deps.Apps == nil {
		s.fail(ctx, row, fmt.Sprintf("%s is app %s of Vigil's, changed only through the deploy service, which this process cannot reach", targetName(p.GetTarget()), app.Name), false)
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
			s.fail(ctx, row, "refused: "+err.Error(), false)
			return nil
		}
		if err != nil {
			return err
		}
		st.Deploy = &deployChange{Replicas: pl.Replicas, Container: pl.Container, MemoryLimitBytes: pl.MemoryLimitBytes}
		if p.GetAction() == typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT {
			st.Deploy = &deployChange{Rollback: true}
		}
		err = pgx.BeginFunc(ctx, s.deps.Pool, func(tx pgx.Tx) error {
			return s.store.Save(ctx, tx, r, postgres.Update{Result: st.json()}, s.now())
		})
		if err != nil {
			return err
		}
	}
	// Deploy waits for the rollout: hold the repair meanwhile.
	if err := s.store.Extend(ctx, r.GetId(), s.now().Add(15*time.Minute)); err != nil {
		return err
	}
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
		if ctx.Err() != nil {
			return err
		}
		s.fail(ctx, row, "the deploy service did not make the change: "+err.Error(), false)
		return nil
	}
	now := s.now()
	// No undo behind the deploy service's back: a change that does not
	// verify is escalated to a person, and the app's history has it.
	st = st.verifying(&action.Verify{}, nil, now, set)
	r.Status, r.UpdateTime = repairv1.RepairStatus_REPAIR_STATUS_VERIFYING, timestamppb.New(now)
	return pgx.BeginFunc(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		if err := s.store.Save(ctx, tx, r, postgres.Update{Result: st.json(), Release: true}, now); err != nil {
			return err
		}
		// This worker leases it again at once: no wake-up needed.
		return s.step(ctx, tx, r.GetId(), repairv1.StepKind_STEP_KIND_EXECUTED, "repair", "", fmt.Sprintf(
			"%s through the deploy service: revision %d (deployment %s)", what, d.GetRevision(), d.GetId()))
	})
}

func quantity(b int64) string { return kresource.NewQuantity(b, kresource.BinarySI).String() }

// askInstead turns a queued automatic repair into a question for a person.
func (s *Service) askInstead(ctx context.Context, row postgres.Row, set guard.Settings, reason string) error {
	r := row.Repair
	now := s.now()
	r.Status, r.Decision = repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL, repairv1.Decision_DECISION_NEEDS_APPROVAL
	r.Reasons = append(r.Reasons, reason)
	r.DecisionReason, r.UpdateTime = strings.Join(r.Reasons, "; "), timestamppb.New(now)
	expires := now.Add(set.ApprovalTTL)
	r.ExpireTime = timestamppb.New(expires)
	return pgx.BeginFunc(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		if err := s.store.Save(ctx, tx, r, postgres.Update{ExpiresAt: expires, Release: true}, now); err != nil {
			return err
		}
		if err := s.step(ctx, tx, r.GetId(), repairv1.StepKind_STEP_KIND_DECIDED, "guardrails", "", "needs approval: "+reason); err != nil {
			return err
		}
		return outbox.Add(ctx, tx, s.approvalRequested(r))
	})
}

// block refuses a repair that the guardrails no longer allow, even
// approved.
func (s *Service) block(ctx context.Context, row postgres.Row, reason string) error {
	r := row.Repair
	now := s.now()
	r.Status, r.Decision = repairv1.RepairStatus_REPAIR_STATUS_BLOCKED, repairv1.Decision_DECISION_BLOCKED
	r.Reasons = append(r.Reasons, reason)
	r.DecisionReason, r.UpdateTime = reason, timestamppb.New(now)
	return pgx.BeginFunc(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		if err := s.store.Save(ctx, tx, r, postgres.Update{Release: true}, now); err != nil {
			return err
		}
		if err := s.step(ctx, tx, r.GetId(), repairv1.StepKind_STEP_KIND_REFUSED, "guardrails", "", "not executed: "+reason); err != nil {
			return err
		}
		return outbox.Add(ctx, tx, &eventsv1.RepairBlocked{
			Meta: bus.NewMeta(Producer, nil), RepairId: r.GetId(), IncidentId: r.GetIncidentId(),
			Proposal: r.GetProposal(), Reasons: []string{reason}, App: r.GetApp(), Summary: r.GetSummary(),
		})
	})
}

// fail ends a repair that did not work: cooldown for its resource (when
// it changed something), escalation to people, repair.failed.
func (s *Service) fail(ctx context.Context, row postgres.Row, reason string, undone bool) {
	r := row.Repair
	set, err := s.settings(ctx, s.deps.Pool, r)
	if err != nil {
		set = s.base
	}
	now := s.now()
	until := now.Add(set.Cooldown)
	r.Status, r.UpdateTime = repairv1.RepairStatus_REPAIR_STATUS_FAILED, timestamppb.New(now)
	err = pgx.BeginFunc(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		if err := s.store.Save(ctx, tx, r, postgres.Update{CooldownUntil: until, Release: true}, now); err != nil {
			return err
		}
		if err := s.step(ctx, tx, r.GetId(), repairv1.StepKind_STEP_KIND_ESCALATED, "repair", "", fmt.Sprintf(
			"failed: %s; %s rests until %s; a person must look", reason, targetName(r.GetProposal().GetTarget()), until.UTC().Format("15:04:05 MST"))); err != nil {
			return err
		}
		return outbox.Add(ctx, tx, &eventsv1.RepairFailed{
			Meta: bus.NewMeta(Producer, nil), RepairId: r.GetId(), IncidentId: r.GetIncidentId(), Proposal: r.GetProposal(),
			Reason: reason, Undone: undone, CooldownUntil: timestamppb.New(until),
		})
	})
	if err != nil && ctx.Err() == nil {
		s.log.ErrorContext(ctx, "record a failed repair", "repair_id", r.GetId(), "error", err)
		return
	}
	s.log.WarnContext(ctx, "repair failed", "repair_id", r.GetId(), "reason", reason, "undone", undone)
}
