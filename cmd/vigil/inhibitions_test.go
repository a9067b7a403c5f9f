package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
)

// An alertmanager.yml's inhibit_rules are read as they are written (the
// deprecated maps as matchers), and what `get` prints applies back.
func TestInhibitRulesFile(t *testing.T) {
	t.Parallel()
	rules, err := parseInhibitRules([]byte(`
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

	var out bytes.Buffer
	printInhibitions(&out, &monitorv1.InhibitionRules{Version: 3, UpdatedBy: "ann", UpdatedAt: timestamppb.Now(), Rules: want})
	require.Contains(t, out.String(), "# Version 3, applied by ann")
	back, err := parseInhibitRules(out.Bytes())
	require.NoError(t, err)
	requireRules(t, want, back)

	for name, data := range map[string]string{
		"no inhibit_rules": "route: {}\n",
		"misspelt field":   "inhibit_rules:\n  - source_matchers: [a=\"b\"]\n    equals: [node]\n",
		"not YAML":         "inhibit_rules: [\n",
	} {
		_, err := parseInhibitRules([]byte(data))
		require.Error(t, err, name)
	}
	none, err := parseInhibitRules([]byte("inhibit_rules: []\n"))
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
