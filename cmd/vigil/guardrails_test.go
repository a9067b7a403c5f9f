package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"

	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
)

func TestGuardrailsGet(t *testing.T) {
	f, addr := startRepair(t)
	out, err := runAccess(t, guardrailsCommand, addr, "", "get", "--scope", "app/shop")
	require.NoError(t, err)
	require.Equal(t, "Bearer test-token", f.token)
	requireProto(t, &repairv1.GetGuardrailsRequest{Scope: "app/shop"}, f.take())
	require.Contains(t, out.stdout, "Scope: app/shop\n")
	require.NotContains(t, out.stdout, "Paused")
	for _, want := range []string{
		`FIELD\s+SET\s+EFFECTIVE\n`,
		`max_auto_per_hour\s+\(global only\)\s+5\n`,
		`max_auto_per_resource\s+inherited\s+3\n`,
		`cooldown\s+15m\s+15m\n`,
		`min_confidence\s+0\.9\s+0\.9\n`,
		`max_auto_risk\s+inherited\s+low\n`,
		`deny\s+scale_deployment\s+scale_deployment,delete_namespace,delete_pvc,delete_secret,drop_database\n`,
		`allowed_namespaces\s+\(global only\)\s+every namespace but kube-\*\n`,
		`dry_run\s+inherited\s+false\n`,
		`paused\s+\(global only\)\s+false\n`,
		`approval_ttl\s+inherited\s+30m\n`,
		`undo_on_failure\s+inherited\s+true\n`,
		`verify_window\s+inherited\s+5m\n`,
		`max_replicas\s+inherited\s+10\n`,
		`max_memory_bytes\s+inherited\s+4Gi\n`,
		`auto\s+true\s+true\n`,
	} {
		require.Regexp(t, want, out.stdout)
	}

	// The global scope by default; its own fields are inherited (from the
	// file and the defaults) when it leaves them unset.
	f.set = &repairv1.Guardrails{Scope: "global", Paused: proto.Bool(true)}
	f.effective.Paused = proto.Bool(true)
	out, err = runAccess(t, guardrailsCommand, addr, "", "get")
	require.NoError(t, err)
	requireProto(t, &repairv1.GetGuardrailsRequest{Scope: "global"}, f.take())
	require.Contains(t, out.stdout, "Scope: global\nPaused: no automatic repair runs")
	require.Regexp(t, `max_auto_per_hour\s+inherited\s+5\n`, out.stdout)
	require.Regexp(t, `paused\s+true\s+true\n`, out.stdout)

	out, err = runAccess(t, guardrailsCommand, addr, "", "get", "--scope", "namespace/prod/shop", "-o", "json")
	require.NoError(t, err)
	requireProto(t, &repairv1.GetGuardrailsRequest{Scope: "namespace/prod/shop"}, f.take())
	var got struct {
		Set struct {
			Paused *bool  `json:"paused"`
			Cool   string `json:"cooldown"`
		} `json:"set"`
		Effective struct {
			MaxMemory string `json:"max_memory_bytes"`
			Cooldown  string `json:"cooldown"`
			Risk      string `json:"max_auto_risk"`
		} `json:"effective"`
	}
	require.NoError(t, json.Unmarshal([]byte(out.stdout), &got), out.stdout)
	require.NotNil(t, got.Set.Paused)
	require.True(t, *got.Set.Paused)
	require.Empty(t, got.Set.Cool)
	require.Equal(t, "4294967296", got.Effective.MaxMemory)
	require.Equal(t, "900s", got.Effective.Cooldown)
	require.Equal(t, "RISK_LOW", got.Effective.Risk)
}

func TestGuardrailsSet(t *testing.T) {
	f, addr := startRepair(t)
	out, err := runAccess(t, guardrailsCommand, addr, "", "set",
		"--max-auto-per-hour", "8", "--max-auto-per-resource", "2", "--cooldown", "10m", "--min-confidence", "0.85",
		"--max-auto-risk", "medium", "--max-pods-affected", "4", "--min-healthy-replicas", "2",
		"--deny", "RESTART_DEPLOYMENT,delete-pod", "--deny", "scale_deployment", "--allowed-namespaces", "shop,payments",
		"--dry-run=true", "--paused=false", "--approval-ttl", "30m", "--undo-on-failure=false", "--verify-window", "5m",
		"--max-replicas", "12", "--max-memory", "4Gi", "--auto=true")
	require.NoError(t, err)
	requireProto(t, &repairv1.SetGuardrailsRequest{Guardrails: &repairv1.Guardrails{
		Scope: "global", MaxAutoPerHour: proto.Int32(8), MaxAutoPerResource: proto.Int32(2),
		Cooldown: durationpb.New(10 * time.Minute), MinConfidence: proto.Float64(0.85), MaxAutoRisk: typesv1.Risk_RISK_MEDIUM,
		MaxPodsAffected: proto.Int32(4), MinHealthyReplicas: proto.Int32(2),
		Deny: []typesv1.RepairAction{
			typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, typesv1.RepairAction_REPAIR_ACTION_DELETE_POD,
			typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT,
		},
		AllowedNamespaces: []string{"shop", "payments"},
		DryRun:            proto.Bool(true), Paused: proto.Bool(false), ApprovalTtl: durationpb.New(30 * time.Minute),
		UndoOnFailure: proto.Bool(false), VerifyWindow: durationpb.New(5 * time.Minute), MaxReplicas: proto.Int32(12),
		MaxMemoryBytes: proto.Int64(4 << 30), Auto: proto.Bool(true),
	}}, f.take())
	require.Contains(t, out.stdout, "Scope: global\n")
	require.Regexp(t, `max_auto_per_hour\s+8\s+8\n`, out.stdout)
	require.Regexp(t, `max_memory_bytes\s+4Gi\s+4Gi\n`, out.stdout)

	// Only the flags given are sent: a false or zero given is sent too.
	tests := []struct {
		name string
		args []string
		want *repairv1.SetGuardrailsRequest
	}{
		{
			"one field",
			[]string{"--scope", "app/shop", "--min-confidence", "0.9"},
			&repairv1.SetGuardrailsRequest{Guardrails: &repairv1.Guardrails{Scope: "app/shop", MinConfidence: proto.Float64(0.9)}},
		},
		{
			"false and zero",
			[]string{"--scope", "namespace/prod/shop", "--dry-run=false", "--max-pods-affected", "0", "--auto=false"},
			&repairv1.SetGuardrailsRequest{Guardrails: &repairv1.Guardrails{
				Scope: "namespace/prod/shop", DryRun: proto.Bool(false), MaxPodsAffected: proto.Int32(0), Auto: proto.Bool(false),
			}},
		},
		{
			"a bare bool flag is true",
			[]string{"--paused"},
			&repairv1.SetGuardrailsRequest{Guardrails: &repairv1.Guardrails{Scope: "global", Paused: proto.Bool(true)}},
		},
		{
			"decimal memory",
			[]string{"--max-memory", "512M"},
			&repairv1.SetGuardrailsRequest{Guardrails: &repairv1.Guardrails{Scope: "global", MaxMemoryBytes: proto.Int64(512_000_000)}},
		},
		{
			"clear only, by proto and flag names",
			[]string{"--scope", "app/shop", "--clear", "min_confidence,deny", "--clear", "max-memory,approval-ttl"},
			&repairv1.SetGuardrailsRequest{
				Guardrails: &repairv1.Guardrails{Scope: "app/shop"},
				Clear:      []string{"min_confidence", "deny", "max_memory_bytes", "approval_ttl"},
			},
		},
		{
			"set and clear",
			[]string{"--scope", "app/shop", "--cooldown", "1h", "--clear", "auto"},
			&repairv1.SetGuardrailsRequest{
				Guardrails: &repairv1.Guardrails{Scope: "app/shop", Cooldown: durationpb.New(time.Hour)},
				Clear:      []string{"auto"},
			},
		},
		{
			// The server names the fields it knows.
			"unknown field to clear",
			[]string{"--clear", "minConfidence"},
			&repairv1.SetGuardrailsRequest{Guardrails: &repairv1.Guardrails{Scope: "global"}, Clear: []string{"minConfidence"}},
		},
	}
	for _, tt := range tests {
		_, err := runAccess(t, guardrailsCommand, addr, "", append([]string{"set"}, tt.args...)...)
		require.NoError(t, err, tt.name)
		requireProto(t, tt.want, f.take(), tt.name)
	}

	out, err = runAccess(t, guardrailsCommand, addr, "", "set", "--scope", "app/shop", "--max-replicas", "3", "-o", "json")
	require.NoError(t, err)
	var got struct {
		Set struct {
			Scope       string `json:"scope"`
			MaxReplicas int    `json:"max_replicas"`
		} `json:"set"`
	}
	require.NoError(t, json.Unmarshal([]byte(out.stdout), &got), out.stdout)
	require.Equal(t, "app/shop", got.Set.Scope)
	require.Equal(t, 3, got.Set.MaxReplicas)
}

func TestGuardrailsSetRefusesBadFlags(t *testing.T) {
	f, addr := startRepair(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"nothing", nil, "nothing to change"},
		{"scope only", []string{"--scope", "app/shop"}, "nothing to change"},
		{"bad risk", []string{"--max-auto-risk", "tiny"}, `--max-auto-risk "tiny"`},
		{"unspecified risk", []string{"--max-auto-risk", "unspecified"}, "--max-auto-risk"},
		{"bad action", []string{"--deny", "restart-deployment,reboot"}, `--deny "reboot"`},
		{"no action", []string{"--deny", ""}, "--clear deny"},
		{"no namespace", []string{"--allowed-namespaces", ""}, "--clear allowed_namespaces"},
		{"bad memory", []string{"--max-memory", "4 gigs"}, `--max-memory "4 gigs"`},
		{"bad duration", []string{"--cooldown", "10"}, "--cooldown"},
		{"bad number", []string{"--max-replicas", "many"}, "--max-replicas"},
		{"bad bool", []string{"--paused=maybe"}, "--paused"},
		{"argument", []string{"global"}, "unknown command"},
	}
	for _, tt := range tests {
		_, err := runAccess(t, guardrailsCommand, addr, "", append([]string{"set"}, tt.args...)...)
		require.ErrorContains(t, err, tt.want, tt.name)
		require.Nil(t, f.take(), "%s: nothing is sent", tt.name)
	}
}

func TestGuardrailsServerErrors(t *testing.T) {
	f, addr := startRepair(t)
	f.err = server.InvalidArgument("invalid guardrails",
		server.FieldViolation{Field: "guardrails.min_confidence", Description: "must be between 0 and 1, got 1.5"},
		server.FieldViolation{Field: "guardrails.paused", Description: "can be set only in the global scope, not in app/shop"},
		server.FieldViolation{Field: "guardrails.clear[0]", Description: `unknown field "minConfidence"`},
	)
	out, err := runAccess(t, guardrailsCommand, addr, "", "set", "--scope", "app/shop", "--min-confidence", "1.5", "--paused", "--clear", "minConfidence")
	require.EqualError(t, err, `InvalidArgument: invalid guardrails
  guardrails.min_confidence: must be between 0 and 1, got 1.5
  guardrails.paused: can be set only in the global scope, not in app/shop
  guardrails.clear[0]: unknown field "minConfidence"`)
	require.Empty(t, out.stdout)

	f.err = status.Error(codes.PermissionDenied, "setting guardrails needs the admin role")
	_, err = runAccess(t, guardrailsCommand, addr, "", "pause")
	require.EqualError(t, err, "PermissionDenied: setting guardrails needs the admin role")

	f.err = server.InvalidArgument("invalid scope", server.FieldViolation{Field: "scope", Description: `"app/": app name is empty`})
	_, err = runAccess(t, guardrailsCommand, addr, "", "get", "--scope", "app/")
	require.ErrorContains(t, err, `scope: "app/": app name is empty`)
}

func TestGuardrailsPauseResume(t *testing.T) {
	f, addr := startRepair(t)
	out, err := runAccess(t, guardrailsCommand, addr, "", "pause")
	require.NoError(t, err)
	requireProto(t, &repairv1.SetGuardrailsRequest{Guardrails: &repairv1.Guardrails{Scope: "global", Paused: proto.Bool(true)}}, f.take())
	require.Contains(t, out.stdout, "Automatic repairs paused")

	out, err = runAccess(t, guardrailsCommand, addr, "", "resume")
	require.NoError(t, err)
	// Explicitly false, not cleared: the configuration file may pause.
	requireProto(t, &repairv1.SetGuardrailsRequest{Guardrails: &repairv1.Guardrails{Scope: "global", Paused: proto.Bool(false)}}, f.take())
	require.Contains(t, out.stdout, "Automatic repairs resumed")

	out, err = runAccess(t, guardrailsCommand, addr, "", "pause", "-o", "json")
	require.NoError(t, err)
	var got struct {
		Effective struct {
			Paused bool `json:"paused"`
		} `json:"effective"`
	}
	require.NoError(t, json.Unmarshal([]byte(out.stdout), &got), out.stdout)
	require.True(t, got.Effective.Paused)
}

func TestParseAction(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"RESTART_DEPLOYMENT", "restart-deployment", "restart_deployment", " Restart-Deployment ", "REPAIR_ACTION_RESTART_DEPLOYMENT"} {
		got, err := parseAction(s)
		require.NoError(t, err, s)
		require.Equal(t, typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, got, s)
	}
	for _, name := range actionNames() {
		_, err := parseAction(name)
		require.NoError(t, err, "completion offers %s", name)
	}
	for _, bad := range []string{"", "unspecified", "reboot", "restart deployment"} {
		_, err := parseAction(bad)
		require.Error(t, err, "%q", bad)
	}
}

// Every field of Guardrails but the scope is shown, has its flag in
// `guardrails set`, and can be cleared by the name it is shown under.
func TestGuardrailFieldsCoverTheMessage(t *testing.T) {
	t.Parallel()
	fields := (&repairv1.Guardrails{}).ProtoReflect().Descriptor().Fields()
	require.Len(t, guardrailFields, fields.Len()-1)
	set := guardrailsSet(&clientFlags{})
	for _, f := range guardrailFields {
		require.NotNil(t, fields.ByName(protoreflect.Name(f.field)), f.field)
		require.NotNil(t, set.Flags().Lookup(f.flag), f.flag)
		require.Equal(t, f.field, clearName(f.field))
		require.Equal(t, f.field, clearName(f.flag))
	}
}

// FuzzParseAction checks parseAction never panics and that an action it
// accepts reads back the same as the command line shows it.
func FuzzParseAction(f *testing.F) {
	for _, s := range []string{"restart-deployment", "DELETE_POD", "REPAIR_ACTION_NONE", "", "-", "repair_action_", "unspecified"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseAction(s)
		if err != nil {
			return
		}
		require.NotEqual(t, typesv1.RepairAction_REPAIR_ACTION_UNSPECIFIED, a)
		again, err := parseAction(short(a.String(), "REPAIR_ACTION_"))
		require.NoError(t, err)
		require.Equal(t, a, again)
	})
}
