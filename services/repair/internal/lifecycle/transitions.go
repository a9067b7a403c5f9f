package lifecycle

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
)

// The transitions, as a TransitionError names them.
const (
	decide     = "be decided"
	approve    = "approve"
	reject     = "reject"
	expire     = "expire"
	postpone   = "be snoozed"
	askInstead = "ask a person instead"
	block      = "block"
	start      = "start"
	dryRun     = "end in a dry run"
	askDeploy  = "ask the deploy service"
	executed   = "be executed"
	succeed    = "succeed"
	undo       = "be undone"
	fail       = "fail"
)

const (
	proposed  = repairv1.RepairStatus_REPAIR_STATUS_UNSPECIFIED
	pending   = repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL
	queued    = repairv1.RepairStatus_REPAIR_STATUS_QUEUED
	running   = repairv1.RepairStatus_REPAIR_STATUS_RUNNING
	verifying = repairv1.RepairStatus_REPAIR_STATUS_VERIFYING
)

// maxDryRunResult bounds the server's answer kept for a dry run.
const maxDryRunResult = 16 << 10

// Propose is a new repair of an analysis' proposal (r: its ids, the
// proposal, the incident's subject, the analysis' figures), not decided
// yet, with the first step of its timeline.
func Propose(r *repairv1.Repair, now time.Time) *Repair {
	r.CreateTime, r.UpdateTime = timestamppb.New(now), timestamppb.New(now)
	rp := &Repair{r: r, resource: Resource(r.GetProposal().GetTarget())}
	p := r.GetProposal()
	rp.step(repairv1.StepKind_STEP_KIND_PROPOSED, "analysis", "", fmt.Sprintf(
		"%s of %s proposed by %s (confidence %.2f, risk %s): %s", actionName(p.GetAction()), TargetName(p.GetTarget()),
		r.GetEngine(), r.GetConfidence(), riskName(r.GetRisk()), r.GetSummary()), now)
	return rp
}

// Decision is the guardrails' verdict on a proposed repair.
type Decision struct {
	Decision repairv1.Decision
	Reasons  []string
	// Plan is the executor's plan against the cluster as it is; nil when
	// there is none (refused, not supported, no cluster).
	Plan *action.Plan
	// DryRun and ApprovalTTL are the guardrails' where the repair acts.
	DryRun      bool
	ApprovalTTL time.Duration
}

// Decide records the guardrails' decision on a proposed repair: queued
// to run on its own (AUTO), waiting for a person until the approval's
// deadline (NEEDS_APPROVAL, announced as repair.approval_requested), or
// blocked (announced as repair.blocked).
func (r *Repair) Decide(d Decision, now time.Time) error {
	if err := r.in(decide, proposed); err != nil {
		return err
	}
	rp := r.r
	if p := d.Plan; p != nil {
		rp.PodsAffected = int32(p.PodsAffected)
		if p.Downtime > 0 || rp.GetExpectedDowntime() == nil {
			rp.ExpectedDowntime = durationpb.New(p.Downtime)
		}
	}
	rp.Decision, rp.Reasons, rp.DecisionReason = d.Decision, d.Reasons, strings.Join(d.Reasons, "; ")
	rp.DryRun = d.DryRun
	r.state = State{Plan: d.Plan}
	r.changes.DecidedAt, r.changes.Release, r.changes.State = now, true, r.state.json()
	var ev bus.Event
	switch d.Decision {
	case repairv1.Decision_DECISION_AUTO:
		r.set(queued, now)
		r.automatic, r.changes.Automatic = true, true
	case repairv1.Decision_DECISION_NEEDS_APPROVAL:
		r.set(pending, now)
		r.waitUntil(now.Add(d.ApprovalTTL))
		ev = r.approvalRequested()
	default:
		r.set(repairv1.RepairStatus_REPAIR_STATUS_BLOCKED, now)
		ev = r.blocked(d.Reasons)
	}
	msg := strings.TrimPrefix(d.Decision.String(), "DECISION_")
	if len(d.Reasons) > 0 {
		msg += ": " + rp.GetDecisionReason()
	}
	r.step(repairv1.StepKind_STEP_KIND_DECIDED, "guardrails", "", strings.ToLower(msg), now)
	if ev != nil {
		r.emit(ev)
	}
	return nil
}

// Answer is a person's answer to a repair waiting for one.
type Answer struct {
	Approve bool
	// By is who answered ("user:alice"), Via where ("api", "telegram").
	By, Via string
	// Reason is a rejection's.
	Reason string
	At     time.Time
}

// Answer applies a person's answer to a repair waiting for one: approved
// (queued to run) or rejected, announced as repair.decided. An approval
// asks notApprovable, only of a repair still waiting, why the repair may
// never run ("" when it may; an error aborts the answer). A refused
// answer — the repair is not waiting (ErrNotPending) or may not run
// (ErrNotApprovable) — changes nothing but the timeline, where it is
// recorded, and is returned.
func (r *Repair) Answer(a Answer, notApprovable func() (string, error)) error {
	t := reject
	if a.Approve {
		t = approve
	}
	err := r.waiting(t, a.At)
	if err == nil && a.Approve {
		why, cerr := notApprovable()
		if cerr != nil {
			return cerr
		}
		if why != "" {
			err = fmt.Errorf("repair %s: %w: %s", r.ID(), ErrNotApprovable, why)
		}
	}
	if err != nil {
		r.step(repairv1.StepKind_STEP_KIND_REFUSED, a.By, a.Via, err.Error(), a.At)
		return err
	}
	outcome, kind, status := "rejected", repairv1.StepKind_STEP_KIND_REJECTED, repairv1.RepairStatus_REPAIR_STATUS_REJECTED
	if a.Approve {
		outcome, kind, status = "approved", repairv1.StepKind_STEP_KIND_APPROVED, queued
	}
	r.r.DecidedBy, r.r.DecidedVia = a.By, a.Via
	r.set(status, a.At)
	r.changes.Release = true
	msg := outcome
	if a.Reason != "" {
		msg += ": " + a.Reason
	}
	r.step(kind, a.By, a.Via, msg, a.At)
	r.emit(&eventsv1.RepairDecided{
		Meta: bus.NewMeta(Producer, nil), RepairId: r.ID(), IncidentId: r.r.GetIncidentId(), Outcome: outcome,
		DecidedBy: a.By, Channel: a.Via, Reason: a.Reason, DecidedAt: timestamppb.New(a.At),
	})
	return nil
}

// waiting refuses transition t of a repair not waiting for an answer at
// now.
func (r *Repair) waiting(t string, now time.Time) error {
	if r.Status() != pending {
		return r.illegal(t)
	}
	if exp := r.r.GetExpireTime(); exp != nil && now.After(exp.AsTime()) {
		return &TransitionError{ID: r.ID(), Transition: t, Status: r.Status(), Expired: exp.AsTime()}
	}
	return nil
}

// Expire ends an approval nobody gave in time, announced as
// repair.decided ("expired"). A repair answered meanwhile, or not past
// its deadline, is refused (ErrNotPending).
func (r *Repair) Expire(now time.Time) error {
	if r.Status() != pending {
		return r.illegal(expire)
	}
	if exp := r.r.GetExpireTime(); exp == nil || now.Before(exp.AsTime()) {
		return fmt.Errorf("repair %s: no deadline passed: %w", r.ID(), ErrNotPending)
	}
	r.set(repairv1.RepairStatus_REPAIR_STATUS_EXPIRED, now)
	r.step(repairv1.StepKind_STEP_KIND_EXPIRED, "repair", "", "nobody answered in time", now)
	r.emit(&eventsv1.RepairDecided{
		Meta: bus.NewMeta(Producer, nil), RepairId: r.ID(), IncidentId: r.r.GetIncidentId(), Outcome: "expired", DecidedAt: timestamppb.New(now),
	})
	return nil
}

// Postpone snoozes an approval ("Later") until until, cut to its expiry
// -- a snooze never outlives the approval -- announced as
// repair.approval_requested again with who snoozed it until when (the
// card says so); a reminder is due then, unless the approval expires
// first. A repair not waiting is refused (ErrNotPending).
func (r *Repair) Postpone(until time.Time, by, via string, now time.Time) error {
	if err := r.waiting(postpone, now); err != nil {
		return err
	}
	r.changes.NoReminder = true
	if exp := r.r.GetExpireTime(); exp != nil && !until.Before(exp.AsTime()) {
		until = exp.AsTime()
	} else {
		r.changes.RemindAt, r.changes.NoReminder = until, false
	}
	r.r.SnoozedUntil, r.r.SnoozedBy = timestamppb.New(until), by
	r.set(pending, now)
	r.step(repairv1.StepKind_STEP_KIND_POSTPONED, by, via, "snoozed until "+until.UTC().Format(time.RFC3339), now)
	e := r.approvalRequested()
	e.SnoozedUntil, e.SnoozedBy = r.r.GetSnoozedUntil(), by
	r.emit(e)
	return nil
}

// Remind asks again for the approval of a repair whose snooze ended:
// repair.approval_requested with reminder set, once. A repair no longer
// waiting, or past its expiry, is only cleared of its reminder.
func (r *Repair) Remind(now time.Time) {
	r.changes.Row, r.changes.NoReminder = true, true
	if r.waiting(postpone, now) != nil {
		return
	}
	r.step(repairv1.StepKind_STEP_KIND_REMINDED, "repair", "", "asked again after the snooze", now)
	e := r.approvalRequested()
	e.Reminder, e.SnoozedUntil, e.SnoozedBy = true, r.r.GetSnoozedUntil(), r.r.GetSnoozedBy()
	r.emit(e)
}

// AskInstead turns a queued automatic repair that no person approved
// into a question for a person (the kill switch went on since), until
// now+ttl.
func (r *Repair) AskInstead(reason string, ttl time.Duration, now time.Time) error {
	if err := r.in(askInstead, queued); err != nil {
		return err
	}
	if !r.automatic || r.r.GetDecidedBy() != "" {
		return r.illegal(askInstead)
	}
	rp := r.r
	rp.Decision = repairv1.Decision_DECISION_NEEDS_APPROVAL
	rp.Reasons = append(rp.Reasons, reason)
	rp.DecisionReason = strings.Join(rp.Reasons, "; ")
	r.set(pending, now)
	r.waitUntil(now.Add(ttl))
	r.changes.Release = true
	r.step(repairv1.StepKind_STEP_KIND_DECIDED, "guardrails", "", "needs approval: "+reason, now)
	r.emit(r.approvalRequested())
	return nil
}

// Block refuses a queued or running repair that the guardrails, or its
// subject, no longer allow, even approved; announced as repair.blocked.
func (r *Repair) Block(reason string, now time.Time) error {
	if err := r.in(block, queued, running); err != nil {
		return err
	}
	rp := r.r
	rp.Decision = repairv1.Decision_DECISION_BLOCKED
	rp.Reasons = append(rp.Reasons, reason)
	rp.DecisionReason = reason
	r.set(repairv1.RepairStatus_REPAIR_STATUS_BLOCKED, now)
	r.changes.Release = true
	r.step(repairv1.StepKind_STEP_KIND_REFUSED, "guardrails", "", "not executed: "+reason, now)
	r.emit(r.blocked([]string{reason}))
	return nil
}

// Start begins executing a queued repair (a server-side dry run when
// dryRun), announced as repair.requested: approved by who answered, or
// by the guardrails for an automatic one. The worker keeps its lease.
func (r *Repair) Start(dryRun bool, now time.Time) error {
	if err := r.in(start, queued); err != nil {
		return err
	}
	rp := r.r
	rp.DryRun = dryRun
	by := rp.GetDecidedBy()
	if r.automatic {
		by = "guardrails"
	}
	r.set(running, now)
	p := rp.GetProposal()
	msg := fmt.Sprintf("%s of %s", actionName(p.GetAction()), TargetName(p.GetTarget()))
	if dryRun {
		msg += " (server-side dry run: nothing will change)"
	}
	r.step(repairv1.StepKind_STEP_KIND_EXECUTION_STARTED, "repair", "", msg, now)
	r.emit(&eventsv1.RepairRequested{
		Meta: bus.NewMeta(Producer, nil), RepairId: rp.GetId(), IncidentId: rp.GetIncidentId(), AnalysisId: rp.GetAnalysisId(),
		Proposal: p, ApprovedBy: by, Channel: rp.GetDecidedVia(), DryRun: dryRun,
	})
	return nil
}

// DryRun ends a running dry run with the API server's answer (kept, up
// to 16 KiB) and what it admitted.
func (r *Repair) DryRun(result []byte, summary string, now time.Time) error {
	if err := r.in(dryRun, running); err != nil {
		return err
	}
	if len(result) > maxDryRunResult {
		result = result[:maxDryRunResult]
	}
	r.r.DryRunResult = string(result)
	r.set(repairv1.RepairStatus_REPAIR_STATUS_DRY_RUN, now)
	r.changes.Release = true
	r.step(repairv1.StepKind_STEP_KIND_DRY_RUN, "repair", "", "the API server admitted it: "+summary, now)
	return nil
}

// AskDeploy keeps, before the running repair asks the deploy service
// for it, the change it will ask for (see DeployChange).
func (r *Repair) AskDeploy(c DeployChange, now time.Time) error {
	if err := r.in(askDeploy, running); err != nil {
		return err
	}
	r.state.Deploy = &c
	r.changes.Row, r.changes.State = true, r.state.json()
	r.r.UpdateTime = timestamppb.New(now)
	return nil
}

// Executed records the change a running repair made; it is verified
// next, within c.Window.
func (r *Repair) Executed(c Change, now time.Time) error {
	if err := r.in(executed, running); err != nil {
		return err
	}
	v := c.Verify
	r.state.Verify, r.state.Undo, r.state.VerifyStarted = &v, c.Undo, now
	r.state.VerifyUntil, r.state.UndoOnFailure = now.Add(c.Window), c.UndoOnFailure
	r.set(verifying, now)
	// This worker leases it again at once: no wake-up needed.
	r.changes.State, r.changes.Release = r.state.json(), true
	r.step(repairv1.StepKind_STEP_KIND_EXECUTED, "repair", "", c.Summary, now)
	return nil
}

// Succeed ends a repair whose change verified (what: what the
// verification saw), announced as repair.succeeded.
func (r *Repair) Succeed(what string, now time.Time) error {
	if err := r.in(succeed, verifying); err != nil {
		return err
	}
	r.set(repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED, now)
	r.changes.Release = true
	r.step(repairv1.StepKind_STEP_KIND_VERIFIED, "repair", "", "healthy: "+what, now)
	r.emit(&eventsv1.RepairSucceeded{
		Meta: bus.NewMeta(Producer, nil), RepairId: r.ID(), IncidentId: r.r.GetIncidentId(), Proposal: r.r.GetProposal(),
		Verification: what,
	})
	return nil
}

// Undone records the undo of a change that did not verify (why): what
// putting it back did (summary), or why it failed (err). The repair
// fails next (Fail).
func (r *Repair) Undone(why, summary string, err error, now time.Time) error {
	if e := r.in(undo, verifying); e != nil {
		return e
	}
	kind, msg := repairv1.StepKind_STEP_KIND_UNDONE, "undone after "+why+": "+summary
	if err != nil {
		kind, msg = repairv1.StepKind_STEP_KIND_UNDO_FAILED, "undo failed: "+err.Error()
	}
	r.step(kind, "repair", "", msg, now)
	return nil
}

// Fail ends a repair that did not work, in any status before its end,
// and escalates it to people: its resource rests for cooldown (no repair
// of it is decided meanwhile), and repair.failed says whether the change
// was undone.
func (r *Repair) Fail(reason string, undone bool, cooldown time.Duration, now time.Time) error {
	if err := r.in(fail, proposed, queued, running, verifying); err != nil {
		return err
	}
	until := now.Add(cooldown)
	r.set(repairv1.RepairStatus_REPAIR_STATUS_FAILED, now)
	r.changes.CooldownUntil, r.changes.Release = until, true
	rp := r.r
	r.step(repairv1.StepKind_STEP_KIND_ESCALATED, "repair", "", fmt.Sprintf(
		"failed: %s; %s rests until %s; a person must look", reason, TargetName(rp.GetProposal().GetTarget()), until.UTC().Format("15:04:05 MST")), now)
	r.emit(&eventsv1.RepairFailed{
		Meta: bus.NewMeta(Producer, nil), RepairId: rp.GetId(), IncidentId: rp.GetIncidentId(), Proposal: rp.GetProposal(),
		Reason: reason, Undone: undone, CooldownUntil: timestamppb.New(until),
	})
	return nil
}

func (r *Repair) in(t string, statuses ...repairv1.RepairStatus) error {
	if slices.Contains(statuses, r.Status()) {
		return nil
	}
	return r.illegal(t)
}

func (r *Repair) illegal(t string) error {
	return &TransitionError{ID: r.ID(), Transition: t, Status: r.Status(), DecidedBy: r.r.GetDecidedBy()}
}

func (r *Repair) set(s repairv1.RepairStatus, now time.Time) {
	r.r.Status, r.r.UpdateTime = s, timestamppb.New(now)
	r.changes.Row = true
}

func (r *Repair) waitUntil(deadline time.Time) {
	r.r.ExpireTime = timestamppb.New(deadline)
	r.changes.ExpiresAt = deadline
}

func (r *Repair) step(kind repairv1.StepKind, actor, channel, msg string, now time.Time) {
	r.changes.Steps = append(r.changes.Steps, &repairv1.RepairStep{
		Time: timestamppb.New(now), Kind: kind, Actor: actor, Channel: channel, Message: msg,
	})
}

func (r *Repair) emit(e bus.Event) { r.changes.Events = append(r.changes.Events, e) }

func (r *Repair) approvalRequested() *eventsv1.RepairApprovalRequested {
	rp := r.r
	return &eventsv1.RepairApprovalRequested{
		Meta: bus.NewMeta(Producer, nil), RepairId: rp.GetId(), IncidentId: rp.GetIncidentId(), Proposal: rp.GetProposal(),
		Reason: rp.GetDecisionReason(), Reasons: rp.GetReasons(), ExpiresAt: rp.GetExpireTime(), AnalysisId: rp.GetAnalysisId(),
		App: rp.GetApp(), Summary: rp.GetSummary(), Confidence: rp.GetConfidence(), Risk: rp.GetRisk(),
		PodsAffected: rp.GetPodsAffected(), ExpectedDowntime: rp.GetExpectedDowntime(), Engine: rp.GetEngine(),
		Model: rp.GetModel(), InputTokens: rp.GetInputTokens(), OutputTokens: rp.GetOutputTokens(), CostUsd: rp.GetCostUsd(),
		IncidentTitle: rp.GetIncidentTitle(),
	}
}

func (r *Repair) blocked(reasons []string) *eventsv1.RepairBlocked {
	rp := r.r
	return &eventsv1.RepairBlocked{
		Meta: bus.NewMeta(Producer, nil), RepairId: rp.GetId(), IncidentId: rp.GetIncidentId(),
		Proposal: rp.GetProposal(), Reasons: reasons, App: rp.GetApp(), Summary: rp.GetSummary(),
	}
}
