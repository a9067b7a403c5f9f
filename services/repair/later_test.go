package repair_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/repair"
)

func asks(t *testing.T, f *fixture) []*eventsv1.RepairApprovalRequested {
	t.Helper()
	return events(t, f.js, bus.SubjectRepairApprovalRequested, func() *eventsv1.RepairApprovalRequested { return &eventsv1.RepairApprovalRequested{} })
}

// "Later": an operator of the repair's team snoozes the approval; it keeps
// waiting, the card is told who snoozed it until when, and when the
// snooze ends the approval is asked again, once. Another team's snooze
// is refused and changes nothing.
func TestLaterSnoozesAndRemindsOnce(t *testing.T) {
	k := testkit.SharedKube(t)
	f := start(t, k, repair.Options{ApprovalSnooze: 2 * time.Second})
	ns := k.Namespace(t)
	healthy(t, k, ns, "mail", 1)
	f.app(t, "mail", "payments", ns, false)
	e := f.proposal(t, ns, "mail", "mail", typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, typesv1.Risk_RISK_MEDIUM, 0.9)
	require.NoError(t, f.pub.Publish(t.Context(), e))
	r := f.repairOf(t, e, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL)
	require.Eventually(t, func() bool {
		_, err := f.api.GetRepair(as(operator), &repairv1.GetRepairRequest{Id: r.GetId()})
		return err == nil
	}, 30*time.Second, 50*time.Millisecond, "the repair belongs to the app's team")

	_, err := f.api.PostponeRepair(as(stranger), &repairv1.PostponeRepairRequest{Id: r.GetId()})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	_, err = f.api.PostponeRepair(as(operator), &repairv1.PostponeRepairRequest{Id: r.GetId(), For: durationpb.New(time.Second)})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "under a minute: %v", err)
	r = f.repairOf(t, e, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL)
	require.Nil(t, r.GetSnoozedUntil(), "refusals change nothing")
	require.Len(t, asks(t, f), 1)

	before := time.Now()
	resp, err := f.api.PostponeRepair(as(operator), &repairv1.PostponeRepairRequest{Id: r.GetId()})
	require.NoError(t, err)
	snoozed := resp.GetRepair()
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL, snoozed.GetStatus(), "still waiting")
	require.Equal(t, "user:olga", snoozed.GetSnoozedBy())
	require.WithinRange(t, snoozed.GetSnoozedUntil().AsTime(), before.Add(2*time.Second), time.Now().Add(2*time.Second))

	// The card hears of the snooze, then of the reminder, once.
	require.Eventually(t, func() bool { return len(asks(t, f)) >= 3 }, 30*time.Second, 200*time.Millisecond, "a reminder")
	got := asks(t, f)
	assert.False(t, got[1].GetReminder())
	assert.Equal(t, "user:olga", got[1].GetSnoozedBy())
	assert.True(t, got[1].GetSnoozedUntil().AsTime().Equal(snoozed.GetSnoozedUntil().AsTime()))
	assert.True(t, got[2].GetReminder())
	assert.Equal(t, r.GetId(), got[2].GetRepairId())
	assert.Equal(t, "mail is unhealthy", got[2].GetSummary(), "the whole card again")
	r = f.repairOf(t, e, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL)
	assert.Equal(t, []repairv1.StepKind{
		repairv1.StepKind_STEP_KIND_PROPOSED, repairv1.StepKind_STEP_KIND_DECIDED,
		repairv1.StepKind_STEP_KIND_POSTPONED, repairv1.StepKind_STEP_KIND_REMINDED,
	}, steps(r))
	// Another round of the reminder loop (every 5 s) sends nothing more.
	time.Sleep(6 * time.Second)
	require.Len(t, asks(t, f), 3, "reminded once")

	// Answered afterwards as ever.
	_, err = f.api.RejectRepair(as(operator), &repairv1.RejectRepairRequest{Id: r.GetId()})
	require.NoError(t, err)
	_, err = f.api.PostponeRepair(as(operator), &repairv1.PostponeRepairRequest{Id: r.GetId()})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "a decided repair: %v", err)
}

// A snooze never outlives its approval: cut to the expiry, and no
// reminder comes after the approval expired.
func TestLaterNeverOutlivesTheApproval(t *testing.T) {
	k := testkit.SharedKube(t)
	f := start(t, k, repair.Options{})
	ns := k.Namespace(t)
	healthy(t, k, ns, "mail", 1)
	f.setGuardrails(t, &repairv1.Guardrails{Scope: "global", ApprovalTtl: durationpb.New(3 * time.Second)})
	e := f.proposal(t, ns, "mail", "", typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, typesv1.Risk_RISK_MEDIUM, 0.9)
	require.NoError(t, f.pub.Publish(t.Context(), e))
	r := f.repairOf(t, e, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL)
	resp, err := f.api.PostponeRepair(as(admin), &repairv1.PostponeRepairRequest{Id: r.GetId(), For: durationpb.New(time.Hour)})
	require.NoError(t, err)
	require.True(t, resp.GetRepair().GetSnoozedUntil().AsTime().Equal(r.GetExpireTime().AsTime()), "cut to the expiry")

	r = f.repairOf(t, e, repairv1.RepairStatus_REPAIR_STATUS_EXPIRED)
	assert.NotContains(t, steps(r), repairv1.StepKind_STEP_KIND_REMINDED)
	got := asks(t, f)
	require.Len(t, got, 2, "the question and the snooze, no reminder")
	assert.False(t, got[1].GetReminder())
}
