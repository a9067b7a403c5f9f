package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/telemetry"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/gateway"
)

// BenchmarkWebhookIngest measures durable ingest: Alertmanager webhooks of
// 1 and 100 alerts from 16 and 64 concurrent senders, each answered 202
// only after JetStream (file storage, fsync on every write) stored all its
// alerts. Reported as alerts/s.
func BenchmarkWebhookIngest(b *testing.B) {
	a := benchGateway(b)
	url := "http://" + a.HTTPAddr() + "/api/v1/webhooks/alertmanager"
	ingestLoad(b, url, "Bearer "+adminToken, webhookBody, http.StatusAccepted)
}

// benchGateway runs the gateway alone, durable as `vigil up` runs it.
func benchGateway(b *testing.B) *app.App {
	nc, js := testkit.JetStream(b, testkit.NATS(b))
	ctx, cancel := context.WithCancel(context.Background())
	// Spans recorded, nothing exported: as `vigil up` runs without
	// OTEL_EXPORTER_OTLP_ENDPOINT.
	stopTracing, err := telemetry.SetupTracing(ctx, "vigil", "")
	require.NoError(b, err)
	b.Cleanup(func() { _ = stopTracing(context.Background()) })
	a, err := app.New(ctx, app.Options{
		// More alerts than a test's streams hold, and a full ALERTS
		// refuses new ones (503).
		Streams:  bus.StreamOptions{MaxBytes: 1 << 30},
		Services: []string{"gateway"}, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		AdminToken: adminToken, MonitorAddr: "127.0.0.1:1", DeployAddr: "127.0.0.1:1",
		Gateway: gateway.Options{SentryClientSecret: sentrySecret},
	}, app.Deps{DatabaseURL: testkit.Postgres(b), NATS: nc, JetStream: js, Logger: discardLogger(), Keys: testKeys(b)})
	require.NoError(b, err)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	b.Cleanup(func() { cancel(); require.NoError(b, <-done) })
	return a
}

// benchSource is a webhook source as BenchmarkSourceIngest sends to it:
// its path, request n's body of k alerts in the sender's own format, and
// the sender's credentials for that body (a key, or a signature of it).
type benchSource struct {
	path string
	body func(n int64, alerts int) []byte
	auth func(r *http.Request, body []byte)
}

func bearerAdmin(r *http.Request, _ []byte) { r.Header.Set("Authorization", "Bearer "+adminToken) }

// benchSources are every webhook source of alerts, by name: a source
// added to the gateway adds its row here.
var benchSources = map[string]benchSource{
	"alertmanager": {"/api/v1/webhooks/alertmanager", webhookBody, bearerAdmin},
	"grafana":      {"/api/v1/webhooks/grafana", grafanaBenchBody, bearerAdmin},
	"sentry":       {"/api/v1/webhooks/sentry", sentryBenchBody, sentryBenchSign},
	// Declared by BenchmarkSourceIngest (declareBenchSource): Alertmanager's
	// body read through a CEL mapping, as an admin would map any JSON.
	"generic": {"/api/v1/webhooks/sources/bench", webhookBody, bearerAdmin},
}

// declareBenchSource declares the generic source of benchSources through
// the API: Alertmanager's webhook body mapped field by field.
func declareBenchSource(b *testing.B, a *app.App) {
	b.Helper()
	mapping := map[string]any{
		"alerts": "body.alerts",
		"labels": map[string]string{
			"alertname": "item.labels.alertname", "namespace": "item.labels.namespace",
			"instance": "item.labels.instance", "severity": "item.labels.severity",
		},
		"annotations": map[string]string{"summary": "item.annotations.summary"},
		"status":      "item.status",
		"starts_at":   "item.startsAt",
	}
	body, err := json.Marshal(map[string]any{
		"source": map[string]any{"name": "bench", "type": "generic", "auth": "key", "generic": map[string]any{"mapping": mapping}},
	})
	require.NoError(b, err)
	req, err := http.NewRequest(http.MethodPost, "http://"+a.HTTPAddr()+"/api/v1/sources", bytes.NewReader(body))
	require.NoError(b, err)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(b, err)
	msg, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(b, http.StatusOK, resp.StatusCode, "%s", msg)
}

// oneAlertPerRequest are the sources whose senders never put more than
// one alert in a request (Sentry: one event or issue per webhook).
var oneAlertPerRequest = map[string]bool{"sentry": true}

// BenchmarkSourceIngest measures every webhook source next to
// Alertmanager's in one run: 16 senders, 1 and 100 alerts per request,
// through the real gateway onto JetStream, alerts/s. The sources take
// turns at each size, so a drift of the machine spreads over all of them.
func BenchmarkSourceIngest(b *testing.B) {
	a := benchGateway(b)
	declareBenchSource(b, a)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	names := slices.Sorted(maps.Keys(benchSources))
	for _, perRequest := range []int{1, 100} {
		for _, name := range names {
			src := benchSources[name]
			if oneAlertPerRequest[name] && perRequest > 1 {
				continue
			}
			b.Run(fmt.Sprintf("alerts=%d/source=%s", perRequest, name), func(b *testing.B) {
				sendLoad(b, client, 16, perRequest, "http://"+a.HTTPAddr()+src.path, src.body, src.auth, http.StatusAccepted)
			})
		}
	}
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
	setAuth := func(r *http.Request, _ []byte) {
		if authorization != "" {
			r.Header.Set("Authorization", authorization)
		}
	}
	for _, senders := range []int{16, 64} {
		for _, perRequest := range []int{1, 100} {
			b.Run(fmt.Sprintf("senders=%d/alerts=%d", senders, perRequest), func(b *testing.B) {
				sendLoad(b, client, senders, perRequest, url, body, setAuth, want)
			})
		}
	}
}

// sendLoad posts body(seq, perRequest) to url from senders concurrent
// senders until b.N requests are answered want, and reports alerts/s.
func sendLoad(b *testing.B, client *http.Client, senders, perRequest int, url string, body func(int64, int) []byte, setAuth func(*http.Request, []byte), want int) {
	var seq atomic.Int64
	b.SetParallelism(senders / runtime.GOMAXPROCS(0))
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			data := body(seq.Add(1), perRequest)
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(data))
			setAuth(req, data)
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

// grafanaBenchBody is webhookBody's alerts as Grafana's webhook contact point
// sends them: with values, links, and the notification's rendered message
// (Grafana's default template lists every alert), which makes its bodies
// about twice Alertmanager's.
func grafanaBenchBody(n int64, alerts int) []byte {
	var sb, msg strings.Builder
	msg.WriteString("**Firing**\\n")
	for i := range alerts {
		fmt.Fprintf(&msg, "\\nValue: B=%d.5, C=1\\nLabels:\\n - alertname = Bench\\n - instance = i-%d-%d\\n - namespace = ns%d\\n - severity = warning\\nAnnotations:\\n - summary = benchmark alert\\nSource: http://grafana:3000/alerting/grafana/bench/view\\nSilence: http://grafana:3000/alerting/silence/new?alertmanager=grafana\\nDashboard: http://grafana:3000/d/bench\\nPanel: http://grafana:3000/d/bench?viewPanel=2\\n", i, n, i, i%10)
	}
	fmt.Fprintf(&sb, `{"receiver":"vigil","status":"firing","orgId":1,"version":"1","groupKey":"{}/{__grafana_receiver__=\"vigil\"}:{alertname=\"Bench\"}","truncatedAlerts":0,"groupLabels":{"alertname":"Bench"},"commonLabels":{"alertname":"Bench"},"commonAnnotations":{},"externalURL":"http://grafana:3000/","title":"[FIRING:%d] Bench","state":"alerting","message":"%s","alerts":[`, alerts, msg.String())
	for i := range alerts {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"status":"firing",%s,"endsAt":"0001-01-01T00:00:00Z","fingerprint":"%016x","silenceURL":"http://grafana:3000/alerting/silence/new?alertmanager=grafana","dashboardURL":"http://grafana:3000/d/bench","panelURL":"http://grafana:3000/d/bench?viewPanel=2","values":{"B":%d.5,"C":1}}`, benchAlert(n, i), n<<8|int64(i), i)
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}
