package guard_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/repair/internal/guard"
)

var builtin = []typesv1.RepairAction{
	typesv1.RepairAction_REPAIR_ACTION_DELETE_NAMESPACE,
	typesv1.RepairAction_REPAIR_ACTION_DELETE_PVC,
	typesv1.RepairAction_REPAIR_ACTION_DELETE_SECRET,
	typesv1.RepairAction_REPAIR_ACTION_DROP_DATABASE,
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	require.Equal(t, guard.Settings{
		MaxAutoPerHour:     5,
		MaxAutoPerResource: 3,
		Cooldown:           10 * time.Minute,
		MinConfidence:      0.85,
		MaxAutoRisk:        low,
		MaxPodsAffected:    3,
		MinHealthyReplicas: 1,
		Deny:               builtin,
		ApprovalTTL:        30 * time.Minute,
		UndoOnFailure:      true,
		VerifyWindow:       5 * time.Minute,
		MaxReplicas:        10,
		MaxMemoryBytes:     4 << 30,
	}, guard.Defaults())
	require.NoError(t, guard.Validate(guard.ToProto(guard.Defaults(), "")))
}

func TestEffective(t *testing.T) {
	t.Parallel()
	defaults := guard.Defaults()
	with := func(change func(*guard.Settings)) guard.Settings {
		s := guard.Defaults()
		change(&s)
		return s
	}
	for _, tc := range []struct {
		name   string
		base   guard.Settings
		scopes []*repairv1.Guardrails
		want   guard.Settings
	}{
		{"no scopes", defaults, nil, defaults},
		{"nil and empty scopes", defaults, []*repairv1.Guardrails{nil, {}, {Scope: "app/shop"}}, defaults},
		{"global sets every field", defaults, []*repairv1.Guardrails{{
			Scope:              "global",
			MaxAutoPerHour:     proto.Int32(20),
			MaxAutoPerResource: proto.Int32(4),
			Cooldown:           durationpb.New(time.Hour),
			MinConfidence:      proto.Float64(0.7),
			MaxAutoRisk:        medium,
			MaxPodsAffected:    proto.Int32(0),
			MinHealthyReplicas: proto.Int32(2),
			Deny:               []typesv1.RepairAction{rollback},
			AllowedNamespaces:  []string{"shop"},
			DryRun:             proto.Bool(true),
			Paused:             proto.Bool(true),
			ApprovalTtl:        durationpb.New(time.Hour),
			UndoOnFailure:      proto.Bool(false),
			VerifyWindow:       durationpb.New(time.Minute),
			MaxReplicas:        proto.Int32(5),
			MaxMemoryBytes:     proto.Int64(1 << 30),
			Auto:               proto.Bool(true),
		}}, guard.Settings{
			MaxAutoPerHour:     20,
			MaxAutoPerResource: 4,
			Cooldown:           time.Hour,
			MinConfidence:      0.7,
			MaxAutoRisk:        medium,
			MaxPodsAffected:    0,
			MinHealthyReplicas: 2,
			Deny:               append([]typesv1.RepairAction{rollback}, builtin...),
			AllowedNamespaces:  []string{"shop"},
			DryRun:             true,
			Paused:             true,
			ApprovalTTL:        time.Hour,
			UndoOnFailure:      false,
			VerifyWindow:       time.Minute,
			MaxReplicas:        5,
			MaxMemoryBytes:     1 << 30,
			Auto:               true,
		}},
		{
			"an empty scope name is global", defaults,
			[]*repairv1.Guardrails{{Paused: proto.Bool(true)}},
			with(func(s *guard.Settings) { s.Paused = true }),
		},
		{"each level inherits what it leaves unset", defaults, []*repairv1.Guardrails{
			{Scope: "global", Cooldown: durationpb.New(20 * time.Minute)},
			{Scope: "namespace/prod/shop", MinConfidence: proto.Float64(0.95)},
			{Scope: "app/shop", Auto: proto.Bool(true)},
		}, with(func(s *guard.Settings) {
			s.Cooldown = 20 * time.Minute
			s.MinConfidence = 0.95
			s.Auto = true
		})},
		{"the most specific wins", defaults, []*repairv1.Guardrails{
			{Scope: "global", Cooldown: durationpb.New(20 * time.Minute), Auto: proto.Bool(true), MaxAutoRisk: high},
			{Scope: "namespace/prod/shop", Cooldown: durationpb.New(15 * time.Minute), Auto: proto.Bool(false)},
			{Scope: "app/shop", Cooldown: durationpb.New(5 * time.Minute), MaxAutoRisk: medium},
		}, with(func(s *guard.Settings) {
			s.Cooldown = 5 * time.Minute
			s.MaxAutoRisk = medium
		})},
		{"false and zero are values, not unset", with(func(s *guard.Settings) { s.Auto = true; s.DryRun = true }), []*repairv1.Guardrails{
			{Scope: "app/shop", Auto: proto.Bool(false), DryRun: proto.Bool(false), MaxAutoPerResource: proto.Int32(0), MinConfidence: proto.Float64(0)},
		}, with(func(s *guard.Settings) { s.MaxAutoPerResource = 0; s.MinConfidence = 0 })},
		{"deny lists add up", defaults, []*repairv1.Guardrails{
			{Scope: "global", Deny: []typesv1.RepairAction{rollback}},
			{Scope: "namespace/prod/shop", Deny: []typesv1.RepairAction{scale, rollback}},
			{Scope: "app/shop", Deny: []typesv1.RepairAction{delPod}},
		}, with(func(s *guard.Settings) {
			s.Deny = append([]typesv1.RepairAction{delPod, scale, rollback}, builtin...)
		})},
		{
			"the built-in deny list cannot be lost",
			guard.Settings{},
			[]*repairv1.Guardrails{{Scope: "global"}},
			guard.Settings{Deny: builtin},
		},
		{"deny entries that are not actions are dropped", defaults, []*repairv1.Guardrails{
			{Scope: "global", Deny: []typesv1.RepairAction{0, typesv1.RepairAction_REPAIR_ACTION_NONE, 99}},
		}, defaults},
		{"global-only fields count only globally", defaults, []*repairv1.Guardrails{
			{Scope: "namespace/prod/shop", MaxAutoPerHour: proto.Int32(50), Paused: proto.Bool(true), AllowedNamespaces: []string{"x"}},
			{Scope: "app/shop", MaxAutoPerHour: proto.Int32(60), Paused: proto.Bool(true), AllowedNamespaces: []string{"y"}},
		}, defaults},
		{"an invalid scope name is not global", defaults, []*repairv1.Guardrails{
			{Scope: "Global", Paused: proto.Bool(true), MinConfidence: proto.Float64(0.9)},
		}, with(func(s *guard.Settings) { s.MinConfidence = 0.9 })},
		{"allowed namespaces replace the base's; empty inherits", with(func(s *guard.Settings) { s.AllowedNamespaces = []string{"a"} }), []*repairv1.Guardrails{
			{Scope: "global", AllowedNamespaces: []string{"b", "c"}},
			{Scope: "global"},
		}, with(func(s *guard.Settings) { s.AllowedNamespaces = []string{"b", "c"} })},
		{"file scopes under stored ones", defaults, []*repairv1.Guardrails{
			{Scope: "global", Auto: proto.Bool(true)},                                               // stored
			{Scope: "app/shop", MaxPodsAffected: proto.Int32(5), MinConfidence: proto.Float64(0.9)}, // file
			{Scope: "app/shop", MinConfidence: proto.Float64(0.8)},                                  // stored
		}, with(func(s *guard.Settings) { s.Auto = true; s.MaxPodsAffected = 5; s.MinConfidence = 0.8 })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, guard.Effective(tc.base, tc.scopes...))
		})
	}
}

func TestEffectiveDoesNotAlias(t *testing.T) {
	t.Parallel()
	base := guard.Defaults()
	base.AllowedNamespaces = []string{"shop"}
	g := &repairv1.Guardrails{Deny: []typesv1.RepairAction{rollback}, AllowedNamespaces: []string{"web"}}
	s := guard.Effective(base, g)
	s.Deny[0] = scale
	s.AllowedNamespaces[0] = "changed"
	require.Equal(t, builtin, base.Deny)
	require.Equal(t, []string{"shop"}, base.AllowedNamespaces)
	require.Equal(t, []typesv1.RepairAction{rollback}, g.Deny)
	require.Equal(t, []string{"web"}, g.AllowedNamespaces)

	s = guard.Effective(base)
	s.AllowedNamespaces[0] = "changed"
	require.Equal(t, []string{"shop"}, base.AllowedNamespaces)
}

func TestToProto(t *testing.T) {
	t.Parallel()
	s := guard.Defaults()
	s.AllowedNamespaces = []string{"shop", "web"}
	s.Deny = append(s.Deny, rollback)
	s.Auto = true
	g := guard.ToProto(s, "")
	require.True(t, proto.Equal(&repairv1.Guardrails{
		Scope:              "global",
		MaxAutoPerHour:     proto.Int32(5),
		MaxAutoPerResource: proto.Int32(3),
		Cooldown:           durationpb.New(10 * time.Minute),
		MinConfidence:      proto.Float64(0.85),
		MaxAutoRisk:        low,
		MaxPodsAffected:    proto.Int32(3),
		MinHealthyReplicas: proto.Int32(1),
		Deny:               append([]typesv1.RepairAction{rollback}, builtin...),
		AllowedNamespaces:  []string{"shop", "web"},
		DryRun:             proto.Bool(false),
		Paused:             proto.Bool(false),
		ApprovalTtl:        durationpb.New(30 * time.Minute),
		UndoOnFailure:      proto.Bool(true),
		VerifyWindow:       durationpb.New(5 * time.Minute),
		MaxReplicas:        proto.Int32(10),
		MaxMemoryBytes:     proto.Int64(4 << 30),
		Auto:               proto.Bool(true),
	}, g), "got %v", g)
	require.NoError(t, guard.Validate(g))

	// Every field is set, so the view read back is the settings again.
	require.Equal(t, guard.Effective(s), guard.Effective(guard.Settings{}, g))

	// The view of an app includes what it inherits from the global scope;
	// it is a view, not something to set there.
	app := guard.ToProto(s, "app/shop")
	require.Equal(t, "app/shop", app.GetScope())
	require.Equal(t, int32(5), app.GetMaxAutoPerHour())
	require.Error(t, guard.Validate(app))

	// Out-of-range ints are clamped, never wrapped.
	require.Equal(t, int32(2147483647), guard.ToProto(guard.Settings{MaxReplicas: 1 << 40}, "").GetMaxReplicas())
}

func TestScope(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string // want "": an error
		scope    guard.Scope
	}{
		{"", "global", guard.Scope{}},
		{"global", "global", guard.Scope{}},
		{"app/shop", "app/shop", guard.Scope{App: "shop"}},
		{"namespace/prod/shop", "namespace/prod/shop", guard.Scope{Cluster: "prod", Namespace: "shop"}},
		{"Global", "", guard.Scope{}},
		{"app", "", guard.Scope{}},
		{"app/", "", guard.Scope{}},
		{"app/Shop", "", guard.Scope{}},
		{"app/a/b", "", guard.Scope{}},
		{"app/-a", "", guard.Scope{}},
		{"namespace/prod", "", guard.Scope{}},
		{"namespace//shop", "", guard.Scope{}},
		{"namespace/prod/", "", guard.Scope{}},
		{"namespace/prod/shop/x", "", guard.Scope{}},
		{"team/sre", "", guard.Scope{}},
	} {
		sc, err := guard.ParseScope(tc.in)
		if tc.want == "" {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.scope, sc)
		require.Equal(t, tc.want, sc.String())
		require.Equal(t, tc.want == "global", sc.IsGlobal())
	}
}
