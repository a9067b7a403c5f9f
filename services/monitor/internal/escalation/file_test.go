package escalation_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/status"

	"github.com/vigil-ops/vigil/pkg/db"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/monitor/internal/escalation"
	"github.com/vigil-ops/vigil/services/monitor/internal/monitortest"
)

const goodFile = `
priority_rules:
  - matchers: ['alertname="PaymentsDown"']
    priority: P0
  - app: shop
    namespace: prod
    priority: P1
response_targets:
  P0: 5m
  P1: 10m
  P2: 2h
schedules:
  - name: payments
    team: payments
    zone: Asia/Taipei
    layers:
      - participants: [alice, bob]
        rotation_days: 7
        handoff: "09:00"
        start: "2026-01-05"
    overrides:
      - who: carol
        start: 2026-12-24T18:00:00+08:00
        end: 2026-12-25T09:00:00+08:00
policies:
  - name: payments
    team: payments
    priorities: [P0, P1]
    repeat: 1
    steps:
      - schedules: [payments]
      - delay: 10m
        users: [dave]
        channels: [payments-chat]
`

func TestParseFile(t *testing.T) {
	t.Parallel()
	c, err := escalation.ParseFile([]byte(goodFile))
	require.NoError(t, err)
	require.Len(t, c.Rules.GetRules(), 2)
	require.Equal(t, typesv1.Priority_PRIORITY_P0, c.Rules.GetRules()[0].GetPriority())
	require.Len(t, c.Rules.GetTargets(), 3)
	require.Equal(t, 10*time.Minute, c.Rules.GetTargets()[1].GetTarget().AsDuration())
	require.Len(t, c.Schedules, 1)
	require.Equal(t, "carol", c.Schedules[0].GetOverrides()[0].GetWho())
	require.Len(t, c.Policies, 1)
	require.Equal(t, 10*time.Minute, c.Policies[0].GetSteps()[1].GetDelay().AsDuration())
	require.Equal(t, []typesv1.Priority{typesv1.Priority_PRIORITY_P0, typesv1.Priority_PRIORITY_P1}, c.Policies[0].GetPriorities())
}

func TestParseFileRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, file string
		fields     []string
	}{
		{
			"bad matcher and priority", `priority_rules: [{matchers: ['a=~'], priority: P7}]`,
			[]string{"priority_rules[0].priority", "priority_rules[0].matchers[0]"},
		},
		{
			"bad targets", `response_targets: {P1: soon, P9: 1m, P2: 900h}`,
			[]string{"response_targets.P1", "response_targets.P9", "response_targets.P2"},
		},
		{
			"bad schedule", `schedules: [{name: Pay, team: payments, zone: Mars/Olympus, layers: [{participants: [a], rotation_days: 0, handoff: "9", start: "2026-01-05"}]}]`,
			[]string{"schedules[0].name", "schedules[0].zone", "schedules[0].layers[0].rotation_days", "schedules[0].layers[0].handoff"},
		},
		{
			"bad policy", `policies: [{name: p, steps: [{delay: 5x}, {users: [a]}], priorities: [P5]}, {name: p, steps: [{users: [b], delay: 1m}]}]`,
			[]string{"policies[0].priorities[0]", "policies[0].steps[0].delay", "policies[0].steps[0].schedules", "policies[0].steps[1].delay", "policies[1].name"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := escalation.ParseFile([]byte(tc.file))
			require.Error(t, err)
			var fields []string
			for _, v := range server.Violations(status.Convert(err)) {
				fields = append(fields, v.Field)
			}
			require.Equal(t, tc.fields, fields)
		})
	}
	_, err := escalation.ParseFile([]byte("policy: []"))
	require.ErrorContains(t, err, "unknown field", "a typo is refused")
}

func TestApplyFile(t *testing.T) {
	t.Parallel()
	pool, _ := monitortest.Pool(t)
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "escalation.yaml")
	require.NoError(t, os.WriteFile(path, []byte(goodFile), 0o600))
	now := time.Now()
	// A schedule made through the API stays; one of the file replaces the
	// API's of the same name.
	require.NoError(t, db.InTx(ctx, pool, func(tx pgx.Tx) error {
		for _, name := range []string{"web", "payments"} {
			if _, err := escalation.Schedules.Put(ctx, tx, &monitorv1.OnCallSchedule{
				Name: name, Team: "web", Zone: "UTC",
				Layers: []*monitorv1.ScheduleLayer{{Participants: []string{"x"}, RotationDays: 1, Handoff: "09:00", Start: "2026-01-01"}},
			}, true, false, "api", now); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, escalation.ApplyFile(ctx, pool, path, now))
	ss, err := escalation.Schedules.List(ctx, pool, "*")
	require.NoError(t, err)
	require.Len(t, ss, 2)
	require.Equal(t, "payments", ss[0].GetTeam())
	require.True(t, ss[0].GetFromFile())
	require.False(t, ss[1].GetFromFile())
	rules, err := escalation.GetRules(ctx, pool)
	require.NoError(t, err)
	require.True(t, rules.GetFromFile())

	// What the file defines, the API does not change.
	err = db.InTx(ctx, pool, func(tx pgx.Tx) error {
		_, err := escalation.Policies.Put(ctx, tx, &monitorv1.EscalationPolicy{Name: "payments", Team: "payments"}, false, false, "api", now)
		return err
	})
	require.ErrorIs(t, err, escalation.ErrFromFile)
	err = db.InTx(ctx, pool, func(tx pgx.Tx) error { return escalation.Schedules.Delete(ctx, tx, "payments") })
	require.ErrorIs(t, err, escalation.ErrFromFile)
	p, err := escalation.Policies.Get(ctx, pool, "payments")
	require.NoError(t, err)
	require.Len(t, p.GetSteps(), 2, "unchanged")

	// A file without the policy and the rules takes them away.
	require.NoError(t, os.WriteFile(path, []byte(`schedules: []`), 0o600))
	require.NoError(t, escalation.ApplyFile(ctx, pool, path, now))
	_, err = escalation.Policies.Get(ctx, pool, "payments")
	require.ErrorIs(t, err, escalation.ErrNotFound)
	rules, err = escalation.GetRules(ctx, pool)
	require.NoError(t, err)
	require.Empty(t, rules.GetRules())
	ss, err = escalation.Schedules.List(ctx, pool, "*")
	require.NoError(t, err)
	require.Len(t, ss, 1)
	require.Equal(t, "web", ss[0].GetName())

	// A bad file changes nothing.
	require.NoError(t, os.WriteFile(path, []byte(`policies: [{name: BAD}]`), 0o600))
	require.Error(t, escalation.ApplyFile(ctx, pool, path, now))
	ss, err = escalation.Schedules.List(ctx, pool, "*")
	require.NoError(t, err)
	require.Len(t, ss, 1)
}
