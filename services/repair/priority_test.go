package repair_test

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/repair"
)

// The approval card's header shows the incident's priority as the
// repair service last heard it: P2 when it opened, then P0 after an
// incident.updated raised it while the repair waited; an older update
// handled late (P3) does not undo the newer one. An incident whose
// priority was never set asks with none.
func TestApprovalCarriesIncidentPriority(t *testing.T) {
	k := testkit.SharedKube(t)
	f := start(t, k, repair.Options{ApprovalSnooze: time.Minute})
	ns := k.Namespace(t)
	healthy(t, k, ns, "mail", 1)
	f.app(t, "mail", "payments", ns, false)

	opened := time.Now().Add(-time.Hour)
	e := proposal(ns, "mail", "mail", typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, typesv1.Risk_RISK_MEDIUM, 0.9)
	subj := &typesv1.Subject{Cluster: "main", Namespace: ns, Kind: "Deployment", Name: "mail", App: "mail"}
	inc := func(p typesv1.Priority, at time.Time) *typesv1.Incident {
		return &typesv1.Incident{Id: e.GetIncidentId(), App: "mail", Namespace: ns, Subject: subj, Priority: p, UpdatedAt: timestamppb.New(at)}
	}
	require.NoError(t, f.pub.Publish(t.Context(), &eventsv1.IncidentOpened{Meta: bus.NewMeta("monitor", nil), Incident: inc(typesv1.Priority_PRIORITY_P2, opened)}))
	require.NoError(t, f.pub.Publish(t.Context(), e))
	r := f.repairOf(t, e, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL)
	got := asks(t, f)
	require.Len(t, got, 1)
	require.Equal(t, typesv1.Priority_PRIORITY_P2, got[0].GetPriority(), "as it opened")

	require.NoError(t, f.pub.Publish(t.Context(), &eventsv1.IncidentUpdated{Meta: bus.NewMeta("monitor", nil), Incident: inc(typesv1.Priority_PRIORITY_P0, opened.Add(2*time.Minute)), Reason: "severity_raised"}))
	require.NoError(t, f.pub.Publish(t.Context(), &eventsv1.IncidentUpdated{Meta: bus.NewMeta("monitor", nil), Incident: inc(typesv1.Priority_PRIORITY_P3, opened.Add(time.Minute)), Reason: "alert_added"}))
	f.incidentsHandled(t)
	_, err := f.api.PostponeRepair(as(admin), &repairv1.PostponeRepairRequest{Id: r.GetId()})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(asks(t, f)) == 2 }, 30*time.Second, 100*time.Millisecond, "the snoozed card")
	require.Equal(t, typesv1.Priority_PRIORITY_P0, asks(t, f)[1].GetPriority(), "raised while it waited; the late older update ignored")

	// An incident with no priority: the card shows none.
	e2 := f.proposal(t, ns, "mail", "mail", typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, typesv1.Risk_RISK_MEDIUM, 0.9)
	require.NoError(t, f.pub.Publish(t.Context(), e2))
	r2 := f.repairOf(t, e2, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL)
	all := asks(t, f)
	i := slices.IndexFunc(all, func(a *eventsv1.RepairApprovalRequested) bool { return a.GetRepairId() == r2.GetId() })
	require.NotEqual(t, -1, i, "asked for the second repair")
	require.Equal(t, typesv1.Priority_PRIORITY_UNSPECIFIED, all[i].GetPriority())
}

// incidentsHandled waits until the repair service has handled every
// event on the INCIDENTS stream so far.
func (f *fixture) incidentsHandled(t *testing.T) {
	t.Helper()
	s, err := f.js.Stream(t.Context(), "INCIDENTS")
	require.NoError(t, err)
	info, err := s.Info(t.Context())
	require.NoError(t, err)
	last := info.State.LastSeq
	require.Eventually(t, func() bool {
		c, err := s.Consumer(t.Context(), "repair")
		require.NoError(t, err)
		ci, err := c.Info(t.Context())
		require.NoError(t, err)
		return ci.AckFloor.Stream >= last
	}, 30*time.Second, 50*time.Millisecond, "repair handled the incident events")
}
