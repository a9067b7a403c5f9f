package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// fakeEscalation records what the CLI sends: every request, in order.
type fakeEscalation struct {
	monitorv1.UnimplementedOnCallServiceServer
	monitorv1.UnimplementedEscalationServiceServer
	monitorv1.UnimplementedIncidentServiceServer
	got []proto.Message
	// teams that have a default schedule; others are NotFound.
	teams map[string]bool
}

func (f *fakeEscalation) WhoIsOnCall(_ context.Context, r *monitorv1.WhoIsOnCallRequest) (*monitorv1.WhoIsOnCallResponse, error) {
	f.got = append(f.got, r)
	if r.GetTeam() != "" && !f.teams[r.GetTeam()] {
		return nil, status.Error(codes.NotFound, "no such team")
	}
	return &monitorv1.WhoIsOnCallResponse{Schedule: "x", User: "olga", Zone: "UTC"}, nil
}

func (f *fakeEscalation) AddOverride(_ context.Context, r *monitorv1.AddOverrideRequest) (*monitorv1.AddOverrideResponse, error) {
	f.got = append(f.got, r)
	return &monitorv1.AddOverrideResponse{Schedule: &monitorv1.OnCallSchedule{Name: "payments"}}, nil
}

func (f *fakeEscalation) UpdatePolicy(_ context.Context, r *monitorv1.UpdatePolicyRequest) (*monitorv1.UpdatePolicyResponse, error) {
	f.got = append(f.got, r)
	return nil, status.Error(codes.NotFound, "no such policy")
}

func (f *fakeEscalation) CreatePolicy(_ context.Context, r *monitorv1.CreatePolicyRequest) (*monitorv1.CreatePolicyResponse, error) {
	f.got = append(f.got, r)
	return &monitorv1.CreatePolicyResponse{Policy: r.GetPolicy()}, nil
}

func (f *fakeEscalation) SnoozeIncident(_ context.Context, r *monitorv1.SnoozeIncidentRequest) (*monitorv1.SnoozeIncidentResponse, error) {
	f.got = append(f.got, r)
	return &monitorv1.SnoozeIncidentResponse{}, nil
}

func (f *fakeEscalation) SetIncidentPriority(_ context.Context, r *monitorv1.SetIncidentPriorityRequest) (*monitorv1.SetIncidentPriorityResponse, error) {
	f.got = append(f.got, r)
	return &monitorv1.SetIncidentPriorityResponse{Incident: &typesv1.Incident{Id: r.GetId()}}, nil
}

func startEscalation(t *testing.T) (*fakeEscalation, string) {
	t.Helper()
	t.Setenv("VIGIL_TOKEN", "test-token")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakeEscalation{teams: map[string]bool{"payments": true}}
	srv := grpc.NewServer()
	monitorv1.RegisterOnCallServiceServer(srv, f)
	monitorv1.RegisterEscalationServiceServer(srv, f)
	monitorv1.RegisterIncidentServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return f, lis.Addr().String()
}

func TestOnCallWho(t *testing.T) {
	f, addr := startEscalation(t)
	require.NoError(t, runCLI(oncallCommand, addr, "who", "payments", "--at", "2026-03-29T09:30:00+02:00"))
	requireProto(t, &monitorv1.WhoIsOnCallRequest{Team: "payments", At: timestamppb.New(time.Date(2026, 3, 29, 7, 30, 0, 0, time.UTC))}, f.got[0])

	// Not a team with a schedule: the schedule of that name.
	f.got = nil
	require.NoError(t, runCLI(oncallCommand, addr, "who", "db-nights"))
	require.Len(t, f.got, 2)
	require.Equal(t, "db-nights", f.got[1].(*monitorv1.WhoIsOnCallRequest).GetSchedule())

	f.got = nil
	require.ErrorContains(t, runCLI(oncallCommand, addr, "who", "payments", "--at", "tomorrow"), "--at")
	require.Empty(t, f.got, "nothing is sent")
}

func TestOnCallOverride(t *testing.T) {
	f, addr := startEscalation(t)
	require.NoError(t, runCLI(oncallCommand, addr, "override", "payments", "--user", "olga",
		"--from", "2026-12-24T18:00:00+08:00", "--to", "2026-12-25T09:00:00+08:00"))
	requireProto(t, &monitorv1.AddOverrideRequest{Team: "payments", Override: &monitorv1.ScheduleOverride{
		Who: "olga", Start: timestamppb.New(time.Date(2026, 12, 24, 10, 0, 0, 0, time.UTC)), End: timestamppb.New(time.Date(2026, 12, 25, 1, 0, 0, 0, time.UTC)),
	}}, f.got[0])
}

func TestEscalationPoliciesApply(t *testing.T) {
	f, addr := startEscalation(t)
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
name: payments
team: payments
priorities: [P0, P1]
repeat: 2
steps:
  - schedules: [payments]
  - delay: 10m
    users: [dave]
    channels: [payments-chat]
`), 0o600))
	require.NoError(t, runCLI(escalationCommand, addr, "policies", "apply", "-f", path))
	want := &monitorv1.EscalationPolicy{
		Name: "payments", Team: "payments", Repeat: 2,
		Priorities: []typesv1.Priority{typesv1.Priority_PRIORITY_P0, typesv1.Priority_PRIORITY_P1},
		Steps: []*monitorv1.EscalationStep{
			{Schedules: []string{"payments"}},
			{Delay: durationpb.New(10 * time.Minute), Users: []string{"dave"}, Channels: []string{"payments-chat"}},
		},
	}
	require.Len(t, f.got, 2, "update, then create as it does not exist")
	requireProto(t, &monitorv1.UpdatePolicyRequest{Policy: want}, f.got[0])
	requireProto(t, &monitorv1.CreatePolicyRequest{Policy: want}, f.got[1])
}

func TestIncidentsSnoozeAndPriority(t *testing.T) {
	f, addr := startEscalation(t)
	require.NoError(t, runCLI(incidentsCommand, addr, "snooze", noSuchIncident, "--for", "45m"))
	requireProto(t, &monitorv1.SnoozeIncidentRequest{Id: noSuchIncident, Duration: durationpb.New(45 * time.Minute)}, f.got[0])
	require.NoError(t, runCLI(incidentsCommand, addr, "priority", noSuchIncident, "p0"))
	requireProto(t, &monitorv1.SetIncidentPriorityRequest{Id: noSuchIncident, Priority: typesv1.Priority_PRIORITY_P0}, f.got[1])
	require.ErrorContains(t, runCLI(incidentsCommand, addr, "priority", noSuchIncident, "P5"), "P0, P1, P2 or P3")
	require.Len(t, f.got, 2, "nothing is sent")
}

const noSuchIncident = "01a20236-f568-7af1-9546-d3f52f62c45a"
