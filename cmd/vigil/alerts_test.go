package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

func TestAlertsList(t *testing.T) {
	f, addr := startFake(t)
	before := time.Now()
	err := runCLI(alertsCommand, addr, "list",
		"--filter", `alertname="HighLatency"`, "--filter", `{severity!="info", team=~"pay.*"}`,
		"--state", "firing,silenced", "--incident", "0198a0a0-0000-7000-8000-000000000003",
		"--since", "2h", "--until", "2030-01-01T00:00:00Z", "--limit", "10", "--page-token", "tok")
	after := time.Now()
	require.NoError(t, err)
	require.Equal(t, "Bearer test-token", f.token)
	got := f.got.(*monitorv1.ListAlertsRequest)
	require.Equal(t, []string{`alertname="HighLatency"`, `{severity!="info", team=~"pay.*"}`}, got.GetFilter())
	require.Equal(t, []monitorv1.AlertState{monitorv1.AlertState_ALERT_STATE_FIRING, monitorv1.AlertState_ALERT_STATE_SILENCED}, got.GetStates())
	require.Equal(t, "0198a0a0-0000-7000-8000-000000000003", got.GetIncidentId())
	require.Equal(t, int32(10), got.GetPageSize())
	require.Equal(t, "tok", got.GetPageToken())
	since := got.GetSince().AsTime()
	require.False(t, since.Before(before.Add(-2*time.Hour).Truncate(time.Microsecond)), "since %s", since)
	require.False(t, since.After(after.Add(-2*time.Hour)), "since %s", since)
	require.Equal(t, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), got.GetUntil().AsTime())

	f.got = nil
	require.NoError(t, runCLI(alertsCommand, addr, "list"))
	requireProto(t, &monitorv1.ListAlertsRequest{PageSize: 50}, f.got)

	f.got = nil
	require.ErrorContains(t, runCLI(alertsCommand, addr, "list", "--state", "open"), "--state")
	require.ErrorContains(t, runCLI(alertsCommand, addr, "list", "--since", "yesterday"), "--since")
	require.Nil(t, f.got, "nothing is sent")
}

func TestParseInstant(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"90m", now.Add(-90 * time.Minute)},
		{"1h30m", now.Add(-90 * time.Minute)},
		{"2d", now.Add(-48 * time.Hour)},
		{"2026-03-01T00:00:00Z", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"2026-03-01T09:00:00+09:00", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		got, err := parseInstant(tt.in, now)
		require.NoError(t, err, tt.in)
		require.True(t, tt.want.Equal(got), "%s: got %s, want %s", tt.in, got, tt.want)
	}
	for _, bad := range []string{"", "0s", "-1h", "0d", "-2d", "d", "1.5d", "99999999999d", "yesterday", "2026-03-01"} {
		_, err := parseInstant(bad, now)
		require.Error(t, err, "%q", bad)
	}
}

// FuzzParseInstant checks parseInstant never panics and never returns a
// time after now for a duration.
func FuzzParseInstant(f *testing.F) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"90m", "2d", "2026-03-01T00:00:00Z", "", "-1h", "99999999999d", "1e9d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseInstant(s, now)
		if err != nil {
			return
		}
		if _, perr := time.Parse(time.RFC3339, s); perr != nil {
			require.True(t, got.Before(now), "%q gave %s", s, got)
		}
	})
}

func TestAlertState(t *testing.T) {
	t.Parallel()
	firing := &typesv1.Alert{Status: typesv1.AlertStatus_ALERT_STATUS_FIRING}
	resolved := &typesv1.Alert{Status: typesv1.AlertStatus_ALERT_STATUS_RESOLVED}
	require.Equal(t, "firing", alertState(&typesv1.IncidentAlert{Alert: firing, IncidentId: "i"}))
	require.Equal(t, "resolved", alertState(&typesv1.IncidentAlert{Alert: resolved, IncidentId: "i"}))
	require.Equal(t, "silenced", alertState(&typesv1.IncidentAlert{Alert: firing, SilencedBy: "s"}))
	require.Equal(t, "inhibited", alertState(&typesv1.IncidentAlert{Alert: firing, InhibitedBy: "node-down", InhibitRule: "r"}))
	require.Equal(t, "node-down (rule r)", inhibitedBy(&typesv1.IncidentAlert{Alert: firing, InhibitedBy: "node-down", InhibitRule: "r"}))
	held := &typesv1.DeployHold{DeploymentId: "d1", App: "shop", Revision: 7}
	require.Equal(t, "held", alertState(&typesv1.IncidentAlert{Alert: firing, HeldBy: held}))
	require.Equal(t, "held", alertState(&typesv1.IncidentAlert{Alert: resolved, HeldBy: held}))
	// Released into an incident: its state is the incident's; the deploy
	// stays as evidence.
	require.Equal(t, "firing", alertState(&typesv1.IncidentAlert{Alert: firing, IncidentId: "i", HeldBy: held}))
	require.Equal(t, "deploy d1", mutedBy(&typesv1.IncidentAlert{Alert: firing, IncidentId: "i", HeldBy: held}))
	require.Equal(t, "s", mutedBy(&typesv1.IncidentAlert{Alert: firing, SilencedBy: "s"}))
}

// An incident opened by alerts a rollout held names that rollout once,
// however many of its alerts it held; one without held alerts names none.
func TestPrintIncidentNamesTheDeploy(t *testing.T) {
	t.Parallel()
	firing := &typesv1.Alert{Fingerprint: "f", Status: typesv1.AlertStatus_ALERT_STATUS_FIRING}
	held := &typesv1.DeployHold{DeploymentId: "d1", App: "shop", Revision: 7, Outcome: "rolled_back", Until: timestamppb.Now()}
	var b strings.Builder
	printIncident(&b, &typesv1.Incident{Id: "i", Alerts: []*typesv1.IncidentAlert{
		{Alert: firing, HeldBy: held}, {Alert: firing, HeldBy: held}, {Alert: firing},
	}})
	require.Equal(t, 1, strings.Count(b.String(), "Deploy:"), b.String())
	require.Contains(t, b.String(), "d1 of shop, revision 7 (rolled back)")
	b.Reset()
	printIncident(&b, &typesv1.Incident{Id: "i", Alerts: []*typesv1.IncidentAlert{{Alert: firing}}})
	require.NotContains(t, b.String(), "Deploy:")
}
