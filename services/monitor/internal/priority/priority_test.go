package priority_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/status"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/monitor/internal/priority"
)

const (
	p0 = typesv1.Priority_PRIORITY_P0
	p1 = typesv1.Priority_PRIORITY_P1
	p2 = typesv1.Priority_PRIORITY_P2
	p3 = typesv1.Priority_PRIORITY_P3

	critical = typesv1.Severity_SEVERITY_CRITICAL
	warning  = typesv1.Severity_SEVERITY_WARNING
	info     = typesv1.Severity_SEVERITY_INFO
)

func TestOf(t *testing.T) {
	t.Parallel()
	set, err := priority.Compile(priority.Rules{Rules: []priority.Rule{
		{Matchers: []string{`alertname="PaymentsDown"`}, Priority: p0},
		{App: "shop", Namespace: "prod", Priority: p1},
		{Team: "data", Matchers: []string{`severity=~"warning|critical"`, `env!="staging"`}, Priority: p2},
		{Matchers: []string{`env="staging"`}, Priority: p3},
	}})
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		inc  priority.Incident
		want typesv1.Priority
	}{
		{"critical without a rule", priority.Incident{Severity: critical}, p1},
		{"warning without a rule", priority.Incident{Severity: warning}, p2},
		{"info without a rule", priority.Incident{Severity: info}, p3},
		{"no severity", priority.Incident{}, p3},
		{"a matcher raises info to P0", priority.Incident{Severity: info, Labels: map[string]string{"alertname": "PaymentsDown"}}, p0},
		{"app and namespace both match", priority.Incident{Severity: info, App: "shop", Namespace: "prod"}, p1},
		{"app matches, namespace does not", priority.Incident{Severity: warning, App: "shop", Namespace: "dev"}, p2},
		{"the first matching rule wins", priority.Incident{Severity: info, App: "shop", Namespace: "prod", Labels: map[string]string{"alertname": "PaymentsDown"}}, p0},
		{"team with every matcher", priority.Incident{Severity: critical, Team: "data", Labels: map[string]string{"severity": "critical"}}, p2},
		{"team, one matcher fails", priority.Incident{Severity: critical, Team: "data", Labels: map[string]string{"severity": "critical", "env": "staging"}}, p3},
		{"a rule may lower a critical", priority.Incident{Severity: critical, Labels: map[string]string{"env": "staging"}}, p3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, set.Of(tc.inc))
		})
	}
}

func TestTargets(t *testing.T) {
	t.Parallel()
	set, err := priority.Compile(priority.Rules{})
	require.NoError(t, err)
	for p, want := range map[typesv1.Priority]time.Duration{p0: 5 * time.Minute, p1: 15 * time.Minute, p2: time.Hour} {
		got, ok := set.Target(p)
		require.True(t, ok, p)
		require.Equal(t, want, got, p)
	}
	_, ok := set.Target(p3)
	require.False(t, ok, "P3 has no response target by default")

	set, err = priority.Compile(priority.Rules{Targets: map[typesv1.Priority]time.Duration{p3: 4 * time.Hour}})
	require.NoError(t, err)
	got, ok := set.Target(p3)
	require.True(t, ok)
	require.Equal(t, 4*time.Hour, got)
	_, ok = set.Target(p0)
	require.False(t, ok, "given targets replace the defaults")
}

func TestCompileRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		rules  priority.Rules
		fields []string
	}{
		{"bad matcher", priority.Rules{Rules: []priority.Rule{{Matchers: []string{`a="b"`, `c=~`}, Priority: p1}}}, []string{"rules[0].matchers[1]"}},
		{"no priority", priority.Rules{Rules: []priority.Rule{{App: "shop"}}}, []string{"rules[0].priority"}},
		{"matches everything", priority.Rules{Rules: []priority.Rule{{App: "x", Priority: p1}, {Priority: p2}}}, []string{"rules[1].matchers"}},
		{"zero target", priority.Rules{Targets: map[typesv1.Priority]time.Duration{p1: 0}}, []string{"targets[P1]"}},
		{"target of unset", priority.Rules{Targets: map[typesv1.Priority]time.Duration{0: time.Minute}}, []string{"targets"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			set, err := priority.Compile(tc.rules)
			require.Error(t, err)
			require.Nil(t, set)
			var fields []string
			for _, v := range server.Violations(status.Convert(err)) {
				fields = append(fields, v.Field)
			}
			require.Equal(t, tc.fields, fields)
		})
	}
}

func TestParseAndName(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"P0", "P1", "P2", "P3"} {
		p, err := priority.Parse(s)
		require.NoError(t, err)
		require.Equal(t, s, priority.Name(p))
	}
	for _, s := range []string{"", "P4", "1", "PP", "P-1"} {
		_, err := priority.Parse(s)
		require.Error(t, err, s)
	}
	require.True(t, priority.Higher(p0, p1))
	require.True(t, priority.Higher(p3, 0))
	require.False(t, priority.Higher(p2, p2))
	require.False(t, priority.Higher(0, p3))
}
