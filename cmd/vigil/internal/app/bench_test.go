package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/pkg/telemetry"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// BenchmarkWebhookIngest measures durable ingest: Alertmanager webhooks of
// 1 and 100 alerts from 16 and 64 concurrent senders, each answered 202
// only after JetStream (file storage, fsync on every write) stored all its
// alerts. Reported as alerts/s.
func BenchmarkWebhookIngest(b *testing.B) {
	nc, js := testkit.JetStream(b, testkit.NATS(b))
	ctx, cancel := context.WithCancel(context.Background())
	// Spans recorded, nothing exported: as `vigil up` runs without
	// OTEL_EXPORTER_OTLP_ENDPOINT.
	stopTracing, err := telemetry.SetupTracing(ctx, "vigil", "")
	require.NoError(b, err)
	b.Cleanup(func() { _ = stopTracing(context.Background()) })
	a, err := app.New(ctx, app.Options{
		Streams:  testkit.TestStreams,
		Services: []string{"gateway"}, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		AdminToken: adminToken, MonitorAddr: "127.0.0.1:1", DeployAddr: "127.0.0.1:1",
	}, app.Deps{DatabaseURL: testkit.Postgres(b), NATS: nc, JetStream: js, Logger: discardLogger(), Keys: testKeys(b)})
	require.NoError(b, err)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	b.Cleanup(func() { cancel(); require.NoError(b, <-done) })

	url := "http://" + a.HTTPAddr() + "/api/v1/webhooks/alertmanager"
	ingestLoad(b, url, "Bearer "+adminToken, webhookBody, http.StatusAccepted)
}

// BenchmarkAlertmanagerIngest is the yardstick of BenchmarkWebhookIngest:
// the same load, the same alerts, posted to the real Alertmanager's own
// API (POST /api/v2/alerts, as Prometheus sends them), which keeps alerts in
// memory and answers 200.
func BenchmarkAlertmanagerIngest(b *testing.B) {
	am := testkit.Alertmanager(b, "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n", "--log.level=warn")
	ingestLoad(b, am.URL+"/api/v2/alerts", "", postableBody, http.StatusOK)
}

// BenchmarkHTTPCeiling is the same load against an HTTP server that
// answers 202 without reading the body: what this machine's HTTP stack and
// load generator allow at most.
func BenchmarkHTTPCeiling(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	b.Cleanup(srv.Close)
	ingestLoad(b, srv.URL, "", webhookBody, http.StatusAccepted)
}

// ingestLoad posts body(seq, alertsPerRequest) to url from 16 and 64
// concurrent senders over keep-alive connections, 1 and 100 alerts per
// request, and reports alerts/s.
func ingestLoad(b *testing.B, url, authorization string, body func(int64, int) []byte, want int) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, senders := range []int{16, 64} {
		for _, perRequest := range []int{1, 100} {
			b.Run(fmt.Sprintf("senders=%d/alerts=%d", senders, perRequest), func(b *testing.B) {
				var seq atomic.Int64
				b.SetParallelism(senders / runtime.GOMAXPROCS(0))
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body(seq.Add(1), perRequest)))
						if authorization != "" {
							req.Header.Set("Authorization", authorization)
						}
						req.Header.Set("Content-Type", "application/json")
						resp, err := client.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						// Drained, so the connection is reused, as Alertmanager's client does.
						_, _ = io.Copy(io.Discard, resp.Body)
						_ = resp.Body.Close()
						if resp.StatusCode != want {
							b.Errorf("status %d", resp.StatusCode)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N*perRequest)/time.Since(start).Seconds(), "alerts/s")
			})
		}
	}
}

func webhookBody(n int64, alerts int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"version":"4","status":"firing","receiver":"vigil","groupKey":"{}:{alertname=\"Bench\"}","truncatedAlerts":0,"groupLabels":{"alertname":"Bench"},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am:9093","alerts":[`)
	for i := range alerts {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"status":"firing",%s,"endsAt":"0001-01-01T00:00:00Z","fingerprint":"%016x"}`, benchAlert(n, i), n<<8|int64(i))
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}

// postableBody is webhookBody's alerts as Alertmanager's API v2 takes them.
func postableBody(n int64, alerts int) []byte {
	var sb strings.Builder
	sb.WriteByte('[')
	for i := range alerts {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString("{" + benchAlert(n, i) + "}")
	}
	sb.WriteByte(']')
	return []byte(sb.String())
}

// benchAlert is alert i of request n, the members both formats share.
func benchAlert(n int64, i int) string {
	return fmt.Sprintf(`"labels":{"alertname":"Bench","namespace":"ns%d","instance":"i-%d-%d","severity":"warning"},"annotations":{"summary":"benchmark alert"},"startsAt":"2026-11-22T07:00:00Z","generatorURL":"http://prom:9090/graph"`, i%10, n, i)
}
