package guard_test

import (
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

func TestApply(t *testing.T) {
	t.Parallel()
	stored := &repairv1.Guardrails{
		Scope:             "global",
		Cooldown:          durationpb.New(10 * time.Minute),
		MinConfidence:     proto.Float64(0.9),
		Deny:              []typesv1.RepairAction{rollback},
		AllowedNamespaces: []string{"shop"},
		Paused:            proto.Bool(true),
	}
	for _, tc := range []struct {
		name    string
		current *repairv1.Guardrails
		update  *repairv1.Guardrails
		clear   []string
		want    *repairv1.Guardrails
	}{
		{
			"first set of a scope", nil, &repairv1.Guardrails{Scope: "app/shop", Auto: proto.Bool(true)},
			nil, &repairv1.Guardrails{Scope: "app/shop", Auto: proto.Bool(true)},
		},
		{
			"an empty scope is global", nil, &repairv1.Guardrails{MaxAutoPerHour: proto.Int32(2)},
			nil, &repairv1.Guardrails{Scope: "global", MaxAutoPerHour: proto.Int32(2)},
		},
		{"nothing to change", stored, &repairv1.Guardrails{Scope: "global"}, nil, stored},
		{"nil update clears", stored, nil, []string{"paused"}, &repairv1.Guardrails{
			Scope:             "global",
			Cooldown:          durationpb.New(10 * time.Minute),
			MinConfidence:     proto.Float64(0.9),
			Deny:              []typesv1.RepairAction{rollback},
			AllowedNamespaces: []string{"shop"},
		}},
		{"present fields replace, absent ones stay", stored, &repairv1.Guardrails{
			Scope:             "global",
			Cooldown:          durationpb.New(5 * time.Minute),
			Deny:              []typesv1.RepairAction{scale},
			AllowedNamespaces: []string{"web", "api"},
			Paused:            proto.Bool(false),
		}, nil, &repairv1.Guardrails{
			Scope:             "global",
			Cooldown:          durationpb.New(5 * time.Minute),
			MinConfidence:     proto.Float64(0.9),
			Deny:              []typesv1.RepairAction{scale},
			AllowedNamespaces: []string{"api", "web"},
			Paused:            proto.Bool(false),
		}},
		{
			"clear unsets", stored, &repairv1.Guardrails{Scope: "global", MaxReplicas: proto.Int32(3)},
			[]string{"min_confidence", "deny", "cooldown", "allowed_namespaces", "auto"},
			&repairv1.Guardrails{
				Scope:       "global",
				MaxReplicas: proto.Int32(3),
				Paused:      proto.Bool(true),
			},
		},
		{"lists sorted, each entry once", nil, &repairv1.Guardrails{
			Deny:              []typesv1.RepairAction{scale, delPod, scale},
			AllowedNamespaces: []string{"web", "api", "web"},
		}, nil, &repairv1.Guardrails{
			Scope:             "global",
			Deny:              []typesv1.RepairAction{delPod, scale},
			AllowedNamespaces: []string{"api", "web"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var before, beforeUpdate *repairv1.Guardrails
			if tc.current != nil {
				before = proto.CloneOf(tc.current)
			}
			if tc.update != nil {
				beforeUpdate = proto.CloneOf(tc.update)
			}
			got, err := guard.Apply(tc.current, tc.update, tc.clear)
			require.NoError(t, err)
			require.True(t, proto.Equal(tc.want, got), "got %v", got)
			require.True(t, proto.Equal(before, tc.current), "current changed")
			require.True(t, proto.Equal(beforeUpdate, tc.update), "update changed")
		})
	}
}

func TestApplyRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		current *repairv1.Guardrails
		update  *repairv1.Guardrails
		clear   []string
		want    []fv
	}{
		{"another scope", &repairv1.Guardrails{Scope: "app/shop"}, &repairv1.Guardrails{Scope: "app/web"}, nil, []fv{
			{"guardrails.scope", `is "app/web", but the guardrails being changed are those of "app/shop"`},
		}},
		{"global and an app", &repairv1.Guardrails{}, &repairv1.Guardrails{Scope: "app/web"}, nil, []fv{
			{"guardrails.scope", `is "app/web", but the guardrails being changed are those of "global"`},
		}},
		{"bad values", nil, &repairv1.Guardrails{Scope: "app/shop", Paused: proto.Bool(true), Cooldown: durationpb.New(-time.Second)}, nil, []fv{
			{"guardrails.paused", "can be set only in the global scope, not in app/shop"},
			{"guardrails.cooldown", "must be positive, got -1s"},
		}},
		{"bad scope", nil, &repairv1.Guardrails{Scope: "app/"}, nil, []fv{{"guardrails.scope", "app name is empty"}}},
		{"bad clear", nil, &repairv1.Guardrails{Cooldown: durationpb.New(time.Minute)}, []string{"paused", "minConfidence", "scope", "cooldown", ""}, []fv{
			{"clear[1]", `unknown field "minConfidence"; want one of max_auto_per_hour, max_auto_per_resource, cooldown, min_confidence, max_auto_risk, ` +
				"max_pods_affected, min_healthy_replicas, deny, allowed_namespaces, dry_run, paused, approval_ttl, undo_on_failure, verify_window, max_replicas, max_memory_bytes, auto"},
			{"clear[2]", "scope cannot be cleared"},
			{"clear[3]", "cooldown is also set in guardrails: set it or clear it, not both"},
			{"clear[4]", `unknown field ""; want one of max_auto_per_hour, max_auto_per_resource, cooldown, min_confidence, max_auto_risk, ` +
				"max_pods_affected, min_healthy_replicas, deny, allowed_namespaces, dry_run, paused, approval_ttl, undo_on_failure, verify_window, max_replicas, max_memory_bytes, auto"},
		}},
		{"everything at once", &repairv1.Guardrails{Scope: "global"}, &repairv1.Guardrails{Scope: "app/shop", MaxAutoPerHour: proto.Int32(1)}, []string{"nope"}, []fv{
			{"guardrails.scope", `is "app/shop", but the guardrails being changed are those of "global"`},
			{"guardrails.max_auto_per_hour", "can be set only in the global scope, not in app/shop"},
			{"clear[0]", `unknown field "nope"; want one of max_auto_per_hour, max_auto_per_resource, cooldown, min_confidence, max_auto_risk, ` +
				"max_pods_affected, min_healthy_replicas, deny, allowed_namespaces, dry_run, paused, approval_ttl, undo_on_failure, verify_window, max_replicas, max_memory_bytes, auto"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := guard.Apply(tc.current, tc.update, tc.clear)
			require.Nil(t, got)
			var verr *server.BadRequestError
			require.ErrorAs(t, err, &verr)
			require.Equal(t, tc.want, fvs(verr.Violations))
		})
	}
}

// What Apply returns from valid guardrails is valid, and the scopes it
// produces merge as Effective expects.
func TestApplyThenEffective(t *testing.T) {
	t.Parallel()
	global, err := guard.Apply(nil, &repairv1.Guardrails{Scope: "global", Auto: proto.Bool(true), Deny: []typesv1.RepairAction{rollback}}, nil)
	require.NoError(t, err)
	app, err := guard.Apply(nil, &repairv1.Guardrails{Scope: "app/shop", MinConfidence: proto.Float64(0.6)}, nil)
	require.NoError(t, err)
	require.NoError(t, guard.Validate(global))
	require.NoError(t, guard.Validate(app))

	s := guard.Effective(guard.Defaults(), global, app)
	require.True(t, s.Auto)
	require.InDelta(t, 0.6, s.MinConfidence, 0)
	require.Contains(t, s.Deny, rollback)

	app, err = guard.Apply(app, &repairv1.Guardrails{Scope: "app/shop"}, []string{"min_confidence"})
	require.NoError(t, err)
	require.InDelta(t, 0.85, guard.Effective(guard.Defaults(), global, app).MinConfidence, 0)
}
