package incident_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/monitor/internal/incident"
)

func TestGroupKey(t *testing.T) {
	t.Parallel()
	labels := map[string]string{"alertname": "HighLatency", "namespace": "shop", "instance": "a:80"}
	tests := []struct {
		name       string
		labels     map[string]string
		groupBy    []string
		wantKey    string
		wantLabels map[string]string
	}{
		{
			"default labels", labels,
			[]string{"alertname", "namespace"},
			`{alertname="HighLatency", namespace="shop"}`,
			map[string]string{"alertname": "HighLatency", "namespace": "shop"},
		},
		{
			"order of group_by does not matter", labels,
			[]string{"namespace", "alertname"},
			`{alertname="HighLatency", namespace="shop"}`,
			map[string]string{"alertname": "HighLatency", "namespace": "shop"},
		},
		{
			"missing label left out",
			map[string]string{"alertname": "X"},
			[]string{"alertname", "namespace"},
			`{alertname="X"}`,
			map[string]string{"alertname": "X"},
		},
		{
			"all labels", labels,
			[]string{"..."},
			`{alertname="HighLatency", instance="a:80", namespace="shop"}`, labels,
		},
		{
			"quotes escaped",
			map[string]string{"alertname": `a"b`},
			[]string{"alertname"},
			`{alertname="a\"b"}`,
			map[string]string{"alertname": `a"b`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, group := incident.GroupKey(tt.labels, tt.groupBy)
			assert.Equal(t, tt.wantKey, key)
			assert.Equal(t, tt.wantLabels, group)
		})
	}
}

func TestSeverityOf(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]typesv1.Severity{
		"critical": typesv1.Severity_SEVERITY_CRITICAL, "Page": typesv1.Severity_SEVERITY_CRITICAL,
		"warning": typesv1.Severity_SEVERITY_WARNING, "info": typesv1.Severity_SEVERITY_INFO,
		"": typesv1.Severity_SEVERITY_UNSPECIFIED, "whatever": typesv1.Severity_SEVERITY_UNSPECIFIED,
	} {
		assert.Equal(t, want, incident.SeverityOf(map[string]string{"severity": in}), in)
	}
}
