package grpcapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/auth"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/monitor/internal/escalation"
	"github.com/vigil-ops/vigil/services/monitor/internal/grpcapi"
	"github.com/vigil-ops/vigil/services/monitor/internal/monitortest"
)

func operatorOf(team string) context.Context {
	return auth.WithPrincipal(context.Background(), auth.Principal{Kind: auth.KindUser, Name: "op-" + team, Role: auth.RoleOperator, Teams: []string{team}})
}

func fields(err error) []string {
	var out []string
	for _, v := range server.Violations(status.Convert(err)) {
		out = append(out, v.Field)
	}
	return out
}

func daily(team, zone, handoff, start string, who ...string) *monitorv1.OnCallSchedule {
	return &monitorv1.OnCallSchedule{
		Name: team, Team: team, Zone: zone,
		Layers: []*monitorv1.ScheduleLayer{{Participants: who, RotationDays: 1, Handoff: handoff, Start: start}},
	}
}

// Berlin moves its clocks from 02:00 to 03:00 on 29 March 2026: the 09:00
// hand-off is at 08:00 UTC before and 07:00 UTC after, and the shift
// across the change lasts 23 hours.
func TestWhoIsOnCallAcrossDST(t *testing.T) {
	t.Parallel()
	pool, _ := monitortest.Pool(t)
	api := grpcapi.NewOnCallServer(pool, escalation.SystemClock{})
	ctx := operatorOf("payments")
	_, err := api.CreateSchedule(ctx, &monitorv1.CreateScheduleRequest{
		Schedule: daily("payments", "Europe/Berlin", "09:00", "2026-03-27", "anna", "ben", "cleo"),
	})
	require.NoError(t, err)

	at := func(s string) *timestamppb.Timestamp {
		tt, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return timestamppb.New(tt)
	}
	for _, tc := range []struct {
		at, who, start, end string
	}{
		{"2026-03-28T07:59:00Z", "anna", "2026-03-27T08:00:00Z", "2026-03-28T08:00:00Z"},
		{"2026-03-29T06:30:00Z", "ben", "2026-03-28T08:00:00Z", "2026-03-29T07:00:00Z"},
		{"2026-03-29T07:00:00Z", "cleo", "2026-03-29T07:00:00Z", "2026-03-30T07:00:00Z"},
	} {
		r, err := api.WhoIsOnCall(ctx, &monitorv1.WhoIsOnCallRequest{Team: "payments", At: at(tc.at)})
		require.NoError(t, err)
		require.Equal(t, tc.who, r.GetUser(), tc.at)
		require.Equal(t, at(tc.start).AsTime(), r.GetShiftStart().AsTime(), tc.at)
		require.Equal(t, at(tc.end).AsTime(), r.GetShiftEnd().AsTime(), tc.at)
		require.Equal(t, "payments", r.GetSchedule())
		require.Equal(t, "Europe/Berlin", r.GetZone())
	}

	// "I take tonight": an override wins over the rotation.
	_, err = api.AddOverride(ctx, &monitorv1.AddOverrideRequest{Team: "payments", Override: &monitorv1.ScheduleOverride{
		Who: "dora", Start: at("2026-03-29T18:00:00Z"), End: at("2026-03-30T06:00:00Z"),
	}})
	require.NoError(t, err)
	shifts, err := api.ListShifts(ctx, &monitorv1.ListShiftsRequest{Schedule: "payments", From: at("2026-03-29T00:00:00Z"), To: at("2026-03-30T12:00:00Z")})
	require.NoError(t, err)
	var got []string
	for _, s := range shifts.GetShifts() {
		got = append(got, s.GetUser()+" "+s.GetStart().AsTime().Format(time.RFC3339))
	}
	require.Equal(t, []string{
		"ben 2026-03-29T00:00:00Z", "cleo 2026-03-29T07:00:00Z", "dora 2026-03-29T18:00:00Z",
		"cleo 2026-03-30T06:00:00Z", "anna 2026-03-30T07:00:00Z",
	}, got)
}

func TestScheduleRefusals(t *testing.T) {
	t.Parallel()
	pool, _ := monitortest.Pool(t)
	api := grpcapi.NewOnCallServer(pool, escalation.SystemClock{})
	teamA, teamB := operatorOf("team-a"), operatorOf("team-b")
	_, err := api.CreateSchedule(teamB, &monitorv1.CreateScheduleRequest{Schedule: daily("team-b", "UTC", "09:00", "2026-01-01", "bob")})
	require.NoError(t, err)
	before, err := api.GetSchedule(teamB, &monitorv1.GetScheduleRequest{Name: "team-b"})
	require.NoError(t, err)

	// Bad input: every field named, nothing stored.
	bad := daily("team-a", "Mars/Olympus", "9am", "2026-01-01", "")
	bad.Overrides = []*monitorv1.ScheduleOverride{{Who: "x", Start: timestamppb.Now(), End: timestamppb.New(time.Now().Add(-time.Hour))}}
	_, err = api.CreateSchedule(teamA, &monitorv1.CreateScheduleRequest{Schedule: bad})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Equal(t, []string{"schedule.zone", "schedule.layers[0].participants[0]", "schedule.layers[0].handoff", "schedule.overrides[0].end"}, fields(err))
	_, err = api.AddOverride(teamB, &monitorv1.AddOverrideRequest{Schedule: "team-b", Override: &monitorv1.ScheduleOverride{Who: "bob"}})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Equal(t, []string{"override.start", "override.end"}, fields(err))
	list, err := api.ListSchedules(teamA, &monitorv1.ListSchedulesRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetSchedules(), 1, "nothing stored")

	// team-a's operator cannot touch team-b's schedule, even by naming
	// their own team in it.
	taken := daily("team-b", "UTC", "09:00", "2026-01-01", "mallory")
	taken.Team = "team-a"
	_, err = api.UpdateSchedule(teamA, &monitorv1.UpdateScheduleRequest{Schedule: taken})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	_, err = api.CreateSchedule(teamA, &monitorv1.CreateScheduleRequest{Schedule: daily("team-b", "UTC", "09:00", "2026-01-01", "mallory")})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	_, err = api.AddOverride(teamA, &monitorv1.AddOverrideRequest{Schedule: "team-b", Override: &monitorv1.ScheduleOverride{
		Who: "mallory", Start: timestamppb.Now(), End: timestamppb.New(time.Now().Add(time.Hour)),
	}})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	_, err = api.DeleteSchedule(teamA, &monitorv1.DeleteScheduleRequest{Name: "team-b"})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	after, err := api.GetSchedule(teamA, &monitorv1.GetScheduleRequest{Name: "team-b"})
	require.NoError(t, err)
	require.Equal(t, before.GetSchedule().String(), after.GetSchedule().String(), "unchanged; and readable by every team")

	_, err = api.CreateSchedule(teamB, &monitorv1.CreateScheduleRequest{Schedule: daily("team-b", "UTC", "09:00", "2026-01-01", "bob")})
	require.Equal(t, codes.AlreadyExists, status.Code(err))
	_, err = api.WhoIsOnCall(teamA, &monitorv1.WhoIsOnCallRequest{Team: "team-c"})
	require.Equal(t, codes.NotFound, status.Code(err))
	_, err = api.WhoIsOnCall(teamA, &monitorv1.WhoIsOnCallRequest{})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}

func TestPolicyAndRulesRefusals(t *testing.T) {
	t.Parallel()
	pool, _ := monitortest.Pool(t)
	api := grpcapi.NewEscalationServer(pool, escalation.SystemClock{})
	teamA := operatorOf("team-a")
	_, err := api.CreatePolicy(teamA, &monitorv1.CreatePolicyRequest{Policy: &monitorv1.EscalationPolicy{
		Name: "a", Team: "team-a", Repeat: 99,
		Steps: []*monitorv1.EscalationStep{{}, {Users: []string{"x"}, Delay: durationpb.New(time.Second)}},
	}})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Equal(t, []string{"policy.steps[0].schedules", "policy.steps[1].delay", "policy.repeat"}, fields(err))
	_, err = api.CreatePolicy(teamA, &monitorv1.CreatePolicyRequest{Policy: &monitorv1.EscalationPolicy{
		Name: "global", Steps: []*monitorv1.EscalationStep{{Users: []string{"x"}}},
	}})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "a global policy is for admins and the default team")
	_, err = api.SetPriorityRules(teamA, &monitorv1.SetPriorityRulesRequest{Rules: &monitorv1.PriorityRules{
		Rules: []*monitorv1.PriorityRule{{Matchers: []string{"=~"}}},
	}})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Equal(t, []string{"rules.rules[0].matchers[0]", "rules.rules[0].priority"}, fields(err))
	list, err := api.ListPolicies(teamA, &monitorv1.ListPoliciesRequest{})
	require.NoError(t, err)
	require.Empty(t, list.GetPolicies())
	rules, err := api.GetPriorityRules(teamA, &monitorv1.GetPriorityRulesRequest{})
	require.NoError(t, err)
	require.Empty(t, rules.GetRules().GetRules())
}
