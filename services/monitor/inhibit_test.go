package monitor_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/monitor"
	"github.com/vigil-ops/vigil/services/monitor/internal/monitortest"
)

const nodeDownRules = `inhibit_rules:
  - source_matchers: [alertname="NodeDown"]
    target_matchers: [alertname="KubePodCrashLooping"]
    equal: [node]
`

// inhibitService starts a monitor with opts and a reload channel.
func (e *env) inhibitService(t *testing.T, opts monitor.Options, reload chan struct{}) *monitor.Service {
	t.Helper()
	pool, err := db.Open(context.Background(), e.dsn, monitor.Schema)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := monitor.New(ctx, opts, monitor.Deps{
		Pool: pool, JetStream: e.js, Publisher: e.pub, Metrics: e.metrics, Logger: testkit.Logger(t), Reload: reload,
	})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return s
}

func firing(fp string, labels map[string]string) bus.Event {
	return &eventsv1.AlertFired{Meta: bus.NewMeta("test", nil), Alert: &typesv1.Alert{
		Fingerprint: fp, Labels: labels, StartsAt: timestamppb.New(time.Now().Add(-time.Minute).Truncate(time.Second)),
		Status: typesv1.AlertStatus_ALERT_STATUS_FIRING, Source: typesv1.AlertSource_ALERT_SOURCE_ALERTMANAGER,
	}}
}

func resolvedOf(ev bus.Event) bus.Event {
	a := ev.(*eventsv1.AlertFired).GetAlert()
	return &eventsv1.AlertResolved{Meta: bus.NewMeta("test", nil), Alert: &typesv1.Alert{
		Fingerprint: a.GetFingerprint(), Labels: a.GetLabels(), StartsAt: a.GetStartsAt(), EndsAt: timestamppb.Now(),
		Status: typesv1.AlertStatus_ALERT_STATUS_RESOLVED, Source: a.GetSource(),
	}}
}

func opened(t *testing.T, js jetstream.JetStream) int {
	t.Helper()
	s, err := js.Stream(context.Background(), "INCIDENTS")
	require.NoError(t, err)
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(bus.SubjectIncidentOpened))
	require.NoError(t, err)
	return int(info.State.Subjects[bus.SubjectIncidentOpened])
}

var admin = auth.WithPrincipal(context.Background(),
	auth.Principal{Kind: auth.KindUser, Name: "root", Role: auth.RoleAdmin, AllTeams: true, Unowned: true})

// NodeDown{node=n1} inhibits the pod alerts of n1 (in the same batch, and
// later), not those of n2; the inhibited alerts open nothing and are
// listed as inhibited by the NodeDown; when it resolves they open their
// incident.
func TestInhibitionOnThePipeline(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	file := filepath.Join(t.TempDir(), "inhibit.yml")
	require.NoError(t, os.WriteFile(file, []byte(nodeDownRules), 0o600))
	s := e.inhibitService(t, monitor.Options{InhibitFile: file}, nil)
	ctx := context.Background()

	nodeDown := firing("node-n1", map[string]string{"alertname": "NodeDown", "node": "n1", "severity": "critical"})
	podA := firing("pod-a", map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop", "node": "n1", "pod": "a"})
	podB := firing("pod-b", map[string]string{"alertname": "KubePodCrashLooping", "namespace": "web", "node": "n2", "pod": "b"})
	require.NoError(t, e.batcher.Publish(ctx, nodeDown, podA, podB))
	require.Eventually(t, func() bool { return e.tally(t).incidents == 2 }, 30*time.Second, 20*time.Millisecond)
	// A pod alert of n1 after the NodeDown is stored.
	podC := firing("pod-c", map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop", "node": "n1", "pod": "c"})
	require.NoError(t, e.batcher.Publish(ctx, podC))

	list := func(states ...monitorv1.AlertState) map[string]*typesv1.IncidentAlert {
		t.Helper()
		resp, err := s.IncidentServer().ListAlerts(admin, &monitorv1.ListAlertsRequest{States: states, PageSize: 100})
		require.NoError(t, err)
		out := map[string]*typesv1.IncidentAlert{}
		for _, a := range resp.GetAlerts() {
			out[a.GetAlert().GetFingerprint()] = a
		}
		return out
	}
	require.Eventually(t, func() bool { return list()["pod-c"] != nil }, 30*time.Second, 20*time.Millisecond)
	rules, err := s.InhibitionServer().GetInhibitionRules(admin, &monitorv1.GetInhibitionRulesRequest{})
	require.NoError(t, err)
	require.Len(t, rules.GetRules().GetRules(), 1)
	rule := rules.GetRules().GetRules()[0].GetId()
	held := list(monitorv1.AlertState_ALERT_STATE_INHIBITED)
	require.Empty(t, list(monitorv1.AlertState_ALERT_STATE_SILENCED), "inhibited is not silenced")
	require.Len(t, held, 2, "pod-a and pod-c held, nothing else")
	for _, fp := range []string{"pod-a", "pod-c"} {
		require.Empty(t, held[fp].GetIncidentId(), fp)
		require.Equal(t, "node-n1", held[fp].GetInhibitedBy(), fp)
		require.Equal(t, rule, held[fp].GetInhibitRule(), fp)
		require.Empty(t, held[fp].GetSilencedBy(), fp)
	}
	all := list()
	require.NotEmpty(t, all["pod-b"].GetIncidentId(), "n2's pod alert is not inhibited")
	require.Empty(t, all["pod-b"].GetInhibitedBy())
	require.NotEmpty(t, all["node-n1"].GetIncidentId())
	x := e.tally(t)
	require.Equal(t, 2, x.incidents, "NodeDown's and n2's pod's incidents only")
	require.Equal(t, 2, opened(t, e.js), "nobody is told of the inhibited alerts")

	// The NodeDown resolves: the pod alerts of n1 open their incident.
	require.NoError(t, e.batcher.Publish(ctx, resolvedOf(nodeDown)))
	require.Eventually(t, func() bool {
		a := list()
		return a["pod-a"].GetIncidentId() != "" && a["pod-a"].GetIncidentId() == a["pod-c"].GetIncidentId()
	}, 30*time.Second, 20*time.Millisecond, "released into one incident")
	a := list()
	require.Empty(t, a["pod-a"].GetInhibitedBy())
	require.Equal(t, typesv1.AlertStatus_ALERT_STATUS_FIRING, a["pod-a"].GetAlert().GetStatus())
	require.Empty(t, list(monitorv1.AlertState_ALERT_STATE_INHIBITED), "no held copy left")
	inc, err := s.IncidentServer().GetIncident(admin, &monitorv1.GetIncidentRequest{Id: a["pod-a"].GetIncidentId()})
	require.NoError(t, err)
	require.Equal(t, int32(2), inc.GetIncident().GetFiringCount())
	require.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_OPEN, inc.GetIncident().GetStatus())
	require.Eventually(t, func() bool { return opened(t, e.js) == 3 }, 30*time.Second, 20*time.Millisecond)
	monitortest.RequireCountersMatch(t, e.pool)
}

// An alert matching both sides of a rule does not inhibit itself, nor
// another matching both; a held alert that resolves is not released.
func TestInhibitionTwoSidedAndResolvedWhileHeld(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.inhibitService(t, monitor.Options{}, nil)
	_, err := s.InhibitionServer().ApplyInhibitionRules(admin, &monitorv1.ApplyInhibitionRulesRequest{Rules: []*monitorv1.InhibitRule{
		{SourceMatchers: []string{`severity="critical"`}, TargetMatchers: []string{`severity=~"critical|warning"`}, Equal: []string{"cluster"}},
	}})
	require.NoError(t, err)
	ctx := context.Background()
	critA := firing("crit-a", map[string]string{"alertname": "A", "severity": "critical", "cluster": "c1"})
	critB := firing("crit-b", map[string]string{"alertname": "B", "severity": "critical", "cluster": "c1"})
	warn := firing("warn", map[string]string{"alertname": "W", "severity": "warning", "cluster": "c1"})
	require.NoError(t, e.batcher.Publish(ctx, critA, critB, warn))
	require.Eventually(t, func() bool { return e.tally(t).incidents == 2 }, 30*time.Second, 20*time.Millisecond)
	var by string
	require.Eventually(t, func() bool {
		return e.pool.QueryRow(ctx, `SELECT inhibited_by FROM alerts WHERE fingerprint = 'warn' AND incident_id IS NULL`).Scan(&by) == nil
	}, 30*time.Second, 20*time.Millisecond)
	require.Contains(t, []string{"crit-a", "crit-b"}, by)

	// The warning resolves while held, then the criticals: nothing to
	// release, no incident for it.
	require.NoError(t, e.batcher.Publish(ctx, resolvedOf(warn)))
	require.Eventually(t, func() bool {
		var st string
		return e.pool.QueryRow(ctx, `SELECT status FROM alerts WHERE fingerprint = 'warn'`).Scan(&st) == nil && st == "resolved"
	}, 30*time.Second, 20*time.Millisecond)
	require.NoError(t, e.batcher.Publish(ctx, resolvedOf(critA), resolvedOf(critB)))
	require.Eventually(t, func() bool { return e.tally(t).unresolved == 0 }, 30*time.Second, 20*time.Millisecond)
	var candidates int
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT count(*) FROM alerts WHERE inhibited_by IS NOT NULL AND status = 'firing'`).Scan(&candidates))
	require.Zero(t, candidates, "nothing held that still fires: nothing to release")
	require.Equal(t, 2, e.tally(t).incidents, "the resolved warning opened nothing")
	var n int
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT count(*) FROM inhibit_sources`).Scan(&n))
	require.Zero(t, n, "resolved sources are forgotten")
}

// The API replaces the whole set with optimistic concurrency, and refuses
// while the file is in charge; SIGHUP applies the file again.
func TestInhibitionRulesAPIAndFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.inhibitService(t, monitor.Options{}, nil)
	api := s.InhibitionServer()
	got, err := api.GetInhibitionRules(admin, &monitorv1.GetInhibitionRulesRequest{})
	require.NoError(t, err)
	require.Zero(t, got.GetRules().GetVersion())
	require.Empty(t, got.GetRules().GetRules())

	rule := &monitorv1.InhibitRule{SourceMatchers: []string{`alertname="NodeDown"`}, TargetMatchers: []string{`severity="warning"`}, Equal: []string{"node"}}
	applied, err := api.ApplyInhibitionRules(admin, &monitorv1.ApplyInhibitionRulesRequest{Rules: []*monitorv1.InhibitRule{rule}})
	require.NoError(t, err)
	require.Equal(t, int64(1), applied.GetRules().GetVersion())
	require.Equal(t, "root", applied.GetRules().GetUpdatedBy())
	require.NotEmpty(t, applied.GetRules().GetRules()[0].GetId())

	unchanged := func() {
		t.Helper()
		now, err := api.GetInhibitionRules(admin, &monitorv1.GetInhibitionRulesRequest{})
		require.NoError(t, err)
		require.Equal(t, applied.GetRules().GetVersion(), now.GetRules().GetVersion())
		require.Len(t, now.GetRules().GetRules(), 1)
	}
	_, err = api.ApplyInhibitionRules(admin, &monitorv1.ApplyInhibitionRulesRequest{Version: 0})
	require.Equal(t, codes.Aborted, status.Code(err), "a stale version: %v", err)
	unchanged()
	_, err = api.ApplyInhibitionRules(admin, &monitorv1.ApplyInhibitionRulesRequest{Version: 1, Rules: []*monitorv1.InhibitRule{
		{SourceMatchers: []string{`alertname=~"("`}, TargetMatchers: []string{`a="b"`}},
	}})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Equal(t, "rules[0].source_matchers[0]", server.Violations(status.Convert(err))[0].Field)
	unchanged()

	// A second monitor with the file takes charge of the rules.
	file := filepath.Join(t.TempDir(), "inhibit.yml")
	require.NoError(t, os.WriteFile(file, []byte(nodeDownRules), 0o600))
	reload := make(chan struct{})
	fs := e.inhibitService(t, monitor.Options{InhibitFile: file}, reload)
	got, err = fs.InhibitionServer().GetInhibitionRules(admin, &monitorv1.GetInhibitionRulesRequest{})
	require.NoError(t, err)
	require.True(t, got.GetRules().GetFromFile())
	require.Equal(t, []string{`alertname="KubePodCrashLooping"`}, got.GetRules().GetRules()[0].GetTargetMatchers())
	_, err = api.ApplyInhibitionRules(admin, &monitorv1.ApplyInhibitionRulesRequest{Version: got.GetRules().GetVersion()})
	require.Equal(t, codes.FailedPrecondition, status.Code(err))

	require.NoError(t, os.WriteFile(file, []byte(nodeDownRules+`  - source_matchers: [alertname="ClusterDown"]
    target_matchers: [severity="warning"]
`), 0o600))
	reload <- struct{}{}
	require.Eventually(t, func() bool {
		got, err := api.GetInhibitionRules(admin, &monitorv1.GetInhibitionRulesRequest{})
		return err == nil && len(got.GetRules().GetRules()) == 2 && got.GetRules().GetFromFile()
	}, 30*time.Second, 20*time.Millisecond)
	// A file that does not parse leaves the rules as they are.
	require.NoError(t, os.WriteFile(file, []byte("inhibit_rules: [\n"), 0o600))
	reload <- struct{}{}
	reload <- struct{}{} // the first was handled once this one is taken
	got, err = api.GetInhibitionRules(admin, &monitorv1.GetInhibitionRulesRequest{})
	require.NoError(t, err)
	require.Len(t, got.GetRules().GetRules(), 2)
}
