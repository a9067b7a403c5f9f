package inhibit_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/monitor/internal/inhibit"
)

// inhibited decides as the monitor does, over sources held in memory: is
// target held back by one of the firing sources?
func inhibited(set *inhibit.Set, sources []map[string]string, target map[string]string) bool {
	for _, t := range set.Targets(target) {
		for _, s := range sources {
			for _, m := range set.Sources(s) {
				if inhibit.Inhibits(m, t) {
					return true
				}
			}
		}
	}
	return false
}

func compile(t *testing.T, rules ...inhibit.Rule) *inhibit.Set {
	t.Helper()
	set, err := inhibit.Compile(rules)
	require.NoError(t, err)
	return set
}

type l = map[string]string

func TestInhibition(t *testing.T) {
	t.Parallel()
	nodeDown := inhibit.Rule{
		SourceMatchers: []string{`alertname="NodeDown"`},
		TargetMatchers: []string{`alertname="KubePodCrashLooping"`},
		Equal:          []string{"node"},
	}
	critical := inhibit.Rule{
		SourceMatchers: []string{`severity="critical"`},
		TargetMatchers: []string{`severity=~"warning|critical"`},
		Equal:          []string{"cluster"},
	}
	cases := []struct {
		name    string
		rules   []inhibit.Rule
		sources []map[string]string
		target  map[string]string
		want    bool
	}{
		{
			"same node",
			[]inhibit.Rule{nodeDown},
			[]map[string]string{{"alertname": "NodeDown", "node": "n1"}},
			l{"alertname": "KubePodCrashLooping", "node": "n1", "pod": "p"},
			true,
		},
		{
			"other node",
			[]inhibit.Rule{nodeDown},
			[]map[string]string{{"alertname": "NodeDown", "node": "n1"}},
			l{"alertname": "KubePodCrashLooping", "node": "n2"},
			false,
		},
		{
			"no source fires",
			[]inhibit.Rule{nodeDown},
			nil,
			l{"alertname": "KubePodCrashLooping", "node": "n1"},
			false,
		},
		{
			"not a target",
			[]inhibit.Rule{nodeDown},
			[]map[string]string{{"alertname": "NodeDown", "node": "n1"}},
			l{"alertname": "HighLatency", "node": "n1"},
			false,
		},
		{
			"both lack the equal label: equal",
			[]inhibit.Rule{nodeDown},
			[]map[string]string{{"alertname": "NodeDown"}},
			l{"alertname": "KubePodCrashLooping"},
			true,
		},
		{
			"one lacks it",
			[]inhibit.Rule{nodeDown},
			[]map[string]string{{"alertname": "NodeDown"}},
			l{"alertname": "KubePodCrashLooping", "node": "n1"},
			false,
		},
		{
			"an empty value is a missing label",
			[]inhibit.Rule{nodeDown},
			[]map[string]string{{"alertname": "NodeDown", "node": ""}},
			l{"alertname": "KubePodCrashLooping"},
			true,
		},
		{"no equal: any source", []inhibit.Rule{{
			SourceMatchers: []string{`alertname="ClusterDown"`}, TargetMatchers: []string{`severity="warning"`},
		}}, []map[string]string{{"alertname": "ClusterDown"}}, l{"alertname": "X", "severity": "warning"}, true},
		{"several equal labels, all equal", []inhibit.Rule{{
			SourceMatchers: []string{`alertname="A"`}, TargetMatchers: []string{`alertname="B"`}, Equal: []string{"zone", "node"},
		}}, []map[string]string{{"alertname": "A", "node": "n", "zone": "z"}}, l{"alertname": "B", "node": "n", "zone": "z"}, true},
		{"several equal labels, one differs", []inhibit.Rule{{
			SourceMatchers: []string{`alertname="A"`}, TargetMatchers: []string{`alertname="B"`}, Equal: []string{"zone", "node"},
		}}, []map[string]string{{"alertname": "A", "node": "n", "zone": "z"}}, l{"alertname": "B", "node": "n", "zone": "y"}, false},
		// Alertmanager: an alert matching both sides does not inhibit
		// itself, nor another matching both.
		{
			"not itself",
			[]inhibit.Rule{critical},
			[]map[string]string{{"severity": "critical", "cluster": "c"}},
			l{"severity": "critical", "cluster": "c"},
			false,
		},
		{
			"two two-sided alerts do not inhibit each other",
			[]inhibit.Rule{critical},
			[]map[string]string{{"alertname": "A", "severity": "critical", "cluster": "c"}},
			l{"alertname": "B", "severity": "critical", "cluster": "c"},
			false,
		},
		{"a one-sided source inhibits a two-sided target", []inhibit.Rule{{
			SourceMatchers: []string{`alertname="Outage"`}, TargetMatchers: []string{`severity=~"warning|critical"`}, Equal: []string{"cluster"},
		}, critical}, []map[string]string{{"alertname": "Outage", "cluster": "c"}}, l{"severity": "critical", "cluster": "c"}, true},
		{
			"a two-sided source inhibits a one-sided target",
			[]inhibit.Rule{critical},
			[]map[string]string{{"severity": "critical", "cluster": "c"}},
			l{"severity": "warning", "cluster": "c"},
			true,
		},
		{"deprecated source_match and target_match_re", []inhibit.Rule{{
			SourceMatch: map[string]string{"alertname": "NodeDown"}, TargetMatchRE: map[string]string{"alertname": "KubePod.*"}, Equal: []string{"node"},
		}}, []map[string]string{{"alertname": "NodeDown", "node": "n1"}}, l{"alertname": "KubePodNotReady", "node": "n1"}, true},
		{"regular expressions are anchored", []inhibit.Rule{{
			SourceMatchRE: map[string]string{"alertname": "Node.*"}, TargetMatchers: []string{`alertname="B"`},
		}}, []map[string]string{{"alertname": "XNodeDown"}}, l{"alertname": "B"}, false},
		{"a negative matcher selects alerts without the label", []inhibit.Rule{{
			SourceMatchers: []string{`alertname="A"`}, TargetMatchers: []string{`team!="core"`},
		}}, []map[string]string{{"alertname": "A"}}, l{"alertname": "B"}, true},
		{
			"no rules", nil,
			[]map[string]string{{"alertname": "NodeDown", "node": "n1"}},
			l{"alertname": "KubePodCrashLooping", "node": "n1"},
			false,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, inhibited(compile(t, tc.rules...), tc.sources, tc.target))
		})
	}
}

func TestKeysFollowTheRuleNotItsSpelling(t *testing.T) {
	t.Parallel()
	a := compile(t, inhibit.Rule{
		SourceMatchers: []string{`alertname="A"`, `env="prod"`}, TargetMatchers: []string{`alertname="B"`}, Equal: []string{"zone", "node"},
	})
	b := compile(t, inhibit.Rule{
		SourceMatchers: []string{`env="prod"`}, SourceMatch: map[string]string{"alertname": "A"},
		TargetMatchers: []string{`{alertname="B"}`}, Equal: []string{"node", "zone"},
	})
	require.Equal(t, a.IDs(), b.IDs())
	src := l{"alertname": "A", "env": "prod", "node": "n", "zone": "z"}
	require.Equal(t, a.Sources(src), b.Sources(src))

	other := compile(t, inhibit.Rule{
		SourceMatchers: []string{`alertname="A"`}, TargetMatchers: []string{`alertname="B"`}, Equal: []string{"zone", "node"},
	})
	require.NotEqual(t, a.IDs(), other.IDs())
}

func TestMatchesName(t *testing.T) {
	t.Parallel()
	set := compile(t,
		inhibit.Rule{SourceMatchers: []string{`alertname="A"`}, TargetMatchers: []string{`alertname="B"`}},
		inhibit.Rule{SourceMatchers: []string{`severity="critical"`}, TargetMatchers: []string{`alertname="A"`}},
	)
	ids := set.IDs()
	src := set.Sources(l{"alertname": "A", "severity": "critical"})
	require.Len(t, src, 2)
	require.Equal(t, ids[0], src[0].Rule)
	require.False(t, src[0].Both)
	require.Equal(t, ids[1], src[1].Rule)
	require.True(t, src[1].Both)
	tgt := set.Targets(l{"alertname": "A"})
	require.Len(t, tgt, 1)
	require.Equal(t, ids[1], tgt[0].Rule)
	require.Equal(t, 2, set.Len())
	var none *inhibit.Set
	require.Empty(t, none.Targets(l{"alertname": "A"}))
	require.Zero(t, none.Len())
}

func TestCompileRefuses(t *testing.T) {
	t.Parallel()
	ok := inhibit.Rule{SourceMatchers: []string{`alertname="A"`}, TargetMatchers: []string{`alertname="B"`}}
	cases := []struct {
		name   string
		rules  []inhibit.Rule
		fields []string
	}{
		{
			"bad matcher",
			[]inhibit.Rule{{SourceMatchers: []string{`alertname="A"`, `x=~"("`}, TargetMatchers: []string{`a="b"`}}},
			[]string{"inhibit_rules[0].source_matchers[1]"},
		},
		{"no source", []inhibit.Rule{{TargetMatchers: []string{`a="b"`}}}, []string{"inhibit_rules[0].source_matchers"}},
		{"no target", []inhibit.Rule{{SourceMatchers: []string{`a="b"`}}}, []string{"inhibit_rules[0].target_matchers"}},
		{
			"bad equal label",
			[]inhibit.Rule{{SourceMatchers: []string{`a="b"`}, TargetMatchers: []string{`a="c"`}, Equal: []string{""}}},
			[]string{"inhibit_rules[0].equal[0]"},
		},
		{
			"bad regular expression",
			[]inhibit.Rule{{SourceMatchRE: map[string]string{"a": "("}, TargetMatchers: []string{`a="c"`}}},
			[]string{"inhibit_rules[0].source_match_re.a"},
		},
		{"the same rule twice", []inhibit.Rule{ok, ok}, []string{"inhibit_rules[1]"}},
		{"every problem at once", []inhibit.Rule{{}, ok}, []string{"inhibit_rules[0].source_matchers", "inhibit_rules[0].target_matchers"}},
		{"too many", make([]inhibit.Rule, inhibit.MaxRules+1), []string{"inhibit_rules"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			set, err := inhibit.Compile(tc.rules)
			require.Nil(t, set)
			var bad *server.BadRequestError
			require.ErrorAs(t, err, &bad)
			var fields []string
			for _, v := range bad.Violations {
				fields = append(fields, v.Field)
			}
			require.Equal(t, tc.fields, fields)
		})
	}
}

func TestParseFile(t *testing.T) {
	t.Parallel()
	// An alertmanager.yml: what is not inhibit_rules is not read.
	rules, set, err := inhibit.ParseFile([]byte(`
route:
  receiver: vigil
receivers:
  - name: vigil
inhibit_rules:
  - source_matchers: [alertname="NodeDown"]
    target_matchers:
      - alertname=~"KubePod.*"
    equal: [node]
  - source_match:
      severity: critical
    target_match:
      severity: warning
    equal: ['alertname', 'cluster']
`))
	require.NoError(t, err)
	require.Len(t, rules, 2)
	require.Equal(t, 2, set.Len())
	require.True(t, inhibited(set, []map[string]string{{"alertname": "NodeDown", "node": "n1"}}, l{"alertname": "KubePodCrashLooping", "node": "n1"}))
	require.True(t, inhibited(set, []map[string]string{{"alertname": "X", "severity": "critical", "cluster": "c"}},
		l{"alertname": "X", "severity": "warning", "cluster": "c"}))

	_, set, err = inhibit.ParseFile([]byte("route: {}\n"))
	require.NoError(t, err)
	require.Zero(t, set.Len())
	_, set, err = inhibit.ParseFile(nil)
	require.NoError(t, err)
	require.Zero(t, set.Len())

	for name, data := range map[string]string{
		"misspelt field":  "inhibit_rules:\n  - source_matchers: [a=\"b\"]\n    target_matchers: [a=\"c\"]\n    equals: [node]\n",
		"not a list":      "inhibit_rules: {}\n",
		"not YAML":        "inhibit_rules: [\n",
		"invalid matcher": "inhibit_rules:\n  - source_matchers: ['a=~\"(\"']\n    target_matchers: [a=\"c\"]\n",
	} {
		_, set, err := inhibit.ParseFile([]byte(data))
		require.Error(t, err, name)
		require.Nil(t, set, name)
	}
}

func TestCanonicalCompilesToTheSameSet(t *testing.T) {
	t.Parallel()
	set := compile(t, inhibit.Rule{
		SourceMatch: map[string]string{"alertname": "NodeDown"}, SourceMatchRE: map[string]string{"env": "prod|stage"},
		TargetMatchers: []string{`{alertname="A", team!="core"}`}, Equal: []string{"zone", "node", "zone"},
	})
	canon := set.Canonical()
	require.Equal(t, []inhibit.Rule{{
		SourceMatchers: []string{`alertname="NodeDown"`, `env=~"prod|stage"`},
		TargetMatchers: []string{`alertname="A"`, `team!="core"`},
		Equal:          []string{"node", "zone"},
	}}, canon)
	again := compile(t, canon...)
	require.Equal(t, set.IDs(), again.IDs())
}

// BenchmarkSet is the matching alone: an alert against 100 rules, as a
// source and as a target.
func BenchmarkSet(b *testing.B) {
	rules := make([]inhibit.Rule, 100)
	for i := range rules {
		rules[i] = inhibit.Rule{
			SourceMatchers: []string{`alertname="Down` + string(rune('a'+i%26)) + `"`, `severity="critical"`},
			TargetMatchers: []string{`alertname=~"Target.*"`, `severity!="critical"`},
			Equal:          []string{"node", "cluster"},
		}
		rules[i].Equal = append(rules[i].Equal, "l"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	set, err := inhibit.Compile(rules)
	require.NoError(b, err)
	lset := l{"alertname": "Target1", "severity": "warning", "node": "n1", "cluster": "c", "namespace": "shop", "pod": "p-1"}
	for b.Loop() {
		_ = set.Sources(lset)
		_ = set.Targets(lset)
	}
}
