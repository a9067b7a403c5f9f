package alertmanager_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway/internal/source"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/alertmanager"
)

// FuzzFormat is the source as the webhook handler runs it: whatever the
// body, Format.Parse and then the shared limits either refuse it with
// described field violations (a 400) or give alerts the bus may carry:
// Alertmanager's source, a status, a start, an end only when resolved, and
// a truncation count within bounds.
func FuzzFormat(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(f, err)
	for _, file := range files {
		f.Add(readFixture(f, filepath.Base(file)))
	}
	f.Add([]byte(`{"version":"4","status":"firing","truncatedAlerts":18446744073709551615,"alerts":[{"status":"firing","labels":{"a":"b"},"startsAt":"2026-01-01T00:00:00Z","endsAt":"2026-01-01T00:00:01Z"}]}`))
	f.Add([]byte(`{"version":"4","status":"resolved","alerts":[{"status":"resolved","labels":{"":"x"},"startsAt":"2026-01-01T00:00:00Z","endsAt":"2026-01-01T00:00:01Z"}]}`))

	f.Fuzz(func(t *testing.T, body []byte) {
		batch, err := alertmanager.Format{}.Parse(body, nil)
		if err == nil {
			err = source.Validate(batch.Alerts)
		}
		if err != nil {
			bad, ok := errors.AsType[*server.BadRequestError](err)
			require.True(t, ok, "a refusal is a 400 with violations: %v", err)
			require.NotEmpty(t, bad.Violations)
			for _, v := range bad.Violations {
				require.NotEmpty(t, v.Description)
			}
			return
		}
		require.NotEmpty(t, batch.Alerts)
		require.GreaterOrEqual(t, batch.Truncated, 0)
		require.LessOrEqual(t, batch.Truncated, source.MaxAlerts)
		for _, a := range batch.Alerts {
			require.Equal(t, typesv1.AlertSource_ALERT_SOURCE_ALERTMANAGER, a.GetSource())
			require.NotEmpty(t, a.GetLabels())
			require.NotNil(t, a.GetStartsAt())
			switch a.GetStatus() {
			case typesv1.AlertStatus_ALERT_STATUS_FIRING:
				require.Nil(t, a.GetEndsAt(), "a firing alert has no end")
			case typesv1.AlertStatus_ALERT_STATUS_RESOLVED:
				require.NotNil(t, a.GetEndsAt())
				require.False(t, a.GetEndsAt().AsTime().Before(a.GetStartsAt().AsTime()))
			default:
				t.Fatalf("status %v", a.GetStatus())
			}
		}
	})
}
