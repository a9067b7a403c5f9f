package alertlabel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/vigil-ops/vigil/pkg/alertlabel"
)

func TestFingerprintMatchesAlertmanager(t *testing.T) {
	t.Parallel()
	// Captured from Alertmanager 0.25 (services/gateway/internal/source/alertmanager/testdata).
	labels := map[string]string{
		"alertname": "HighLatency", "instance": "checkout-1:8080", "service": "checkout", "severity": "critical",
	}
	assert.Equal(t, "7773b07b38325c6c", alertlabel.Fingerprint(labels))
}

func TestApp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{"app": "shop", "service": "api"}, "shop"},
		{map[string]string{"app_kubernetes_io_name": "shop", "service": "api"}, "shop"},
		{map[string]string{"service": "api"}, "api"},
		{map[string]string{"app": "", "service": "api"}, "api"},
		{map[string]string{"alertname": "X"}, ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, alertlabel.App(tt.labels), tt.labels)
	}
}
