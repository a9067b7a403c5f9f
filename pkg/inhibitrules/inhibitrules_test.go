package inhibitrules_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	"github.com/vigil-ops/vigil/pkg/inhibitrules"
)

// An alertmanager.yml's inhibit_rules are read as they are written (the
// deprecated maps as matchers), and what Format writes reads back.
func TestParseAndFormat(t *testing.T) {
	t.Parallel()
	rules, err := inhibitrules.Parse([]byte(`
route: {receiver: vigil}
inhibit_rules:
  - source_matchers: [alertname="NodeDown"]
    target_matchers: [alertname=~"KubePod.*"]
    equal: [node]
  - source_match: {severity: critical}
    target_match_re: {severity: 'warning|info'}
    equal: [cluster]
`))
	require.NoError(t, err)
	want := []*monitorv1.InhibitRule{
		{SourceMatchers: []string{`alertname="NodeDown"`}, TargetMatchers: []string{`alertname=~"KubePod.*"`}, Equal: []string{"node"}},
		{SourceMatchers: []string{`"severity"="critical"`}, TargetMatchers: []string{`"severity"=~"warning|info"`}, Equal: []string{"cluster"}},
	}
	requireRules(t, want, rules)

	doc, err := inhibitrules.Format(want)
	require.NoError(t, err)
	back, err := inhibitrules.Parse(doc)
	require.NoError(t, err)
	requireRules(t, want, back)

	for name, data := range map[string]string{
		"no inhibit_rules": "route: {}\n",
		"misspelt field":   "inhibit_rules:\n  - source_matchers: [a=\"b\"]\n    equals: [node]\n",
		"not YAML":         "inhibit_rules: [\n",
		"not a mapping":    "- a\n",
	} {
		_, err := inhibitrules.Parse([]byte(data))
		require.Error(t, err, name)
	}
	none, err := inhibitrules.Parse([]byte("inhibit_rules: []\n"))
	require.NoError(t, err)
	require.Empty(t, none)
}

func requireRules(t *testing.T, want, got []*monitorv1.InhibitRule) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.True(t, proto.Equal(want[i], got[i]), "rule %d: want %v, got %v", i, want[i], got[i])
	}
}
