package guard_test

import (
	"os"
	"path/filepath"
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

func TestLoadFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file   string
		global *repairv1.Guardrails
		scopes map[string]*repairv1.Guardrails
	}{
		{"good.yaml", &repairv1.Guardrails{
			Scope:              "global",
			MaxAutoPerHour:     proto.Int32(10),
			MaxAutoPerResource: proto.Int32(2),
			Cooldown:           durationpb.New(15 * time.Minute),
			MinConfidence:      proto.Float64(0.9),
			MaxAutoRisk:        medium,
			MaxPodsAffected:    proto.Int32(5),
			MinHealthyReplicas: proto.Int32(2),
			Deny:               []typesv1.RepairAction{rollback, scale},
			AllowedNamespaces:  []string{"shop", "payments"},
			DryRun:             proto.Bool(false),
			Paused:             proto.Bool(false),
			ApprovalTtl:        durationpb.New(time.Hour),
			UndoOnFailure:      proto.Bool(true),
			VerifyWindow:       durationpb.New(90 * time.Second),
			MaxReplicas:        proto.Int32(20),
			MaxMemoryBytes:     proto.Int64(8 << 30),
			Auto:               proto.Bool(true),
		}, map[string]*repairv1.Guardrails{
			"namespace/prod/payments": {
				Scope:         "namespace/prod/payments",
				MinConfidence: proto.Float64(0.95),
				MaxAutoRisk:   low,
				Deny:          []typesv1.RepairAction{delPod},
			},
			"app/shop": {
				Scope:          "app/shop",
				Auto:           proto.Bool(false),
				MaxMemoryBytes: proto.Int64(512 << 20),
				Cooldown:       durationpb.New(90 * time.Minute),
			},
		}},
		{"good.json", &repairv1.Guardrails{
			Scope:          "global",
			MaxAutoPerHour: proto.Int32(3),
			Cooldown:       durationpb.New(10 * time.Minute),
			MaxAutoRisk:    low,
			Deny:           []typesv1.RepairAction{delPod},
			MaxMemoryBytes: proto.Int64(4 << 30),
		}, map[string]*repairv1.Guardrails{
			"app/shop": {Scope: "app/shop", Auto: proto.Bool(true)},
		}},
		{"empty.yaml", &repairv1.Guardrails{Scope: "global"}, map[string]*repairv1.Guardrails{}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			f, err := guard.LoadFile(filepath.Join("testdata", tc.file))
			require.NoError(t, err)
			require.True(t, proto.Equal(tc.global, f.Global), "global: %v", f.Global)
			require.Len(t, f.Scopes, len(tc.scopes))
			for name, want := range tc.scopes {
				require.True(t, proto.Equal(want, f.Scopes[name]), "%s: %v", name, f.Scopes[name])
			}
		})
	}
}

func TestFileBase(t *testing.T) {
	t.Parallel()
	f, err := guard.LoadFile("testdata/good.yaml")
	require.NoError(t, err)
	base := f.Base()
	require.Equal(t, 10, base.MaxAutoPerHour)
	require.Equal(t, 15*time.Minute, base.Cooldown)
	require.Equal(t, append([]typesv1.RepairAction{scale, rollback}, builtin...), base.Deny)
	require.Equal(t, 30*time.Minute, guard.Defaults().ApprovalTTL)

	// An app under its namespace, the file's scopes under the stored ones.
	stored := &repairv1.Guardrails{Scope: "app/shop", Auto: proto.Bool(true)}
	s := guard.Effective(base, f.Scopes["namespace/prod/payments"], f.Scopes["app/shop"], stored)
	require.True(t, s.Auto)
	require.InDelta(t, 0.95, s.MinConfidence, 0)
	require.Equal(t, low, s.MaxAutoRisk)
	require.Equal(t, 90*time.Minute, s.Cooldown)
	require.Equal(t, int64(512<<20), s.MaxMemoryBytes)
	require.Equal(t, append([]typesv1.RepairAction{delPod, scale, rollback}, builtin...), s.Deny)

	empty, err := guard.LoadFile("testdata/empty.yaml")
	require.NoError(t, err)
	require.Equal(t, guard.Defaults(), empty.Base())
}

func TestLoadFileRefuses(t *testing.T) {
	t.Parallel()
	const labelRule = "must be at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
	const knownFields = "scope, max_auto_per_hour, max_auto_per_resource, cooldown, min_confidence, max_auto_risk, " +
		"max_pods_affected, min_healthy_replicas, deny, allowed_namespaces, dry_run, paused, approval_ttl, undo_on_failure, " +
		"verify_window, max_replicas, max_memory_bytes, auto"
	for _, tc := range []struct {
		file string
		want []fv
	}{
		{"unknown-field.yaml", []fv{{"max_repairs_per_hour", "unknown field; known fields: " + knownFields + ", scopes"}}},
		{"camel-case.yaml", []fv{{"maxAutoPerHour", "unknown field: did you mean max_auto_per_hour?"}}},
		{"duration.yaml", []fv{{"cooldown", `invalid duration "10 minutes": write it as 90s, 10m or 1h30m`}}},
		{"quantity.yaml", []fv{{"max_memory_bytes", `invalid quantity "4GB": write a number of bytes or a quantity such as 512Mi or 4Gi`}}},
		{"wrong-type.yaml", []fv{{"max_auto_per_hour", `invalid value "many": want a whole number`}}},
		{"enum.yaml", []fv{{"max_auto_risk", `invalid value "SMALL": want one of LOW, MEDIUM, HIGH, CRITICAL`}}},
		{"out-of-range.yaml", []fv{{"min_confidence", "must be between 0 and 1, got 85"}}},
		{"top-scope.yaml", []fv{{"scope", "the top level is the global scope: put the guardrails of app/shop under scopes:"}}},
		{"scope-missing.yaml", []fv{{"scopes[0].scope", "is required: app/<app> or namespace/<cluster>/<namespace>"}}},
		{"scope-duplicate.yaml", []fv{{"scopes[1].scope", "app/shop is already set by scopes[0]"}}},
		{"scope-global.yaml", []fv{{"scopes[0].scope", "the global guardrails are the top level of the file"}}},
		{"scope-global-only.yaml", []fv{{"scopes[0].paused", "can be set only in the global scope, not in namespace/prod/shop"}}},
		{"scopes-not-list.yaml", []fv{{"scopes", "must be a list of guardrails, each with its scope"}}},
		{"scopes-nested.yaml", []fv{{"scopes[0].scopes", "unknown field: scopes are listed at the top level only"}}},
		{"many.yaml", []fv{
			{"colour", "unknown field; known fields: " + knownFields + ", scopes"},
			{"max_auto_per_hour", "must be 0 to 1000, got -1"},
			{"cooldown", "must be at most 24h, got 48h"},
			{"deny[0]", "NONE is not an action that can be denied"},
			{"allowed_namespaces[0]", `namespace name "Shop" ` + labelRule},
			{"scopes[0].scope", `app name "Shop" ` + labelRule},
			{"scopes[1].verify_window", `invalid duration "soon": write it as 90s, 10m or 1h30m`},
			{"scopes[1].max_auto_per_hour", "can be set only in the global scope, not in app/web"},
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join("testdata", "bad", tc.file)
			f, err := guard.LoadFile(path)
			require.Nil(t, f)
			require.ErrorContains(t, err, "guardrails file "+path+": invalid guardrails: ")
			var verr *server.BadRequestError
			require.ErrorAs(t, err, &verr)
			require.Equal(t, tc.want, fvs(verr.Violations))
		})
	}

	for _, tc := range []struct{ file, want string }{
		{"not-mapping.yaml", "the file must be a mapping of guardrail fields"},
		{"syntax.yaml", "not YAML: yaml: line 1: did not find expected ',' or ']'"},
		{"duplicate-key.yaml", `key "cooldown" already set in map`},
	} {
		path := filepath.Join("testdata", "bad", tc.file)
		_, err := guard.LoadFile(path)
		require.ErrorContains(t, err, "guardrails file "+path+": ", tc.file)
		require.ErrorContains(t, err, tc.want, tc.file)
	}
}

func TestLoadFileMissingOrLarge(t *testing.T) {
	t.Parallel()
	_, err := guard.LoadFile("testdata/missing.yaml")
	require.ErrorIs(t, err, os.ErrNotExist)
	require.ErrorContains(t, err, "guardrails file: open testdata/missing.yaml")

	path := filepath.Join(t.TempDir(), "huge.yaml")
	require.NoError(t, os.WriteFile(path, make([]byte, 1<<20+1), 0o600))
	_, err = guard.LoadFile(path)
	require.EqualError(t, err, "guardrails file "+path+": larger than 1048576 bytes")
}

func TestLoadFileValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		yaml string
		want *repairv1.Guardrails
		err  string // a violation's description
	}{
		{"cooldown: 600s", &repairv1.Guardrails{Cooldown: durationpb.New(10 * time.Minute)}, ""},
		{"cooldown: 1.5s", &repairv1.Guardrails{Cooldown: durationpb.New(1500 * time.Millisecond)}, ""},
		{"cooldown: 600", nil, "invalid value 600: want a duration such as 90s, 10m or 1h30m"},
		{"cooldown: -5m", nil, "must be positive, got -5m"},
		{"cooldown: null", &repairv1.Guardrails{}, ""},
		{"max_auto_risk: high", &repairv1.Guardrails{MaxAutoRisk: high}, ""},
		{"max_auto_risk: RISK_HIGH", &repairv1.Guardrails{MaxAutoRisk: high}, ""},
		{"max_auto_risk: 2", &repairv1.Guardrails{MaxAutoRisk: medium}, ""},
		{"max_auto_risk: ''", nil, `invalid value "": want one of LOW, MEDIUM, HIGH, CRITICAL`},
		{"deny: [delete_pod, 5]", &repairv1.Guardrails{Deny: []typesv1.RepairAction{delPod, rollback}}, ""},
		{"deny: DELETE_POD", nil, `invalid value "DELETE_POD": want a list, each entry one of NONE, RESTART_DEPLOYMENT,`},
		{"deny: [UNSPECIFIED]", nil, "UNSPECIFIED is not an action that can be denied"},
		{"max_memory_bytes: 512Mi", &repairv1.Guardrails{MaxMemoryBytes: proto.Int64(512 << 20)}, ""},
		{"max_memory_bytes: 1G", &repairv1.Guardrails{MaxMemoryBytes: proto.Int64(1e9)}, ""},
		{"max_memory_bytes: 4294967296", &repairv1.Guardrails{MaxMemoryBytes: proto.Int64(4 << 30)}, ""},
		{"max_memory_bytes: 100Ei", nil, `invalid quantity "100Ei"`},
		{"max_memory_bytes: 2Ti", nil, "must be 1 to 1099511627776 (1Ti), got 2199023255552"},
		{"max_replicas: 2.5", nil, "invalid value 2.5: want a whole number"},
		{"max_replicas: 99999999999", nil, "invalid value 99999999999: want a whole number"},
		{"auto: 'yes please'", nil, `invalid value "yes please": want true or false`},
		{"min_confidence: high", nil, `invalid value "high": want a number`},
		{"allowed_namespaces: [shop, 3]", nil, "invalid value [\"shop\",3]: want a list, each entry a string"},
		{"scope: global", &repairv1.Guardrails{}, ""},
		{`{"scope": "", "dry_run": true}`, &repairv1.Guardrails{DryRun: proto.Bool(true)}, ""},
		{"scopes: null", &repairv1.Guardrails{}, ""},
		{"scopes: [null]", nil, "must be a mapping of guardrail fields"},
	} {
		path := filepath.Join(t.TempDir(), "guardrails.yaml")
		require.NoError(t, os.WriteFile(path, []byte(tc.yaml), 0o600))
		f, err := guard.LoadFile(path)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.yaml)
			continue
		}
		require.NoError(t, err, tc.yaml)
		tc.want.Scope = "global"
		require.True(t, proto.Equal(tc.want, f.Global), "%s: %v", tc.yaml, f.Global)
	}
}
