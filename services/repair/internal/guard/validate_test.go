package guard_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/repair/internal/guard"
)

// fv is a server.FieldViolation, short for the tables.
type fv struct{ Field, Description string }

func fvs(vs []server.FieldViolation) []fv {
	out := make([]fv, len(vs))
	for i, v := range vs {
		out[i] = fv(v)
	}
	return out
}

func TestValidate(t *testing.T) {
	t.Parallel()
	const labelRule = "must be at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
	for _, tc := range []struct {
		name string
		g    *repairv1.Guardrails
		want []fv
	}{
		{"nil", nil, nil},
		{"empty", &repairv1.Guardrails{}, nil},
		{"app scope, fields allowed there", &repairv1.Guardrails{
			Scope: "app/shop", Auto: proto.Bool(true), DryRun: proto.Bool(true), MaxAutoPerResource: proto.Int32(0),
			MinConfidence: proto.Float64(1), MaxAutoRisk: high, Deny: []typesv1.RepairAction{scale, scale},
			Cooldown: durationpb.New(24 * time.Hour), ApprovalTtl: durationpb.New(time.Second), VerifyWindow: durationpb.New(time.Hour),
			MaxReplicas: proto.Int32(1), MaxMemoryBytes: proto.Int64(1 << 40), MinHealthyReplicas: proto.Int32(0), MaxPodsAffected: proto.Int32(0),
		}, nil},
		{"namespace scope", &repairv1.Guardrails{Scope: "namespace/prod/shop", MinConfidence: proto.Float64(0)}, nil},
		{"global scope with global-only fields", &repairv1.Guardrails{
			Scope: "global", MaxAutoPerHour: proto.Int32(0), Paused: proto.Bool(false), AllowedNamespaces: []string{"shop", "kube-system"},
		}, nil},

		{"bad scope", &repairv1.Guardrails{Scope: "app/Shop"}, []fv{
			{"scope", `app name "Shop" ` + labelRule},
		}},
		{"unknown scope kind", &repairv1.Guardrails{Scope: "team/sre"}, []fv{
			{"scope", `"team/sre": want "global", "app/<app>" or "namespace/<cluster>/<namespace>"`},
		}},
		{"namespace scope without cluster", &repairv1.Guardrails{Scope: "namespace/shop"}, []fv{
			{"scope", `"namespace/shop": want namespace/<cluster>/<namespace>`},
		}},
		{"namespace scope with empty cluster", &repairv1.Guardrails{Scope: "namespace//shop"}, []fv{
			{"scope", "cluster name is empty"},
		}},
		{"global-only fields on an app", &repairv1.Guardrails{
			Scope: "app/shop", MaxAutoPerHour: proto.Int32(1), Paused: proto.Bool(false), AllowedNamespaces: []string{"shop"},
		}, []fv{
			{"max_auto_per_hour", "can be set only in the global scope, not in app/shop"},
			{"allowed_namespaces", "can be set only in the global scope, not in app/shop"},
			{"paused", "can be set only in the global scope, not in app/shop"},
		}},
		{"global-only field on a namespace", &repairv1.Guardrails{Scope: "namespace/prod/shop", Paused: proto.Bool(true)}, []fv{
			{"paused", "can be set only in the global scope, not in namespace/prod/shop"},
		}},
		{"negative counts", &repairv1.Guardrails{
			MaxAutoPerHour: proto.Int32(-1), MaxAutoPerResource: proto.Int32(-2), MaxPodsAffected: proto.Int32(-3), MinHealthyReplicas: proto.Int32(-4),
		}, []fv{
			{"max_auto_per_hour", "must be 0 to 1000, got -1"},
			{"max_auto_per_resource", "must be 0 to 1000, got -2"},
			{"max_pods_affected", "must be 0 to 10000, got -3"},
			{"min_healthy_replicas", "must be 0 to 1000, got -4"},
		}},
		{"huge counts", &repairv1.Guardrails{
			MaxAutoPerHour: proto.Int32(1001), MaxAutoPerResource: proto.Int32(5000), MaxPodsAffected: proto.Int32(10001), MinHealthyReplicas: proto.Int32(1001),
		}, []fv{
			{"max_auto_per_hour", "must be 0 to 1000, got 1001"},
			{"max_auto_per_resource", "must be 0 to 1000, got 5000"},
			{"max_pods_affected", "must be 0 to 10000, got 10001"},
			{"min_healthy_replicas", "must be 0 to 1000, got 1001"},
		}},
		{"confidence below 0", &repairv1.Guardrails{MinConfidence: proto.Float64(-0.1)}, []fv{{"min_confidence", "must be between 0 and 1, got -0.1"}}},
		{"confidence above 1", &repairv1.Guardrails{MinConfidence: proto.Float64(85)}, []fv{{"min_confidence", "must be between 0 and 1, got 85"}}},
		{"confidence NaN", &repairv1.Guardrails{MinConfidence: proto.Float64(math.NaN())}, []fv{{"min_confidence", "must be between 0 and 1, got NaN"}}},
		{"risk CRITICAL", &repairv1.Guardrails{MaxAutoRisk: critical}, []fv{
			{"max_auto_risk", "must be LOW, MEDIUM or HIGH: CRITICAL repairs are never automatic"},
		}},
		{"risk out of the enum", &repairv1.Guardrails{MaxAutoRisk: 9}, []fv{{"max_auto_risk", "unknown risk 9"}}},
		{"deny entries that are not actions", &repairv1.Guardrails{
			Deny: []typesv1.RepairAction{scale, 0, typesv1.RepairAction_REPAIR_ACTION_NONE, 99},
		}, []fv{
			{"deny[1]", "UNSPECIFIED is not an action that can be denied"},
			{"deny[2]", "NONE is not an action that can be denied"},
			{"deny[3]", "action 99 is not an action that can be denied"},
		}},
		{"deny too long", &repairv1.Guardrails{Deny: make([]typesv1.RepairAction, 65)}, []fv{
			{"deny", "must list at most 64 actions, got 65"},
		}},
		{"bad namespaces", &repairv1.Guardrails{AllowedNamespaces: []string{"shop", "", "Shop", "kube_system", strings.Repeat("a", 64)}}, []fv{
			{"allowed_namespaces[1]", "namespace name is empty"},
			{"allowed_namespaces[2]", `namespace name "Shop" ` + labelRule},
			{"allowed_namespaces[3]", `namespace name "kube_system" ` + labelRule},
			{"allowed_namespaces[4]", `namespace name "` + strings.Repeat("a", 64) + `" ` + labelRule},
		}},
		{"too many namespaces", &repairv1.Guardrails{AllowedNamespaces: make([]string, 1001)}, []fv{
			{"allowed_namespaces", "must list at most 1000 namespaces, got 1001"},
		}},
		{"durations not positive", &repairv1.Guardrails{
			Cooldown: durationpb.New(0), ApprovalTtl: durationpb.New(-time.Minute), VerifyWindow: durationpb.New(-90 * time.Second),
		}, []fv{
			{"cooldown", "must be positive, got 0s"},
			{"approval_ttl", "must be positive, got -1m"},
			{"verify_window", "must be positive, got -1m30s"},
		}},
		{"durations too long", &repairv1.Guardrails{
			Cooldown: durationpb.New(240 * time.Hour), ApprovalTtl: durationpb.New(25 * time.Hour), VerifyWindow: durationpb.New(90 * time.Minute),
		}, []fv{
			{"cooldown", "must be at most 24h, got 240h"},
			{"approval_ttl", "must be at most 24h, got 25h"},
			{"verify_window", "must be at most 1h, got 1h30m"},
		}},
		{"duration malformed", &repairv1.Guardrails{Cooldown: &durationpb.Duration{Seconds: 1, Nanos: -1}}, []fv{
			{"cooldown", "invalid duration (seconds 1, nanos -1): out of range, or signs that differ"},
		}},
		{"bounds", &repairv1.Guardrails{MaxReplicas: proto.Int32(0), MaxMemoryBytes: proto.Int64(0)}, []fv{
			{"max_replicas", "must be 1 to 1000, got 0"},
			{"max_memory_bytes", "must be 1 to 1099511627776 (1Ti), got 0"},
		}},
		{"bounds too high", &repairv1.Guardrails{MaxReplicas: proto.Int32(1001), MaxMemoryBytes: proto.Int64(1<<40 + 1)}, []fv{
			{"max_replicas", "must be 1 to 1000, got 1001"},
			{"max_memory_bytes", "must be 1 to 1099511627776 (1Ti), got 1099511627777"},
		}},
		{"every violation at once", &repairv1.Guardrails{
			Scope: "app/shop", Paused: proto.Bool(true), MinConfidence: proto.Float64(2), Deny: []typesv1.RepairAction{0},
			Cooldown: durationpb.New(0), MaxReplicas: proto.Int32(-1),
		}, []fv{
			{"paused", "can be set only in the global scope, not in app/shop"},
			{"cooldown", "must be positive, got 0s"},
			{"min_confidence", "must be between 0 and 1, got 2"},
			{"deny[0]", "UNSPECIFIED is not an action that can be denied"},
			{"max_replicas", "must be 1 to 1000, got -1"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := guard.Validate(tc.g)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			var verr *server.BadRequestError
			require.ErrorAs(t, err, &verr)
			require.Equal(t, tc.want, fvs(verr.Violations))
		})
	}
}

func TestValidationErrorMessage(t *testing.T) {
	t.Parallel()
	err := guard.Validate(&repairv1.Guardrails{Scope: "app/shop", Paused: proto.Bool(true), MaxReplicas: proto.Int32(0)})
	require.EqualError(t, err, "invalid guardrails: paused: can be set only in the global scope, not in app/shop; max_replicas: must be 1 to 1000, got 0")
}

func TestValidateCapsViolations(t *testing.T) {
	t.Parallel()
	bad := make([]string, 150)
	for i := range bad {
		bad[i] = "Bad"
	}
	var verr *server.BadRequestError
	require.ErrorAs(t, guard.Validate(&repairv1.Guardrails{AllowedNamespaces: bad}), &verr)
	require.Len(t, verr.Violations, 101)
	require.Equal(t, "allowed_namespaces[99]", verr.Violations[99].Field)
	require.Equal(t, server.FieldViolation{Description: "50 more violations not shown"}, verr.Violations[100])
}
