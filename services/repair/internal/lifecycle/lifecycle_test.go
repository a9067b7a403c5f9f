package lifecycle_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
	"github.com/vigil-ops/vigil/services/repair/internal/lifecycle"
)

var now = time.Date(2026, 12, 2, 21, 0, 0, 0, time.UTC)

const (
	proposed  = repairv1.RepairStatus_REPAIR_STATUS_UNSPECIFIED
	pending   = repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL
	queued    = repairv1.RepairStatus_REPAIR_STATUS_QUEUED
	running   = repairv1.RepairStatus_REPAIR_STATUS_RUNNING
	verifying = repairv1.RepairStatus_REPAIR_STATUS_VERIFYING
	succeeded = repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED
	failed    = repairv1.RepairStatus_REPAIR_STATUS_FAILED
	rejected  = repairv1.RepairStatus_REPAIR_STATUS_REJECTED
	blocked   = repairv1.RepairStatus_REPAIR_STATUS_BLOCKED
	expired   = repairv1.RepairStatus_REPAIR_STATUS_EXPIRED
	dryRun    = repairv1.RepairStatus_REPAIR_STATUS_DRY_RUN
)

var allStatuses = []repairv1.RepairStatus{proposed, pending, queued, running, verifying, succeeded, failed, rejected, blocked, expired, dryRun}

// stored is what a repair is restored from; mutators change it.
type stored struct {
	r  *repairv1.Repair
	st lifecycle.Stored
}

type change = func(*stored)

func in(s repairv1.RepairStatus) change { return func(x *stored) { x.r.Status = s } }

func automatic() change { return func(x *stored) { x.st.Automatic = true } }

func decidedBy(who string) change {
	return func(x *stored) { x.r.DecidedBy, x.r.DecidedVia = who, "telegram" }
}

func expiresAt(t time.Time) change { return func(x *stored) { x.r.ExpireTime = timestamppb.New(t) } }

func withState(st lifecycle.State) change {
	return func(x *stored) {
		b, err := json.Marshal(st)
		if err != nil {
			panic(err)
		}
		x.st.State = b
	}
}

// repair is a restored repair of a restart of Deployment shop/api,
// changed by cs.
func repair(cs ...change) *lifecycle.Repair {
	x := &stored{r: &repairv1.Repair{
		Id: "0193a6c0-0000-7000-8000-000000000001", IncidentId: "0193a6c0-0000-7000-8000-0000000000aa",
		AnalysisId: "0193a6c0-0000-7000-8000-0000000000bb", App: "shop", Summary: "api is crash-looping",
		Proposal: &typesv1.RepairProposal{
			Action: typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT,
			Target: &typesv1.ResourceRef{Cluster: "prod", Namespace: "shop", Kind: "Deployment", Name: "api"},
		},
		Confidence: 0.9, Risk: typesv1.Risk_RISK_MEDIUM, Engine: "rules",
		CreateTime: timestamppb.New(now.Add(-time.Hour)), UpdateTime: timestamppb.New(now.Add(-time.Hour)),
	}}
	for _, c := range cs {
		c(x)
	}
	return lifecycle.Restore(x.r, x.st)
}

func approve(by string) lifecycle.Answer {
	return lifecycle.Answer{Approve: true, By: by, Via: "api", At: now}
}

func approvable() (string, error) { return "", nil }

// transitions are every transition, with the arguments of a legal call.
var transitions = map[string]func(*lifecycle.Repair) error{
	"decide": func(r *lifecycle.Repair) error {
		return r.Decide(lifecycle.Decision{Decision: repairv1.Decision_DECISION_AUTO, Reasons: []string{"ok"}}, now)
	},
	"approve":     func(r *lifecycle.Repair) error { return r.Answer(approve("user:olga"), approvable) },
	"expire":      func(r *lifecycle.Repair) error { return r.Expire(now) },
	"postpone":    func(r *lifecycle.Repair) error { return r.Postpone(now.Add(time.Minute), "user:olga", "api", now) },
	"ask instead": func(r *lifecycle.Repair) error { return r.AskInstead("kill switch on", time.Hour, now) },
	"block":       func(r *lifecycle.Repair) error { return r.Block("denied", now) },
	"start":       func(r *lifecycle.Repair) error { return r.Start(false, now) },
	"dry run":     func(r *lifecycle.Repair) error { return r.DryRun([]byte("{}"), "patched", now) },
	"ask deploy":  func(r *lifecycle.Repair) error { return r.AskDeploy(lifecycle.DeployChange{Replicas: 3}, now) },
	"executed":    func(r *lifecycle.Repair) error { return r.Executed(lifecycle.Change{Summary: "restarted"}, now) },
	"succeed":     func(r *lifecycle.Repair) error { return r.Succeed("3/3 ready", now) },
	"undone":      func(r *lifecycle.Repair) error { return r.Undone("crash", "rolled back", nil, now) },
	"fail":        func(r *lifecycle.Repair) error { return r.Fail("broken", false, time.Hour, now) },
}

// legal are the statuses each transition starts from; from every other
// status it is refused.
var legal = map[string][]repairv1.RepairStatus{
	"decide":      {proposed},
	"approve":     {pending},
	"expire":      {pending},
	"postpone":    {pending},
	"ask instead": {queued},
	"block":       {queued, running},
	"start":       {queued},
	"dry run":     {running},
	"ask deploy":  {running},
	"executed":    {running},
	"succeed":     {verifying},
	"undone":      {verifying},
	"fail":        {proposed, queued, running, verifying},
}

// Every transition from every status: from a status that does not allow
// it, it is refused with a *TransitionError and the repair is as it was,
// with nothing to record — except a refused answer, which the timeline
// keeps and nothing else.
func TestTransitionsCheckTheStatus(t *testing.T) {
	t.Parallel()
	for name, apply := range transitions {
		for _, s := range allStatuses {
			t.Run(name+" from "+lifecycle.StatusName(s), func(t *testing.T) {
				t.Parallel()
				// Due to expire, automatic and undecided: what the
				// transitions ask beyond the status holds.
				r := repair(in(s), automatic(), expiresAt(now.Add(-time.Second)))
				if name == "approve" || name == "postpone" {
					r = repair(in(s), expiresAt(now.Add(time.Minute)))
				}
				before := proto.Clone(r.Proto())
				err := apply(r)
				if contains(legal[name], s) {
					require.NoError(t, err)
					require.True(t, r.Changes().Row || len(r.Changes().Steps) > 0, "a transition records something")
					return
				}
				var te *lifecycle.TransitionError
				require.ErrorAs(t, err, &te)
				require.Equal(t, s, te.Status)
				require.True(t, proto.Equal(before, r.Proto()), "the repair is unchanged")
				c := r.Changes()
				require.False(t, c.Row)
				require.Empty(t, c.Events)
				if name == "approve" {
					require.ErrorIs(t, err, lifecycle.ErrNotPending)
					require.True(t, lifecycle.Refused(err))
					require.Len(t, c.Steps, 1, "a refused answer is in the timeline")
					require.Equal(t, repairv1.StepKind_STEP_KIND_REFUSED, c.Steps[0].GetKind())
					require.Equal(t, err.Error(), c.Steps[0].GetMessage())
					return
				}
				require.Empty(t, c.Steps)
				if name == "expire" || name == "postpone" {
					require.ErrorIs(t, err, lifecycle.ErrNotPending, "answered meanwhile")
				} else {
					require.ErrorIs(t, err, lifecycle.ErrIllegal)
					require.False(t, lifecycle.Refused(err))
				}
			})
		}
	}
}

func contains(ss []repairv1.RepairStatus, s repairv1.RepairStatus) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func kinds(c lifecycle.Changes) []repairv1.StepKind {
	var out []repairv1.StepKind
	for _, s := range c.Steps {
		out = append(out, s.GetKind())
	}
	return out
}

func subjects(c lifecycle.Changes) []string {
	var out []string
	for _, e := range c.Events {
		s, err := bus.SubjectOf(e)
		if err != nil {
			panic(err)
		}
		out = append(out, s)
	}
	return out
}

func TestDecide(t *testing.T) {
	t.Parallel()
	plan := &action.Plan{PodsAffected: 2, Downtime: 0}
	for _, tc := range []struct {
		name      string
		decision  repairv1.Decision
		reasons   []string
		status    repairv1.RepairStatus
		automatic bool
		expires   bool
		events    []string
		step      string
	}{
		{"auto", repairv1.Decision_DECISION_AUTO, []string{"within the guardrails"}, queued, true, false, nil, "auto: within the guardrails"},
		{
			"needs approval", repairv1.Decision_DECISION_NEEDS_APPROVAL,
			[]string{"risk MEDIUM", "not automatic"},
			pending, false, true,
			[]string{bus.SubjectRepairApprovalRequested},
			"needs_approval: risk medium; not automatic",
		},
		{"blocked", repairv1.Decision_DECISION_BLOCKED, []string{"denied"}, blocked, false, false, []string{bus.SubjectRepairBlocked}, "blocked: denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := repair()
			require.NoError(t, r.Decide(lifecycle.Decision{
				Decision: tc.decision, Reasons: tc.reasons, Plan: plan, DryRun: true, ApprovalTTL: 30 * time.Minute,
			}, now))
			p, c := r.Proto(), r.Changes()
			require.Equal(t, tc.status, p.GetStatus())
			require.Equal(t, tc.decision, p.GetDecision())
			require.Equal(t, strings.Join(tc.reasons, "; "), p.GetDecisionReason())
			require.True(t, p.GetDryRun())
			require.Equal(t, int32(2), p.GetPodsAffected(), "the plan's")
			require.Equal(t, durationpb.New(0).AsDuration(), p.GetExpectedDowntime().AsDuration())
			require.Equal(t, tc.automatic, r.Automatic())
			require.Equal(t, tc.automatic, c.Automatic)
			require.Equal(t, now, c.DecidedAt)
			require.True(t, c.Release)
			require.Equal(t, plan, r.State().Plan)
			var kept lifecycle.State
			require.NoError(t, json.Unmarshal(c.State, &kept))
			require.Equal(t, plan.PodsAffected, kept.Plan.PodsAffected, "the plan, stored")
			if tc.expires {
				require.Equal(t, now.Add(30*time.Minute), c.ExpiresAt)
				require.Equal(t, now.Add(30*time.Minute), p.GetExpireTime().AsTime())
			} else {
				require.True(t, c.ExpiresAt.IsZero())
			}
			require.Equal(t, tc.events, subjects(c))
			require.Equal(t, []repairv1.StepKind{repairv1.StepKind_STEP_KIND_DECIDED}, kinds(c))
			require.Equal(t, tc.step, c.Steps[0].GetMessage())
			require.Equal(t, "guardrails", c.Steps[0].GetActor())
		})
	}
}

func TestAnswer(t *testing.T) {
	t.Parallel()
	deadline := now.Add(time.Minute)
	errCluster := errors.New("cluster out of reach")
	for _, tc := range []struct {
		name    string
		changes []change
		answer  lifecycle.Answer
		// notApprovable's answer; called says whether it must be asked.
		why    string
		whyErr error
		called bool
		// want: the error (nil: answered), status after, what is recorded.
		want     error
		status   repairv1.RepairStatus
		steps    []repairv1.StepKind
		events   []string
		message  string
		outcome  string
		released bool
	}{
		{
			name: "approved", answer: approve("user:olga"), called: true, status: queued,
			steps: []repairv1.StepKind{repairv1.StepKind_STEP_KIND_APPROVED}, events: []string{bus.SubjectRepairDecided},
			message: "approved", outcome: "approved", released: true,
		},
		{
			name: "rejected, with a reason", answer: lifecycle.Answer{By: "user:olga", Via: "slack", Reason: "not now", At: now}, status: rejected,
			steps: []repairv1.StepKind{repairv1.StepKind_STEP_KIND_REJECTED}, events: []string{bus.SubjectRepairDecided},
			message: "rejected: not now", outcome: "rejected", released: true,
		},
		{
			name: "approval of what may never run", answer: approve("user:olga"), why: "SCALE_DEPLOYMENT is denied", called: true,
			want: lifecycle.ErrNotApprovable, status: pending, steps: []repairv1.StepKind{repairv1.StepKind_STEP_KIND_REFUSED},
			message: "repair 0193a6c0-0000-7000-8000-000000000001: cannot be approved: SCALE_DEPLOYMENT is denied",
		},
		{
			name: "a second answer", changes: []change{in(queued), decidedBy("user:olga")}, answer: lifecycle.Answer{By: "user:walt", Via: "api", At: now},
			want: lifecycle.ErrNotPending, status: queued, steps: []repairv1.StepKind{repairv1.StepKind_STEP_KIND_REFUSED},
			message: "repair 0193a6c0-0000-7000-8000-000000000001 is queued (decided by user:olga): not waiting for an answer",
		},
		{
			name: "too late", changes: []change{expiresAt(now.Add(-time.Second))}, answer: approve("user:olga"),
			want: lifecycle.ErrNotPending, status: pending, steps: []repairv1.StepKind{repairv1.StepKind_STEP_KIND_REFUSED},
			message: "repair 0193a6c0-0000-7000-8000-000000000001 expired at 2026-12-02T20:59:59Z: not waiting for an answer",
		},
		{
			name: "the guardrails cannot be read", answer: approve("user:olga"), whyErr: errCluster, called: true,
			want: errCluster, status: pending,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := repair(append([]change{in(pending), expiresAt(deadline)}, tc.changes...)...)
			called := false
			err := r.Answer(tc.answer, func() (string, error) { called = true; return tc.why, tc.whyErr })
			require.Equal(t, tc.called, called, "the guardrails are asked only of an approval of a waiting repair")
			c := r.Changes()
			require.Equal(t, tc.status, r.Status())
			require.Equal(t, tc.steps, kinds(c))
			require.Equal(t, tc.events, subjects(c))
			require.Equal(t, tc.released, c.Release)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				require.False(t, c.Row, "nothing but the timeline")
				require.NotEqual(t, tc.answer.By, r.Proto().GetDecidedBy(), "not answered by them")
			} else {
				require.NoError(t, err)
				require.Equal(t, tc.answer.By, r.Proto().GetDecidedBy())
				require.Equal(t, tc.answer.Via, r.Proto().GetDecidedVia())
				d, ok := c.Events[0].(*eventsv1.RepairDecided)
				require.True(t, ok)
				require.Equal(t, tc.outcome, d.GetOutcome())
				require.Equal(t, tc.answer.By, d.GetDecidedBy())
				require.Equal(t, tc.answer.Reason, d.GetReason())
			}
			if len(tc.steps) > 0 {
				require.Equal(t, tc.message, c.Steps[0].GetMessage())
				require.Equal(t, tc.answer.By, c.Steps[0].GetActor())
				require.Equal(t, tc.answer.Via, c.Steps[0].GetChannel())
			}
		})
	}
}

func TestStartSaysWhoApproved(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		changes []change
		dryRun  bool
		by, msg string
	}{
		{"a person's approval", []change{decidedBy("user:olga")}, false, "user:olga", "RESTART_DEPLOYMENT of Deployment shop/api"},
		{"automatic", []change{automatic()}, false, "guardrails", "RESTART_DEPLOYMENT of Deployment shop/api"},
		{"a dry run", []change{automatic()}, true, "guardrails", "RESTART_DEPLOYMENT of Deployment shop/api (server-side dry run: nothing will change)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := repair(append([]change{in(queued)}, tc.changes...)...)
			require.NoError(t, r.Start(tc.dryRun, now))
			c := r.Changes()
			require.Equal(t, running, r.Status())
			require.Equal(t, tc.dryRun, r.Proto().GetDryRun())
			require.False(t, c.Release, "the worker goes on executing it")
			require.Equal(t, []repairv1.StepKind{repairv1.StepKind_STEP_KIND_EXECUTION_STARTED}, kinds(c))
			require.Equal(t, tc.msg, c.Steps[0].GetMessage())
			req, ok := c.Events[0].(*eventsv1.RepairRequested)
			require.True(t, ok)
			require.Equal(t, tc.by, req.GetApprovedBy())
			require.Equal(t, tc.dryRun, req.GetDryRun())
		})
	}
}

// The kill switch turns only an automatic repair no person approved into
// a question.
func TestAskInstead(t *testing.T) {
	t.Parallel()
	r := repair(in(queued), automatic(), func(x *stored) { x.r.Reasons = []string{"within the guardrails"} })
	require.NoError(t, r.AskInstead("kill switch on", 10*time.Minute, now))
	c := r.Changes()
	require.Equal(t, pending, r.Status())
	require.Equal(t, repairv1.Decision_DECISION_NEEDS_APPROVAL, r.Proto().GetDecision())
	require.Equal(t, "within the guardrails; kill switch on", r.Proto().GetDecisionReason())
	require.Equal(t, now.Add(10*time.Minute), c.ExpiresAt)
	require.Equal(t, []string{bus.SubjectRepairApprovalRequested}, subjects(c))
	ask, ok := c.Events[0].(*eventsv1.RepairApprovalRequested)
	require.True(t, ok)
	require.Equal(t, now.Add(10*time.Minute), ask.GetExpiresAt().AsTime())
	require.Equal(t, "needs approval: kill switch on", c.Steps[0].GetMessage())

	for name, cs := range map[string][]change{
		"approved by a person": {in(queued), automatic(), decidedBy("user:olga")},
		"not automatic":        {in(queued), decidedBy("user:olga")},
	} {
		r := repair(cs...)
		err := r.AskInstead("kill switch on", time.Minute, now)
		require.ErrorIs(t, err, lifecycle.ErrIllegal, name)
		require.Equal(t, queued, r.Status(), name)
		require.Equal(t, lifecycle.Changes{}, r.Changes(), name)
	}
}

func TestBlockKeepsEveryReason(t *testing.T) {
	t.Parallel()
	r := repair(in(running), func(x *stored) { x.r.Reasons = []string{"risk MEDIUM"} })
	require.NoError(t, r.Block("the namespace is reserved", now))
	c := r.Changes()
	require.Equal(t, blocked, r.Status())
	require.Equal(t, []string{"risk MEDIUM", "the namespace is reserved"}, r.Proto().GetReasons())
	require.Equal(t, "the namespace is reserved", r.Proto().GetDecisionReason())
	require.True(t, c.Release)
	require.Equal(t, "not executed: the namespace is reserved", c.Steps[0].GetMessage())
	b, ok := c.Events[0].(*eventsv1.RepairBlocked)
	require.True(t, ok)
	require.Equal(t, []string{"the namespace is reserved"}, b.GetReasons(), "what blocked it now")
}

func TestDryRunKeepsTheServersAnswerBounded(t *testing.T) {
	t.Parallel()
	r := repair(in(running))
	require.NoError(t, r.DryRun([]byte(strings.Repeat("x", 20<<10)), "Deployment shop/api patched", now))
	require.Equal(t, dryRun, r.Status())
	require.Len(t, r.Proto().GetDryRunResult(), 16<<10)
	require.Empty(t, r.Changes().Events, "nothing happened to announce")
	require.Equal(t, "the API server admitted it: Deployment shop/api patched", r.Changes().Steps[0].GetMessage())
}

// From the execution to the end: what the change needs to be verified and
// undone is kept, and a failure records the undo before escalating.
func TestExecutedVerifiedOrUndoneAndFailed(t *testing.T) {
	t.Parallel()
	r := repair(in(running), withState(lifecycle.State{Plan: &action.Plan{Generation: 4}}))
	undo := &action.Undo{Revision: 3}
	require.NoError(t, r.Executed(lifecycle.Change{
		Summary: "restarted", Verify: action.Verify{Generation: 5}, Undo: undo, Window: 2 * time.Minute, UndoOnFailure: true,
	}, now))
	st := r.State()
	require.Equal(t, verifying, r.Status())
	require.Equal(t, int64(4), st.Plan.Generation, "the plan stays")
	require.Equal(t, int64(5), st.Verify.Generation)
	require.Equal(t, undo, st.Undo)
	require.Equal(t, now, st.VerifyStarted)
	require.Equal(t, now.Add(2*time.Minute), st.VerifyUntil)
	require.True(t, st.UndoOnFailure)
	var stored lifecycle.State
	require.NoError(t, json.Unmarshal(r.Changes().State, &stored))
	require.Equal(t, st.VerifyUntil, stored.VerifyUntil)

	ok := repair(in(verifying), withState(st))
	require.NoError(t, ok.Succeed("2/2 replicas updated, 2 available", now))
	require.Equal(t, succeeded, ok.Status())
	require.Equal(t, []string{bus.SubjectRepairSucceeded}, subjects(ok.Changes()))
	require.Equal(t, "healthy: 2/2 replicas updated, 2 available", ok.Changes().Steps[0].GetMessage())

	bad := repair(in(verifying), withState(st))
	require.NoError(t, bad.Undone("a new pod restarted", "rolled back to revision 3", nil, now))
	require.NoError(t, bad.Fail("verification: a new pod restarted", true, time.Hour, now))
	c := bad.Changes()
	require.Equal(t, failed, bad.Status())
	require.Equal(t, []repairv1.StepKind{repairv1.StepKind_STEP_KIND_UNDONE, repairv1.StepKind_STEP_KIND_ESCALATED}, kinds(c))
	require.Equal(t, "undone after a new pod restarted: rolled back to revision 3", c.Steps[0].GetMessage())
	require.Equal(t, "failed: verification: a new pod restarted; Deployment shop/api rests until 22:00:00 UTC; a person must look", c.Steps[1].GetMessage())
	require.Equal(t, now.Add(time.Hour), c.CooldownUntil)
	f, isFailed := c.Events[0].(*eventsv1.RepairFailed)
	require.True(t, isFailed)
	require.True(t, f.GetUndone())
	require.Equal(t, now.Add(time.Hour), f.GetCooldownUntil().AsTime())

	undoFailed := repair(in(verifying))
	require.NoError(t, undoFailed.Undone("a new pod restarted", "", errors.New("forbidden"), now))
	require.Equal(t, []repairv1.StepKind{repairv1.StepKind_STEP_KIND_UNDO_FAILED}, kinds(undoFailed.Changes()))
	require.Equal(t, "undo failed: forbidden", undoFailed.Changes().Steps[0].GetMessage())
	require.Equal(t, verifying, undoFailed.Status(), "failing is the next transition")
}

func TestAskDeployKeepsTheChange(t *testing.T) {
	t.Parallel()
	r := repair(in(running), withState(lifecycle.State{Plan: &action.Plan{Replicas: 4}}))
	require.NoError(t, r.AskDeploy(lifecycle.DeployChange{Replicas: 4}, now))
	c := r.Changes()
	require.Equal(t, running, r.Status())
	require.True(t, c.Row)
	require.False(t, c.Release, "the worker goes on to ask")
	require.Empty(t, c.Steps)
	require.JSONEq(t, `{"replicas":4}`, mustField(t, c.State, "deploy"))
	require.Equal(t, int32(4), r.State().Plan.Replicas)
}

func mustField(t *testing.T, b json.RawMessage, field string) string {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &m))
	return string(m[field])
}

func TestExpire(t *testing.T) {
	t.Parallel()
	r := repair(in(pending), expiresAt(now.Add(-time.Second)))
	require.NoError(t, r.Expire(now))
	require.Equal(t, expired, r.Status())
	d, ok := r.Changes().Events[0].(*eventsv1.RepairDecided)
	require.True(t, ok)
	require.Equal(t, "expired", d.GetOutcome())
	require.Equal(t, "nobody answered in time", r.Changes().Steps[0].GetMessage())

	notDue := repair(in(pending), expiresAt(now.Add(time.Second)))
	require.ErrorIs(t, notDue.Expire(now), lifecycle.ErrNotPending)
	require.Equal(t, pending, notDue.Status())
	require.Equal(t, lifecycle.Changes{}, notDue.Changes())
}

// A snooze keeps the repair waiting, says who snoozed it until when, and
// has a reminder due then -- cut to the expiry, when no reminder is due;
// the reminder asks again once, and not for a repair decided or expired.
func TestPostponeAndRemind(t *testing.T) {
	t.Parallel()
	r := repair(in(pending), expiresAt(now.Add(time.Hour)))
	require.NoError(t, r.Postpone(now.Add(30*time.Minute), "user:olga", "telegram", now))
	require.Equal(t, pending, r.Status())
	require.Equal(t, "user:olga", r.Proto().GetSnoozedBy())
	c := r.Changes()
	require.Equal(t, now.Add(30*time.Minute), c.RemindAt)
	require.False(t, c.NoReminder)
	require.Equal(t, []repairv1.StepKind{repairv1.StepKind_STEP_KIND_POSTPONED}, kinds(c))
	ask, ok := c.Events[0].(*eventsv1.RepairApprovalRequested)
	require.True(t, ok)
	require.False(t, ask.GetReminder())
	require.Equal(t, now.Add(30*time.Minute), ask.GetSnoozedUntil().AsTime())
	require.Equal(t, "user:olga", ask.GetSnoozedBy())

	long := repair(in(pending), expiresAt(now.Add(10*time.Minute)))
	require.NoError(t, long.Postpone(now.Add(30*time.Minute), "user:olga", "api", now))
	require.Equal(t, now.Add(10*time.Minute), long.Proto().GetSnoozedUntil().AsTime(), "cut to the expiry")
	require.True(t, long.Changes().RemindAt.IsZero())
	require.True(t, long.Changes().NoReminder, "no reminder after the approval")

	due := repair(in(pending), expiresAt(now.Add(time.Hour)), func(x *stored) {
		x.r.SnoozedUntil, x.r.SnoozedBy = timestamppb.New(now), "user:olga"
	})
	due.Remind(now)
	c = due.Changes()
	require.True(t, c.NoReminder)
	require.Len(t, c.Events, 1)
	ask, ok = c.Events[0].(*eventsv1.RepairApprovalRequested)
	require.True(t, ok)
	require.True(t, ask.GetReminder())
	require.Equal(t, "user:olga", ask.GetSnoozedBy())

	for name, r := range map[string]*lifecycle.Repair{
		"decided": repair(in(rejected), expiresAt(now.Add(time.Hour))),
		"expired": repair(in(pending), expiresAt(now.Add(-time.Second))),
	} {
		r.Remind(now)
		require.Empty(t, r.Changes().Events, name)
		require.True(t, r.Changes().NoReminder, name)
	}
}

func TestPropose(t *testing.T) {
	t.Parallel()
	p := repair().Proto()
	r := lifecycle.Propose(p, now)
	require.Equal(t, proposed, r.Status())
	require.Equal(t, "prod/shop/Deployment/api", r.Resource())
	require.Equal(t, now, r.Proto().GetCreateTime().AsTime())
	c := r.Changes()
	require.Equal(t, []repairv1.StepKind{repairv1.StepKind_STEP_KIND_PROPOSED}, kinds(c))
	require.Equal(t, "RESTART_DEPLOYMENT of Deployment shop/api proposed by rules (confidence 0.90, risk MEDIUM): api is crash-looping", c.Steps[0].GetMessage())
	require.Equal(t, "analysis", c.Steps[0].GetActor())
	require.Empty(t, c.Events)
}
