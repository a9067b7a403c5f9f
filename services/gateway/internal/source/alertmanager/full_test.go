package alertmanager_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/gateway/internal/grpcapi"
	"github.com/vigil-ops/vigil/services/gateway/internal/ingest"
	"github.com/vigil-ops/vigil/services/gateway/internal/source"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/alertmanager"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/sourcetest"
)

// A full ALERTS stream refuses new alerts (discard new) instead of
// dropping the oldest, which monitor may not have read: the webhook that
// does not fit is answered 503 with Retry-After and stores nothing, every
// alert answered 202 before it is on the stream, gRPC says Unavailable
// with RetryInfo, the refusal is counted, and once there is room again
// (the oldest aged out; here purged) alerts are accepted again.
func TestFullStreamAnswers503WithRetryAfter(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATSWithStreams(t, bus.StreamOptions{MaxBytes: 16 << 10}))
	reg := prometheus.NewRegistry()
	in := ingest.New(bus.NewBatcher(bus.NewPublisher(js, nil), ingest.Producer), nil, reg)
	h := &source.Handler{
		Source:   alertmanager.Source(source.Keys{Auth: auth.AdminToken(token)}),
		Ingester: in, MaxBytes: 1 << 20, Metrics: source.NewMetrics(reg), Log: testkit.Logger(t),
	}
	body := fixture(t, "firing_with_resolved.json")

	accepted := 0
	for {
		rec, p := sourcetest.Post(t, h, body, sourcetest.Bearer(token))
		if rec.Code == http.StatusAccepted {
			accepted++
			require.Less(t, accepted, 1000, "a 16 KiB stream never filled")
			continue
		}
		require.Equal(t, http.StatusServiceUnavailable, rec.Code)
		assert.Equal(t, "30", rec.Header().Get("Retry-After"))
		assert.Contains(t, p.Detail, "alert stream is full")
		break
	}
	require.Positive(t, accepted)
	assert.Len(t, sourcetest.Stored(t, js), 2*accepted, "every alert answered 202 is stored; the refused webhook's are not")
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP vigil_gateway_alerts_refused_stream_full_total Alerts refused (503 with Retry-After) because the ALERTS stream is full: monitor is far behind, or the stream is too small for the alerts of its max age.
# TYPE vigil_gateway_alerts_refused_stream_full_total counter
vigil_gateway_alerts_refused_stream_full_total 2
# HELP vigil_gateway_source_requests_refused_total Webhook requests a source refused, by reason.
# TYPE vigil_gateway_source_requests_refused_total counter
vigil_gateway_source_requests_refused_total{reason="stream full",source="alertmanager"} 1
`), "vigil_gateway_alerts_refused_stream_full_total", "vigil_gateway_source_requests_refused_total"), "the refused webhook and its two alerts are counted")

	_, err := grpcapi.NewAlertServer(in).IngestAlerts(t.Context(), &gatewayv1.IngestAlertsRequest{Alerts: []*typesv1.Alert{
		{Labels: map[string]string{"alertname": "Full"}, StartsAt: timestamppb.Now()},
	}})
	st := status.Convert(err)
	require.Equal(t, codes.Unavailable, st.Code())
	assert.Equal(t, "30", server.RetryAfter(st), "gRPC says when to retry; REST turns it into Retry-After")

	// Room again: accepted.
	stream, err := js.Stream(t.Context(), "ALERTS")
	require.NoError(t, err)
	require.NoError(t, stream.Purge(t.Context()))
	rec, _ := sourcetest.Post(t, h, body, sourcetest.Bearer(token))
	require.Equal(t, http.StatusAccepted, rec.Code)
	assert.Len(t, sourcetest.Stored(t, js), 2)
}
