package monitor_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/appteam"
	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/monitor"
	"github.com/vigil-ops/vigil/services/monitor/internal/monitortest"
	"github.com/vigil-ops/vigil/services/monitor/internal/quiet"
)

const settle = 5 * time.Minute

// quietMonitor starts a monitor replica with deploy quiet on clock.
func (e *env) quietMonitor(t *testing.T, clock *fakeClock) *monitor.Service {
	t.Helper()
	return e.serviceWith(t, clock, monitor.Options{DeployQuiet: settle, ReleaseInterval: 20 * time.Millisecond})
}

// twoTeams registers shop (team-a) and blog (team-b), each in its own
// namespace.
func (e *env) twoTeams(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, a := range []appteam.App{
		{Name: "shop", Team: "team-a", Cluster: "kind", Namespace: "shop"},
		{Name: "blog", Team: "team-b", Cluster: "kind", Namespace: "blog"},
	} {
		require.NoError(t, appteam.SetApp(ctx, e.pool, a, time.Now().Add(-time.Hour)))
	}
}

var root = auth.WithPrincipal(context.Background(), auth.Principal{
	Kind: auth.KindUser, Name: "root", Role: auth.RoleAdmin, AllTeams: true, Unowned: true,
})

// fire is an alert event of fp in namespace ns with severity sev.
func (e *env) fire(fp, ns, sev string, resolved bool, extra ...string) bus.Event {
	labels := map[string]string{"alertname": "HighLatency-" + fp, "namespace": ns, "severity": sev}
	for i := 0; i+1 < len(extra); i += 2 {
		labels[extra[i]] = extra[i+1]
	}
	a := &typesv1.Alert{
		Fingerprint: fp, Labels: labels, StartsAt: timestamppb.New(e.t0),
		Source: typesv1.AlertSource_ALERT_SOURCE_ALERTMANAGER, Status: typesv1.AlertStatus_ALERT_STATUS_FIRING,
	}
	if resolved {
		a.Status, a.EndsAt = typesv1.AlertStatus_ALERT_STATUS_RESOLVED, timestamppb.Now()
		return &eventsv1.AlertResolved{Meta: bus.NewMeta("test", nil), Alert: a}
	}
	return &eventsv1.AlertFired{Meta: bus.NewMeta("test", nil), Alert: a}
}

// rollout publishes a deploy event and waits until monitor has recorded
// it (alerts and deploys come on different streams: their order is not
// the bus's to keep).
func (e *env) rollout(t *testing.T, ev bus.Event, app, outcome string) {
	t.Helper()
	require.NoError(t, e.pub.Publish(context.Background(), ev))
	require.Eventually(t, func() bool {
		var got string
		err := e.pool.QueryRow(context.Background(), `SELECT outcome FROM deploy_windows WHERE app = $1`, app).Scan(&got)
		return err == nil && got == outcome
	}, 30*time.Second, 20*time.Millisecond)
}

// alerts lists every alert through the API, by fingerprint and incident
// ("" for one held or silenced).
func alerts(t *testing.T, s *monitor.Service) map[[2]string]*typesv1.IncidentAlert {
	t.Helper()
	resp, err := s.IncidentServer().ListAlerts(root, &monitorv1.ListAlertsRequest{PageSize: 500})
	require.NoError(t, err)
	out := map[[2]string]*typesv1.IncidentAlert{}
	for _, a := range resp.GetAlerts() {
		out[[2]string{a.GetAlert().GetFingerprint(), a.GetIncidentId()}] = a
	}
	return out
}

// waitHeld waits until fp is held by deployment, firing or resolved.
func waitHeld(t *testing.T, s *monitor.Service, fp, deployment string, st typesv1.AlertStatus) {
	t.Helper()
	require.Eventually(t, func() bool {
		a := alerts(t, s)[[2]string{fp, ""}]
		return a.GetHeldBy().GetDeploymentId() == deployment && a.GetAlert().GetStatus() == st
	}, 30*time.Second, 20*time.Millisecond, "%s held by %s", fp, deployment)
}

func incidents(t *testing.T, s *monitor.Service) []*typesv1.Incident {
	t.Helper()
	resp, err := s.IncidentServer().ListIncidents(root, &monitorv1.ListIncidentsRequest{PageSize: 500})
	require.NoError(t, err)
	return resp.GetIncidents()
}

// waitOpened waits for n incident.opened in all.
func (e *env) waitOpened(t *testing.T, n int) []*eventsv1.IncidentOpened {
	t.Helper()
	var got []*eventsv1.IncidentOpened
	require.Eventually(t, func() bool {
		got = monitortest.Published[*eventsv1.IncidentOpened](t, e.js, bus.SubjectIncidentOpened)
		return len(got) >= n
	}, 30*time.Second, 20*time.Millisecond)
	require.Len(t, got, n)
	return got
}

// requireEvidence checks that inc was opened by fp released from
// deployment's hold, and says so in incident.opened and GetIncident.
func requireEvidence(t *testing.T, s *monitor.Service, ev *eventsv1.IncidentOpened, fp, deployment, outcome string) {
	t.Helper()
	require.Len(t, ev.GetIncident().GetAlerts(), 1)
	sent := ev.GetIncident().GetAlerts()[0]
	require.Equal(t, fp, sent.GetAlert().GetFingerprint())
	require.Equal(t, deployment, sent.GetHeldBy().GetDeploymentId())
	require.Equal(t, int64(7), sent.GetHeldBy().GetRevision())
	require.Equal(t, outcome, sent.GetHeldBy().GetOutcome())
	got, err := s.IncidentServer().GetIncident(root, &monitorv1.GetIncidentRequest{Id: ev.GetIncident().GetId()})
	require.NoError(t, err)
	require.Len(t, got.GetIncident().GetAlerts(), 1)
	require.Equal(t, deployment, got.GetIncident().GetAlerts()[0].GetHeldBy().GetDeploymentId())
	require.Equal(t, outcome, got.GetIncident().GetAlerts()[0].GetHeldBy().GetOutcome())
}

// startRollout has shop's revision 7 start rolling out and returns its
// deployment id.
func (e *env) startRollout(t *testing.T) string {
	t.Helper()
	dep := bus.NewID()
	e.rollout(t, &eventsv1.DeployRequested{Meta: bus.NewMeta("deploy", nil), DeploymentId: dep, App: "shop", Revision: 7}, "shop", "rolling")
	return dep
}

// shopRollingOut starts one monitor with deploy quiet, shop and blog of
// two teams, and shop's rollout.
func shopRollingOut(t *testing.T) (*env, *monitor.Service, string) {
	t.Helper()
	e := newEnv(t)
	s := e.quietMonitor(t, &fakeClock{})
	e.twoTeams(t)
	return e, s, e.startRollout(t)
}

// A rollout of shop holds its warning alerts, on two replicas sharing the
// release: one resolves within the settle time and never opens anything;
// the other still fires when the settle time ends and opens an incident
// naming the deploy.
func TestDeployQuietHoldsThroughSettle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clock := &fakeClock{}
	a, b := e.quietMonitor(t, clock), e.quietMonitor(t, clock)
	e.twoTeams(t)
	ctx := context.Background()
	dep := e.startRollout(t)

	require.NoError(t, e.pub.Publish(ctx, e.fire("brief", "shop", "warning", false), e.fire("lasting", "shop", "warning", false)))
	waitHeld(t, a, "brief", dep, typesv1.AlertStatus_ALERT_STATUS_FIRING)
	waitHeld(t, b, "lasting", dep, typesv1.AlertStatus_ALERT_STATUS_FIRING)
	require.Empty(t, incidents(t, a), "held alerts open nothing")

	e.rollout(t, &eventsv1.DeploySucceeded{Meta: bus.NewMeta("deploy", nil), DeploymentId: dep, App: "shop", Revision: 7}, "shop", "succeeded")
	require.NoError(t, e.pub.Publish(ctx, e.fire("brief", "shop", "warning", true)))
	waitHeld(t, a, "brief", dep, typesv1.AlertStatus_ALERT_STATUS_RESOLVED)
	// Within the settle time: still held, still nothing.
	require.Empty(t, incidents(t, a))
	waitHeld(t, b, "lasting", dep, typesv1.AlertStatus_ALERT_STATUS_FIRING)

	clock.Advance(settle + time.Second)
	ev := e.waitOpened(t, 1)[0]
	requireEvidence(t, b, ev, "lasting", dep, "succeeded")
	all := alerts(t, a)
	require.Len(t, all, 2, "the brief alert, held and resolved, and the lasting one in its incident: %v", all)
	require.Nil(t, all[[2]string{"lasting", ""}], "a released alert is held no more")
	require.Equal(t, typesv1.AlertStatus_ALERT_STATUS_RESOLVED, all[[2]string{"brief", ""}].GetAlert().GetStatus())
	incs := incidents(t, b)
	require.Len(t, incs, 1, "the brief alert never opened anything")
	require.Equal(t, "shop", incs[0].GetApp())
}

// A failed rollout releases its held alerts at once: no settle time.
func TestDeployQuietFailedRolloutOpensAtOnce(t *testing.T) {
	t.Parallel()
	e, s, dep := shopRollingOut(t)
	require.NoError(t, e.pub.Publish(context.Background(), e.fire("errors", "shop", "warning", false)))
	waitHeld(t, s, "errors", dep, typesv1.AlertStatus_ALERT_STATUS_FIRING)
	require.Empty(t, incidents(t, s))

	require.NoError(t, e.pub.Publish(context.Background(), &eventsv1.DeployFailed{
		Meta: bus.NewMeta("deploy", nil), DeploymentId: dep, App: "shop", Revision: 7, Reason: "progress deadline exceeded",
	}))
	ev := e.waitOpened(t, 1)[0]
	requireEvidence(t, s, ev, "errors", dep, "failed")
}

// During shop's rollout, shop's critical alert opens at once, and so do
// the warning alerts of team-b's blog, even one whose labels claim shop:
// the app is the one Vigil resolves, not a label's word.
func TestDeployQuietHoldsOnlyTheAppsWarnings(t *testing.T) {
	t.Parallel()
	e, s, dep := shopRollingOut(t)

	require.NoError(t, e.pub.Publish(context.Background(),
		e.fire("down", "shop", "critical", false),
		e.fire("blog-slow", "blog", "warning", false),
		e.fire("blog-claims-shop", "blog", "warning", false, "app", "shop"),
		e.fire("shop-slow", "shop", "warning", false),
	))
	waitHeld(t, s, "shop-slow", dep, typesv1.AlertStatus_ALERT_STATUS_FIRING)
	got := e.waitOpened(t, 3)
	byApp := map[string]int{}
	for _, ev := range got {
		byApp[ev.GetIncident().GetApp()]++
		for _, a := range ev.GetIncident().GetAlerts() {
			require.Nil(t, a.GetHeldBy(), "%s was never held", a.GetAlert().GetFingerprint())
			require.NotEqual(t, "shop-slow", a.GetAlert().GetFingerprint())
		}
	}
	require.Equal(t, map[string]int{"shop": 1, "blog": 2}, byApp)
	for k, a := range alerts(t, s) {
		if k[0] != "shop-slow" {
			require.Nil(t, a.GetHeldBy(), "%s", k[0])
			require.NotEmpty(t, k[1], "%s is in an incident", k[0])
		}
	}
	// Searched by state, the held alert is held, not silenced.
	for st, want := range map[monitorv1.AlertState][]string{
		monitorv1.AlertState_ALERT_STATE_HELD:     {"shop-slow"},
		monitorv1.AlertState_ALERT_STATE_SILENCED: nil,
	} {
		resp, err := s.IncidentServer().ListAlerts(root, &monitorv1.ListAlertsRequest{States: []monitorv1.AlertState{st}})
		require.NoError(t, err)
		var got []string
		for _, a := range resp.GetAlerts() {
			got = append(got, a.GetAlert().GetFingerprint())
		}
		require.Equal(t, want, got, "%s", st)
	}
}

// A rollout that never announces its end holds its app's alerts for the
// longest rollout only, then releases them.
func TestDeployQuietStopsWaitingForARolloutThatNeverEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clock := &fakeClock{}
	s := e.quietMonitor(t, clock)
	e.twoTeams(t)
	dep := e.startRollout(t)
	// blog's rollout ends: its alert's release shows the releaser has
	// looked past the settle time.
	blogDep := bus.NewID()
	e.rollout(t, &eventsv1.DeploySucceeded{Meta: bus.NewMeta("deploy", nil), DeploymentId: blogDep, App: "blog", Revision: 2}, "blog", "succeeded")
	require.NoError(t, e.pub.Publish(context.Background(), e.fire("slow", "shop", "warning", false), e.fire("blog-slow", "blog", "warning", false)))
	waitHeld(t, s, "slow", dep, typesv1.AlertStatus_ALERT_STATUS_FIRING)
	waitHeld(t, s, "blog-slow", blogDep, typesv1.AlertStatus_ALERT_STATUS_FIRING)
	clock.Advance(settle + time.Second)
	require.Equal(t, "blog", e.waitOpened(t, 1)[0].GetIncident().GetApp())
	waitHeld(t, s, "slow", dep, typesv1.AlertStatus_ALERT_STATUS_FIRING)
	require.Len(t, incidents(t, s), 1, "a rollout still running holds past the settle time")

	clock.Advance(quiet.DefaultMaxRollout)
	requireEvidence(t, s, e.waitOpened(t, 2)[1], "slow", dep, "rolling")
}
