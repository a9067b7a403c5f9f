package console

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

func TestSplitMatchers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{`alertname="A"`, []string{`alertname="A"`}},
		{` alertname="A" , severity=~"crit.*",`, []string{`alertname="A"`, `severity=~"crit.*"`}},
		{`summary="a, b", x!="y"`, []string{`summary="a, b"`, `x!="y"`}},
		{`q="say \"hi, there\"", z="1"`, []string{`q="say \"hi, there\""`, `z="1"`}},
	} {
		require.Equal(t, tc.want, splitMatchers(tc.in), tc.in)
	}
}

func TestMemory(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int64
		text string
	}{
		{"4Gi", 4 << 30, "4Gi"},
		{"512Mi", 512 << 20, "512Mi"},
		{"1G", 1e9, "1000000000"},
		{"1536Mi", 1536 << 20, "1536Mi"},
		{"100", 100, "100"},
	} {
		g := &repairv1.Guardrails{}
		require.NoError(t, parseGuard(g, guardField{Name: "max_memory_bytes", Kind: "memory"}, []string{tc.in}), tc.in)
		require.Equal(t, tc.want, g.GetMaxMemoryBytes(), tc.in)
		require.Equal(t, tc.text, memory(tc.want), tc.in)
	}
	for _, bad := range []string{"4 GB", "-1Gi", "lots", "99999999999999Ti"} {
		require.Error(t, parseGuard(&repairv1.Guardrails{}, guardField{Name: "max_memory_bytes", Kind: "memory"}, []string{bad}), bad)
	}
}

// guardChange sends what the form changed and nothing else: a new value
// is set, an emptied field cleared, an unchanged one left out.
func TestGuardChange(t *testing.T) {
	t.Parallel()
	current := &repairv1.Guardrails{
		Scope: "app/shop", MinConfidence: proto.Float64(0.9), Cooldown: durationpb.New(10 * time.Minute),
		Deny: []typesv1.RepairAction{typesv1.RepairAction_REPAIR_ACTION_DELETE_POD}, DryRun: proto.Bool(true),
	}
	form := func(v url.Values) *http.Request {
		return &http.Request{PostForm: v}
	}
	// Unchanged: nothing to send.
	req, err := guardChange("app/shop", current, form(url.Values{"min_confidence": {"0.9"}, "cooldown": {"10m0s"}, "deny": {"DELETE_POD"}, "dry_run": {"true"}}))
	require.NoError(t, err)
	require.Empty(t, req.GetClear())
	require.False(t, hasGuardFields(req.GetGuardrails()))

	// One changed, one emptied, one added; global-only fields ignored
	// in an app's scope.
	req, err = guardChange("app/shop", current, form(url.Values{
		"min_confidence": {"0.95"}, "cooldown": {"10m"}, "deny": {"DELETE_POD"}, "dry_run": {""},
		"max_pods_affected": {"2"}, "max_auto_per_hour": {"9"},
	}))
	require.NoError(t, err)
	require.Equal(t, []string{"dry_run"}, req.GetClear())
	want := &repairv1.Guardrails{Scope: "app/shop", MinConfidence: proto.Float64(0.95), MaxPodsAffected: proto.Int32(2)}
	require.True(t, proto.Equal(want, req.GetGuardrails()), "%v", req.GetGuardrails())

	// What the form cannot read is refused whole, naming each field.
	_, err = guardChange("global", nil, form(url.Values{"cooldown": {"soon"}, "max_auto_risk": {"extreme"}, "auto": {"maybe"}, "min_confidence": {"0.5"}}))
	require.ErrorContains(t, err, `guardrails.cooldown: "soon" is not a duration`)
	require.ErrorContains(t, err, "guardrails.max_auto_risk")
	require.ErrorContains(t, err, "guardrails.auto")
}
