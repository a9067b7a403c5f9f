package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
)

const (
	testRepairID   = "0198a0a0-0000-7000-8000-00000000000a"
	testIncidentID = "01a20236-f568-7af1-9546-d3f52f62c45a"
)

// fakeRepair is the gateway's RepairService: it records the requests the
// CLI sends, with the token they carry, and answers with the repair and
// guardrails below, or with err.
type fakeRepair struct {
	repairv1.UnimplementedRepairServiceServer

	mu    sync.Mutex
	got   proto.Message
	token string
	err   error

	repair         *repairv1.Repair
	set, effective *repairv1.Guardrails
}

func (f *fakeRepair) record(ctx context.Context, req proto.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = proto.Clone(req)
	if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) > 0 {
		f.token = v[0]
	}
	return f.err
}

// take returns the last request and forgets it.
func (f *fakeRepair) take() proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	got := f.got
	f.got = nil
	return got
}

func (f *fakeRepair) ListRepairs(ctx context.Context, r *repairv1.ListRepairsRequest) (*repairv1.ListRepairsResponse, error) {
	if err := f.record(ctx, r); err != nil {
		return nil, err
	}
	listed := proto.CloneOf(f.repair)
	listed.Steps = nil
	return &repairv1.ListRepairsResponse{Repairs: []*repairv1.Repair{listed}, NextPageToken: "next-page"}, nil
}

func (f *fakeRepair) GetRepair(ctx context.Context, r *repairv1.GetRepairRequest) (*repairv1.GetRepairResponse, error) {
	if err := f.record(ctx, r); err != nil {
		return nil, err
	}
	return &repairv1.GetRepairResponse{Repair: f.repair}, nil
}

func (f *fakeRepair) ApproveRepair(ctx context.Context, r *repairv1.ApproveRepairRequest) (*repairv1.ApproveRepairResponse, error) {
	if err := f.record(ctx, r); err != nil {
		return nil, err
	}
	rp := proto.CloneOf(f.repair)
	rp.Status, rp.DecidedBy, rp.DecidedVia, rp.Steps = repairv1.RepairStatus_REPAIR_STATUS_QUEUED, "user:alice", "api", nil
	return &repairv1.ApproveRepairResponse{Repair: rp}, nil
}

func (f *fakeRepair) RejectRepair(ctx context.Context, r *repairv1.RejectRepairRequest) (*repairv1.RejectRepairResponse, error) {
	if err := f.record(ctx, r); err != nil {
		return nil, err
	}
	rp := proto.CloneOf(f.repair)
	rp.Status, rp.DecidedBy, rp.DecidedVia, rp.Steps = repairv1.RepairStatus_REPAIR_STATUS_REJECTED, "user:alice", "api", nil
	return &repairv1.RejectRepairResponse{Repair: rp}, nil
}

func (f *fakeRepair) PostponeRepair(ctx context.Context, r *repairv1.PostponeRepairRequest) (*repairv1.PostponeRepairResponse, error) {
	if err := f.record(ctx, r); err != nil {
		return nil, err
	}
	rp := proto.CloneOf(f.repair)
	rp.SnoozedUntil, rp.SnoozedBy, rp.Steps = timestamppb.New(time.Date(2026, 5, 1, 12, 30, 0, 0, time.UTC)), "user:alice", nil
	return &repairv1.PostponeRepairResponse{Repair: rp}, nil
}

func (f *fakeRepair) GetGuardrails(ctx context.Context, r *repairv1.GetGuardrailsRequest) (*repairv1.GetGuardrailsResponse, error) {
	if err := f.record(ctx, r); err != nil {
		return nil, err
	}
	return &repairv1.GetGuardrailsResponse{Set: f.set, Effective: f.effective}, nil
}

func (f *fakeRepair) SetGuardrails(ctx context.Context, r *repairv1.SetGuardrailsRequest) (*repairv1.SetGuardrailsResponse, error) {
	if err := f.record(ctx, r); err != nil {
		return nil, err
	}
	eff := proto.CloneOf(f.effective)
	proto.Merge(eff, r.GetGuardrails())
	return &repairv1.SetGuardrailsResponse{Set: r.GetGuardrails(), Effective: eff}, nil
}

// startRepair serves a fakeRepair on loopback, authenticated with
// VIGIL_TOKEN: tests using it set the environment and are not parallel.
func startRepair(t *testing.T) (*fakeRepair, string) {
	t.Helper()
	t.Setenv("VIGIL_TOKEN", "test-token")
	t.Setenv("VIGIL_TOKEN_FILE", "")
	created := time.Now().Add(-5*time.Minute - 10*time.Second)
	at := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(created.Add(d)) }
	f := &fakeRepair{
		repair: &repairv1.Repair{
			Id: testRepairID, IncidentId: testIncidentID, AnalysisId: "0198a0a0-0000-7000-8000-0000000000a1",
			Proposal: &typesv1.RepairProposal{
				Action: typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT,
				Target: &typesv1.ResourceRef{Cluster: "prod", Namespace: "shop", Kind: "Deployment", Name: "checkout"},
				Params: &typesv1.RepairProposal_Scale{Scale: &typesv1.ScaleParams{Replicas: 4}},
			},
			Status:         repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL,
			Decision:       repairv1.Decision_DECISION_NEEDS_APPROVAL,
			DecisionReason: "confidence 0.72 is below 0.85; risk medium is above low",
			Reasons:        []string{"confidence 0.72 is below 0.85", "risk medium is above low"},
			Confidence:     0.72, Risk: typesv1.Risk_RISK_MEDIUM,
			App: "shop", Team: "payments", PodsAffected: 2, ExpectedDowntime: durationpb.New(30 * time.Second),
			ExpireTime: at(30 * time.Minute), CreateTime: at(0), UpdateTime: at(time.Second),
			DryRun: true, DryRunResult: "kind: Deployment\nspec:\n  replicas: 4\n",
			Summary: "checkout is saturated", Engine: "rules",
			Steps: []*repairv1.RepairStep{
				{Time: at(0), Kind: repairv1.StepKind_STEP_KIND_PROPOSED, Actor: "repair", Message: "scale_deployment to 4 replicas"},
				{Time: at(time.Second), Kind: repairv1.StepKind_STEP_KIND_DECIDED, Actor: "repair", Message: "needs approval"},
				{Time: at(time.Minute), Kind: repairv1.StepKind_STEP_KIND_REFUSED, Actor: "user:bob", Channel: "telegram", Message: "not an operator of payments"},
			},
		},
		set: &repairv1.Guardrails{
			Scope: "app/shop", MinConfidence: proto.Float64(0.9), Cooldown: durationpb.New(15 * time.Minute),
			Deny: []typesv1.RepairAction{typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT}, Auto: proto.Bool(true),
		},
		effective: &repairv1.Guardrails{
			Scope: "app/shop", MaxAutoPerHour: proto.Int32(5), MaxAutoPerResource: proto.Int32(3),
			Cooldown: durationpb.New(15 * time.Minute), MinConfidence: proto.Float64(0.9), MaxAutoRisk: typesv1.Risk_RISK_LOW,
			MaxPodsAffected: proto.Int32(3), MinHealthyReplicas: proto.Int32(1),
			Deny: []typesv1.RepairAction{
				typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT, typesv1.RepairAction_REPAIR_ACTION_DELETE_NAMESPACE,
				typesv1.RepairAction_REPAIR_ACTION_DELETE_PVC, typesv1.RepairAction_REPAIR_ACTION_DELETE_SECRET,
				typesv1.RepairAction_REPAIR_ACTION_DROP_DATABASE,
			},
			DryRun: proto.Bool(false), Paused: proto.Bool(false), ApprovalTtl: durationpb.New(30 * time.Minute),
			UndoOnFailure: proto.Bool(true), VerifyWindow: durationpb.New(5 * time.Minute), MaxReplicas: proto.Int32(10),
			MaxMemoryBytes: proto.Int64(4 << 30), Auto: proto.Bool(true),
		},
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	repairv1.RegisterRepairServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return f, lis.Addr().String()
}

func TestRepairsList(t *testing.T) {
	f, addr := startRepair(t)
	out, err := runAccess(t, repairsCommand, addr, "", "list", "--incident", testIncidentID, "--status", "pending", "--limit", "10", "--page-token", "tok")
	require.NoError(t, err)
	require.Equal(t, "Bearer test-token", f.token)
	requireProto(t, &repairv1.ListRepairsRequest{
		IncidentId: testIncidentID, Status: repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL, PageSize: 10, PageToken: "tok",
	}, f.take())
	require.Regexp(t, `ID\s+INCIDENT\s+ACTION\s+TARGET\s+DECISION\s+STATUS\s+RISK\s+CONFIDENCE\s+AGE\n`, out.stdout)
	require.Regexp(t, testRepairID+`\s+01a20236\s+scale_deployment to 4 replicas\s+Deployment shop/checkout\s+needs-approval\s+pending\s+medium\s+0\.72\s+5m\n`, out.stdout)
	require.Contains(t, out.stdout, "More: --page-token next-page")

	// The defaults: every status, 50 a page.
	_, err = runAccess(t, repairsCommand, addr, "", "list")
	require.NoError(t, err)
	requireProto(t, &repairv1.ListRepairsRequest{PageSize: 50}, f.take())

	for name, want := range map[string]repairv1.RepairStatus{
		"dry-run":          repairv1.RepairStatus_REPAIR_STATUS_DRY_RUN,
		"DRY_RUN":          repairv1.RepairStatus_REPAIR_STATUS_DRY_RUN,
		"PENDING_APPROVAL": repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL,
		"verifying":        repairv1.RepairStatus_REPAIR_STATUS_VERIFYING,
		"expired":          repairv1.RepairStatus_REPAIR_STATUS_EXPIRED,
	} {
		_, err = runAccess(t, repairsCommand, addr, "", "list", "--status", name)
		require.NoError(t, err, name)
		require.Equal(t, want, f.take().(*repairv1.ListRepairsRequest).GetStatus(), name)
	}

	for _, bad := range []string{"done", "unspecified", "pending,failed"} {
		_, err = runAccess(t, repairsCommand, addr, "", "list", "--status", bad)
		require.ErrorContains(t, err, "--status", bad)
		require.ErrorContains(t, err, "dry-run", "the error lists the statuses")
		require.Nil(t, f.take(), "%s: nothing is sent", bad)
	}
}

func TestRepairsListJSON(t *testing.T) {
	_, addr := startRepair(t)
	out, err := runAccess(t, repairsCommand, addr, "", "list", "-o", "json")
	require.NoError(t, err)
	var got struct {
		Repairs []struct {
			ID       string `json:"id"`
			Incident string `json:"incident_id"`
			Status   string `json:"status"`
			Decision string `json:"decision"`
			Proposal struct {
				Action string `json:"action"`
				Scale  struct {
					Replicas int `json:"replicas"`
				} `json:"scale"`
			} `json:"proposal"`
		} `json:"repairs"`
		Next string `json:"next_page_token"`
	}
	require.NoError(t, json.Unmarshal([]byte(out.stdout), &got), out.stdout)
	require.Len(t, got.Repairs, 1)
	require.Equal(t, testRepairID, got.Repairs[0].ID)
	require.Equal(t, testIncidentID, got.Repairs[0].Incident)
	require.Equal(t, "REPAIR_STATUS_PENDING_APPROVAL", got.Repairs[0].Status)
	require.Equal(t, "DECISION_NEEDS_APPROVAL", got.Repairs[0].Decision)
	require.Equal(t, "REPAIR_ACTION_SCALE_DEPLOYMENT", got.Repairs[0].Proposal.Action)
	require.Equal(t, 4, got.Repairs[0].Proposal.Scale.Replicas)
	require.Equal(t, "next-page", got.Next)
}

func TestRepairsGet(t *testing.T) {
	f, addr := startRepair(t)
	out, err := runAccess(t, repairsCommand, addr, "", "get", testRepairID)
	require.NoError(t, err)
	requireProto(t, &repairv1.GetRepairRequest{Id: testRepairID}, f.take())
	for _, want := range []string{
		`ID:\s+` + testRepairID + `\n`,
		`Incident:\s+` + testIncidentID + `\n`,
		`Analysis:\s+0198a0a0-0000-7000-8000-0000000000a1 \(rules\)\n`,
		`Summary:\s+checkout is saturated\n`,
		`Action:\s+scale_deployment\n`,
		`Target:\s+Deployment shop/checkout \(cluster prod\)\n`,
		`Params:\s+replicas=4\n`,
		`Status:\s+pending\n`,
		`Decision:\s+needs-approval\n`,
		`Reasons:\s+- confidence 0\.72 is below 0\.85\n\s+- risk medium is above low\n`,
		`Risk:\s+medium\n`,
		`Confidence:\s+0\.72\n`,
		`Pods affected:\s+2\n`,
		`Expected downtime:\s+30s\n`,
		`App:\s+shop \(team payments\)\n`,
		`Expires:\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n`,
		`Dry run:\s+yes`,
		`Dry-run result:\n  kind: Deployment\n  spec:\n    replicas: 4\n`,
		`Timeline:\nTIME\s+KIND\s+ACTOR\s+CHANNEL\s+MESSAGE\n`,
		`\d\d:\d\d:\d\d\s+proposed\s+repair\s+-\s+scale_deployment to 4 replicas\n`,
		`\d\d:\d\d:\d\d\s+decided\s+repair\s+-\s+needs approval\n`,
		`\d\d:\d\d:\d\d\s+refused\s+user:bob\s+telegram\s+not an operator of payments\n`,
	} {
		require.Regexp(t, want, out.stdout)
	}
	require.NotContains(t, out.stdout, "Decided by:", "nobody answered yet")

	f.repair.DecidedBy, f.repair.DecidedVia, f.repair.DryRun, f.repair.DryRunResult = "user:alice", "slack", false, ""
	f.repair.Proposal.Params = &typesv1.RepairProposal_MemoryLimit{MemoryLimit: &typesv1.MemoryLimitParams{Container: "app", LimitBytes: 768 << 20}}
	out, err = runAccess(t, repairsCommand, addr, "", "get", testRepairID)
	require.NoError(t, err)
	require.Regexp(t, `Decided by:\s+user:alice via slack\n`, out.stdout)
	require.Regexp(t, `Params:\s+container=app limit=768Mi\n`, out.stdout)
	require.NotContains(t, out.stdout, "Dry run")

	out, err = runAccess(t, repairsCommand, addr, "", "get", testRepairID, "-o", "json")
	require.NoError(t, err)
	var got struct {
		Repair struct {
			ID      string   `json:"id"`
			Reasons []string `json:"reasons"`
			Steps   []struct {
				Kind    string `json:"kind"`
				Actor   string `json:"actor"`
				Channel string `json:"channel"`
			} `json:"steps"`
		} `json:"repair"`
	}
	require.NoError(t, json.Unmarshal([]byte(out.stdout), &got), out.stdout)
	require.Equal(t, testRepairID, got.Repair.ID)
	require.Len(t, got.Repair.Reasons, 2)
	require.Len(t, got.Repair.Steps, 3)
	require.Equal(t, "STEP_KIND_REFUSED", got.Repair.Steps[2].Kind)
	require.Equal(t, "telegram", got.Repair.Steps[2].Channel)
}

func TestRepairsApproveReject(t *testing.T) {
	f, addr := startRepair(t)
	out, err := runAccess(t, repairsCommand, addr, "", "approve", testRepairID)
	require.NoError(t, err)
	requireProto(t, &repairv1.ApproveRepairRequest{Id: testRepairID}, f.take())
	require.Equal(t, "Repair "+testRepairID+" approved: scale_deployment to 4 replicas on Deployment shop/checkout is queued.\n", out.stdout)

	out, err = runAccess(t, repairsCommand, addr, "", "reject", testRepairID, "--reason", "deploying a fix")
	require.NoError(t, err)
	requireProto(t, &repairv1.RejectRepairRequest{Id: testRepairID, Reason: "deploying a fix"}, f.take())
	require.Contains(t, out.stdout, "rejected: scale_deployment to 4 replicas on Deployment shop/checkout is rejected.")

	_, err = runAccess(t, repairsCommand, addr, "", "reject", testRepairID)
	require.NoError(t, err)
	requireProto(t, &repairv1.RejectRepairRequest{Id: testRepairID}, f.take())

	out, err = runAccess(t, repairsCommand, addr, "", "approve", testRepairID, "-o", "json")
	require.NoError(t, err)
	var got struct {
		Repair struct {
			Status    string `json:"status"`
			DecidedBy string `json:"decided_by"`
		} `json:"repair"`
	}
	require.NoError(t, json.Unmarshal([]byte(out.stdout), &got), out.stdout)
	require.Equal(t, "REPAIR_STATUS_QUEUED", got.Repair.Status)
	require.Equal(t, "user:alice", got.Repair.DecidedBy)
	requireProto(t, &repairv1.ApproveRepairRequest{Id: testRepairID}, f.take())

	_, err = runAccess(t, repairsCommand, addr, "", "approve", testRepairID, "--reason", "x")
	require.ErrorContains(t, err, "unknown flag: --reason", "only a rejection has a reason")
	_, err = runAccess(t, repairsCommand, addr, "", "approve")
	require.ErrorContains(t, err, "arg")
	require.Nil(t, f.take())
}

func TestRepairsLater(t *testing.T) {
	f, addr := startRepair(t)
	out, err := runAccess(t, repairsCommand, addr, "", "later", testRepairID)
	require.NoError(t, err)
	requireProto(t, &repairv1.PostponeRepairRequest{Id: testRepairID}, f.take())
	require.Contains(t, out.stdout, "Repair "+testRepairID+" snoozed until ")
	require.Contains(t, out.stdout, " by user:alice.")

	_, err = runAccess(t, repairsCommand, addr, "", "later", testRepairID, "--for", "10m")
	require.NoError(t, err)
	requireProto(t, &repairv1.PostponeRepairRequest{Id: testRepairID, For: durationpb.New(10 * time.Minute)}, f.take())
	_, err = runAccess(t, repairsCommand, addr, "", "later", testRepairID, "--for", "soon")
	require.ErrorContains(t, err, "--for")
	require.Nil(t, f.take())
}

// A refused answer says why, points at the timeline, and exits non-zero.
func TestRepairsAnswerRefused(t *testing.T) {
	f, addr := startRepair(t)
	tests := []struct {
		name string
		args []string
		err  error
		want []string
	}{
		{
			"decided already",
			[]string{"approve", testRepairID},
			status.Error(codes.FailedPrecondition, "repair "+testRepairID+" is succeeded (decided by user:bob): not waiting for an answer"),
			[]string{"not approved: FailedPrecondition: repair " + testRepairID + " is succeeded (decided by user:bob): not waiting for an answer", "vigil repairs get " + testRepairID},
		},
		{
			"expired",
			[]string{"reject", testRepairID},
			status.Error(codes.FailedPrecondition, "repair "+testRepairID+" expired at 2030-01-01T00:30:00Z: not waiting for an answer"),
			[]string{"not rejected: FailedPrecondition: repair " + testRepairID + " expired at 2030-01-01T00:30:00Z", "vigil repairs get " + testRepairID},
		},
		{
			"deny-listed",
			[]string{"approve", testRepairID},
			status.Error(codes.FailedPrecondition, "repair "+testRepairID+": cannot be approved: DELETE_POD is on the deny list"),
			[]string{"not approved: FailedPrecondition: ", "DELETE_POD is on the deny list"},
		},
		{
			"not the caller's team",
			[]string{"approve", testRepairID},
			status.Error(codes.PermissionDenied, "repair "+testRepairID+" belongs to team payments"),
			[]string{"PermissionDenied: repair " + testRepairID + " belongs to team payments"},
		},
		{
			"bad id",
			[]string{"approve", "42"},
			server.InvalidArgument("invalid id", server.FieldViolation{Field: "id", Description: "must be a UUID"}),
			[]string{"InvalidArgument: invalid id\n  id: must be a UUID"},
		},
	}
	for _, tt := range tests {
		f.err = tt.err
		out, err := runAccess(t, repairsCommand, addr, "", tt.args...)
		require.Error(t, err, tt.name)
		for _, want := range tt.want {
			require.ErrorContains(t, err, want, tt.name)
		}
		if status.Code(tt.err) != codes.FailedPrecondition {
			require.NotContains(t, err.Error(), "not approved", tt.name)
			require.NotContains(t, err.Error(), "its timeline", tt.name)
		}
		require.Empty(t, out.stdout, tt.name)
	}

	// The process's exit status.
	f.err = tests[0].err
	saved := os.Args
	t.Cleanup(func() { os.Args = saved })
	os.Args = []string{"vigil", "repairs", "approve", testRepairID, "--addr", addr}
	var code int
	captureStdout(t, func() { code = run() })
	require.Equal(t, 1, code)
}

func TestParseRepairStatus(t *testing.T) {
	t.Parallel()
	for _, st := range repairStatuses {
		got, err := parseRepairStatus(st.name)
		require.NoError(t, err, st.name)
		require.Equal(t, st.status, got, st.name)
		require.Equal(t, st.name, repairStatus(st.status), "what list shows, --status reads")
		got, err = parseRepairStatus(st.status.String())
		require.NoError(t, err, st.status)
		require.Equal(t, st.status, got)
	}
	require.Len(t, repairStatuses, len(repairv1.RepairStatus_name)-1, "every status but unspecified has a name")
	for _, bad := range []string{"", "unspecified", "REPAIR_STATUS_UNSPECIFIED", "done", "pending approval"} {
		_, err := parseRepairStatus(bad)
		require.Error(t, err, "%q", bad)
	}
}

func TestAge(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		ago  time.Duration
		want string
	}{
		{-time.Minute, "0s"}, // clocks differ
		{0, "0s"},
		{59 * time.Second, "59s"},
		{90 * time.Second, "1m"},
		{59 * time.Minute, "59m"},
		{5*time.Hour + 59*time.Minute, "5h"},
		{47 * time.Hour, "47h"},
		{72 * time.Hour, "3d"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, age(timestamppb.New(now.Add(-tt.ago)), now), tt.ago)
	}
	require.Equal(t, "-", age(nil, now))
}

// FuzzParseRepairStatus checks parseRepairStatus never panics and that a
// status it accepts reads back the same as `repairs list` shows it.
func FuzzParseRepairStatus(f *testing.F) {
	for _, s := range []string{"pending", "dry-run", "DRY_RUN", "REPAIR_STATUS_FAILED", "", "-", "unspecified"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parseRepairStatus(s)
		if err != nil {
			return
		}
		require.NotEqual(t, repairv1.RepairStatus_REPAIR_STATUS_UNSPECIFIED, st)
		again, err := parseRepairStatus(repairStatus(st))
		require.NoError(t, err)
		require.Equal(t, st, again)
	})
}
