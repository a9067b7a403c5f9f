package app_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/pkg/bus"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/testkit/browser"
	"github.com/vigil-ops/vigil/services/monitor"
)

// storedIncidents is how many incidents BenchmarkConsole stores first.
const storedIncidents = 10_000

// BenchmarkConsole measures the web console in a real Chromium against
// gateway and monitor with 10,000 incidents stored:
//
//   - first paint of the incident list (its first page: the newest 50),
//     and of a text search over all of them, each navigation timed by the
//     browser (Navigation and Paint Timing); the yardstick, in the same
//     run and browser, is the login page, which calls no API;
//   - the live update: an alert of a new group ingested → its incident
//     opened by monitor (incident.opened seen on the bus) → its row in
//     the open list's DOM, with no reload. Reported whole and from the
//     event on.
func BenchmarkConsole(b *testing.B) {
	nc, js := testkit.JetStream(b, testkit.NATS(b))
	a := runApp(b, app.Options{
		Services: []string{"monitor", "gateway"}, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		AdminToken: adminToken, DeployAddr: "127.0.0.1:1",
		Monitor: monitor.Options{GroupBy: []string{"alertname", "namespace"}},
	}, app.Deps{DatabaseURL: testkit.Postgres(b), NATS: nc, JetStream: js, Logger: discardLogger(), Keys: testKeys(b)})
	base := "http://" + a.HTTPAddr()
	conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(b, err)
	b.Cleanup(func() { _ = conn.Close() })
	admin := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken)
	addUsers(admin, b, conn, &gatewayv1.User{Name: "ada", Role: gatewayv1.Role_ROLE_ADMIN})

	// The store: one incident per group.
	alerts := gatewayv1.NewAlertServiceClient(conn)
	ingest := func(names ...string) {
		var as []*typesv1.Alert
		for _, n := range names {
			as = append(as, &typesv1.Alert{
				Labels:   map[string]string{"alertname": n, "namespace": "shop", "severity": "warning"},
				StartsAt: timestamppb.Now(),
			})
		}
		_, err := alerts.IngestAlerts(admin, &gatewayv1.IngestAlertsRequest{Alerts: as})
		require.NoError(b, err)
	}
	for i := 0; i < storedIncidents; i += 1000 {
		var names []string
		for j := i; j < i+1000; j++ {
			names = append(names, fmt.Sprintf("Stored%05d", j))
		}
		ingest(names...)
	}
	incidents := monitorv1.NewIncidentServiceClient(conn)
	require.Eventually(b, func() bool {
		n, token := 0, ""
		for {
			res, err := incidents.ListIncidents(admin, &monitorv1.ListIncidentsRequest{PageSize: 1000, PageToken: token})
			if err != nil {
				return false
			}
			n += len(res.GetIncidents())
			if token = res.GetNextPageToken(); token == "" {
				return n == storedIncidents
			}
		}
	}, 5*time.Minute, time.Second, "%d incidents stored", storedIncidents)

	tab := browser.New(b)
	tab.Do(time.Minute, signIn(base+"/login", "ada", `table#incidents`))
	// paint navigates to path and answers the browser's timings of it, in
	// ms from the navigation's start: the first byte, the first
	// contentful paint, the DOM ready.
	paint := func(path, ready string) [3]float64 {
		tab.Do(time.Minute, chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS(ready)))
		var v []float64
		require.Eventually(b, func() bool {
			v = browser.Get(tab, chromedp.Evaluate[[]float64](`(() => {
				const n = performance.getEntriesByType("navigation")[0];
				const p = performance.getEntriesByName("first-contentful-paint")[0];
				return [n.responseStart, p ? p.startTime : -1, n.domContentLoadedEventEnd];
			})()`))
			return len(v) == 3 && v[1] > 0 && v[2] > 0
		}, 10*time.Second, 20*time.Millisecond)
		return [3]float64{v[0], v[1], v[2]}
	}
	pages := []struct{ name, path, ready string }{
		{"login", "/login", `form[action="/login"]`},
		{"list", "/", `#incidents tbody tr[id^="incident-"]`},
		{"search", "/?q=Stored04242", `#incidents tbody tr[id^="incident-"]`},
	}
	fcp := map[string][]time.Duration{}
	ttfb := map[string][]time.Duration{}
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

	// The live list: the bus tells when each incident was opened.
	opened := map[string]time.Time{}
	var mu sync.Mutex
	sub, err := nc.Subscribe(bus.SubjectIncidentOpened, func(m *nats.Msg) {
		at := time.Now()
		evs, err := bus.Decode(m.Subject, m.Data)
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, e := range evs {
			if in, ok := e.(interface{ GetIncident() *typesv1.Incident }); ok {
				opened[in.GetIncident().GetGroupLabels()["alertname"]] = at
			}
		}
	})
	require.NoError(b, err)
	b.Cleanup(func() { _ = sub.Unsubscribe() })
	var whole, fromEvent []time.Duration

	i := 0
	for b.Loop() {
		i++
		for _, p := range pages {
			t := paint(p.path, p.ready)
			ttfb[p.name] = append(ttfb[p.name], ms(t[0]))
			fcp[p.name] = append(fcp[p.name], ms(t[1]))
		}
		// The open list; a new group's alert; its row, with no reload.
		name := fmt.Sprintf("Live%05d", i)
		tab.Do(time.Minute, chromedp.Navigate(base+"/?status=open"), chromedp.WaitVisible(chromedp.CSS(`table#incidents`)))
		browser.Get(tab, chromedp.Evaluate[bool](`(() => {
			window.vigilSeen = {};
			new MutationObserver(() => {
				for (const tr of document.querySelectorAll('#incidents tbody tr[id^="incident-"]')) {
					const m = tr.textContent.match(/Live\d{5}/);
					if (m && !(m[0] in window.vigilSeen)) { window.vigilSeen[m[0]] = Date.now(); }
				}
			}).observe(document.querySelector("#incidents"), {childList: true, subtree: true});
			return true;
		})()`))
		// The page's stream is open before the alert is sent.
		tab.Do(10*time.Second, chromedp.WaitVisible(chromedp.CSS(`table#incidents[data-live="on"]`)))
		sent := time.Now()
		ingest(name)
		var seenMs int64
		require.Eventually(b, func() bool {
			// window.vigilSeen is gone if the page reloaded: then this never holds.
			seenMs = browser.Get(tab, chromedp.Evaluate[int64](fmt.Sprintf(`(window.vigilSeen || {})[%q] || 0`, name)))
			return seenMs > 0
		}, 30*time.Second, 10*time.Millisecond, "%s live on the list", name)
		seen := time.UnixMilli(seenMs)
		mu.Lock()
		ev, ok := opened[name]
		mu.Unlock()
		require.True(b, ok, "incident.opened of %s", name)
		whole = append(whole, seen.Sub(sent))
		fromEvent = append(fromEvent, seen.Sub(ev))
	}
	for _, p := range pages {
		b.ReportMetric(quantile(fcp[p.name], 0.5), p.name+"-fcp-p50-ms")
		b.ReportMetric(quantile(ttfb[p.name], 0.5), p.name+"-ttfb-p50-ms")
		if p.name != "login" {
			b.ReportMetric(quantile(fcp[p.name], 0.5)/quantile(fcp["login"], 0.5), p.name+"/login-fcp")
		}
	}
	b.ReportMetric(quantile(whole, 0.5), "alert-to-row-p50-ms")
	b.ReportMetric(quantile(whole, 0.99), "alert-to-row-p99-ms")
	b.ReportMetric(quantile(fromEvent, 0.5), "event-to-row-p50-ms")
	b.ReportMetric(quantile(fromEvent, 0.99), "event-to-row-p99-ms")
}
