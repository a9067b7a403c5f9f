package gather_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
	"github.com/vigil-ops/vigil/services/analysis/internal/gather"
	"github.com/vigil-ops/vigil/services/analysis/internal/rules"
)

// cluster is what cAdvisor and kube-state-metrics would expose for a
// namespace, replayed: each scrape is the next 30 s of the 30 minutes
// before end, with its own timestamp, so a real Prometheus holds a past
// it was not running for. After that, each scrape repeats the last.
// step counts the scrapes.
type cluster struct {
	ns   string
	end  time.Time
	mu   sync.Mutex
	step int

	cpu, limits, requests, replicas *prometheus.Desc
}

const replaySteps = 60 // 30 min of 30 s

func newCluster(ns string, end time.Time) *cluster {
	return &cluster{
		ns: ns, end: end,
		cpu:      prometheus.NewDesc("container_cpu_usage_seconds_total", "cAdvisor", []string{"namespace", "pod", "container"}, nil),
		limits:   prometheus.NewDesc("kube_pod_container_resource_limits", "kube-state-metrics", []string{"namespace", "pod", "container", "resource", "unit"}, nil),
		requests: prometheus.NewDesc("kube_pod_container_resource_requests", "kube-state-metrics", []string{"namespace", "pod", "container", "resource", "unit"}, nil),
		replicas: prometheus.NewDesc("kube_deployment_spec_replicas", "kube-state-metrics", []string{"namespace", "deployment"}, nil),
	}
}

func (c *cluster) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.cpu
	ch <- c.limits
	ch <- c.requests
	ch <- c.replicas
}

func (c *cluster) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	i := min(c.step, replaySteps)
	c.step++
	c.mu.Unlock()
	at := c.end.Add(-time.Duration(replaySteps-i) * 30 * time.Second)
	// Counters of a container that has run for a while: rate() does
	// not extrapolate the replay's first samples back to zero.
	secs := 10_000 + float64(i)*30
	m := func(d *prometheus.Desc, t prometheus.ValueType, v float64, lv ...string) {
		ch <- prometheus.NewMetricWithTimestamp(at, prometheus.MustNewConstMetric(d, t, v, append([]string{c.ns}, lv...)...))
	}
	// shop (a Deployment): 0.9 cores of a 1-core limit. The pod-level
	// cgroup (container="") and another workload whose name starts the
	// same (the StatefulSet shop-db) are not shop's containers.
	m(c.cpu, prometheus.CounterValue, 0.9*secs, "shop-7d9c5b8f6d-x2v4k", "app")
	m(c.cpu, prometheus.CounterValue, 0.9*secs, "shop-7d9c5b8f6d-x2v4k", "")
	m(c.limits, prometheus.GaugeValue, 1, "shop-7d9c5b8f6d-x2v4k", "app", "cpu", "core")
	m(c.limits, prometheus.GaugeValue, 512<<20, "shop-7d9c5b8f6d-x2v4k", "app", "memory", "byte")
	m(c.cpu, prometheus.CounterValue, 4*secs, "shop-db-0", "db")
	m(c.limits, prometheus.GaugeValue, 0.5, "shop-db-0", "db", "cpu", "core")
	replicas := 2.0
	if i >= replaySteps-20 { // scaled up 10 minutes before the end
		replicas = 3
	}
	m(c.replicas, prometheus.GaugeValue, replicas, "shop")
	// api: 0.3 cores, requests 0.5 and no limit; no replicas series.
	m(c.cpu, prometheus.CounterValue, 0.3*secs, "api-5f6d7c8b9a-qw7rt", "app")
	m(c.requests, prometheus.GaugeValue, 0.5, "api-5f6d7c8b9a-qw7rt", "app", "cpu", "core")
}

// serveCluster serves c's /metrics and starts a real Prometheus scraping
// it; it returns once Prometheus has every replayed step: a target's
// scrapes are one after the other, so once the one after the last step
// began, the last step was stored.
func serveCluster(t *testing.T, c *cluster) *testkit.PrometheusServer {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	p := testkit.Prometheus(t, testkit.PrometheusScrapeConfig(srv.Listener.Addr().String(), "200ms"))
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.step > replaySteps+1
	}, 2*time.Minute, 100*time.Millisecond, "Prometheus did not scrape every replayed step")
	return p
}

func gatherUntil(t *testing.T, p *gather.Prometheus, ref *typesv1.ResourceRef, at, end time.Time, ok func(*evidence.Bundle) bool) *evidence.Bundle {
	t.Helper()
	var b *evidence.Bundle
	require.Eventually(t, func() bool {
		b = &evidence.Bundle{}
		p.Gather(t.Context(), ref, at, time.Now(), b)
		s, found := series(b, gather.SignalCPU)
		// Scraped samples are queryable once appended; the last step is
		// the replay's end.
		return found && !s.Points[len(s.Points)-1].At.Before(end) && ok(b)
	}, time.Minute, 200*time.Millisecond)
	return b
}

func series(b *evidence.Bundle, signal string) (evidence.Series, bool) {
	i := slices.IndexFunc(b.Metrics, func(s evidence.Series) bool { return s.Labels["signal"] == signal })
	if i < 0 {
		return evidence.Series{}, false
	}
	return b.Metrics[i], true
}

func item(b *evidence.Bundle, id string) (evidence.Item, bool) {
	i := slices.IndexFunc(b.Items, func(it evidence.Item) bool { return it.ID == id })
	if i < 0 {
		return evidence.Item{}, false
	}
	return b.Items[i], true
}

// Against a real Prometheus scraping cAdvisor- and kube-state-metrics-
// named series: the workload's cpu use over its limits (or its requests
// where it has none) and its desired replicas, each a series with its
// signal label and an item "metric/<signal>"; a series that is missing is
// a gap; an unreachable Prometheus is gaps, never a failure; the bearer
// token is sent.
func TestPrometheus(t *testing.T) {
	t.Parallel()
	end := time.Now().Truncate(30 * time.Second)
	at := end.Add(-6 * time.Minute) // the incident opened
	c := newCluster("shop-ns", end)
	p := serveCluster(t, c)
	// Prometheus behind a proxy that wants a bearer token.
	target, err := url.Parse(p.URL)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	authed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(authed.Close)
	prom, err := gather.NewPrometheus(authed.URL, "s3cret", 0)
	require.NoError(t, err)

	shop := &typesv1.ResourceRef{Cluster: "main", Namespace: "shop-ns", Kind: "Deployment", Name: "shop"}
	b := gatherUntil(t, prom, shop, at, end, func(b *evidence.Bundle) bool {
		s, ok := series(b, gather.SignalReplicas)
		return ok && s.Points[len(s.Points)-1].Value == 3
	})
	require.Empty(t, b.Gaps)
	require.Len(t, b.Metrics, 2)

	cpu, _ := series(b, gather.SignalCPU)
	require.Equal(t, map[string]string{"signal": "cpu_utilization", "namespace": "shop-ns", "deployment": "shop"}, cpu.Labels)
	require.Contains(t, cpu.Query, "container_cpu_usage_seconds_total")
	require.Contains(t, cpu.Query, "kube_pod_container_resource_limits")
	// The replay's 30 minutes at a 30 s step, and no more than the window
	// holds (30 min before the incident to now, at most 90 min, at 30 s).
	require.GreaterOrEqual(t, len(cpu.Points), 55)
	require.LessOrEqual(t, len(cpu.Points), 181)
	for _, pt := range cpu.Points {
		// rate() over [2m] sees less than 2 minutes at the replay's start,
		// and fewer samples 2 minutes after its end.
		if !pt.At.Before(end.Add(-(replaySteps*30-150)*time.Second)) && !pt.At.After(end) {
			require.InDelta(t, 0.9, pt.Value, 0.001, "only shop's containers, over its cpu limit: %v", pt)
		}
		require.LessOrEqual(t, pt.Value, 0.901, pt)
		require.False(t, pt.At.Before(at.Add(-30*time.Minute)), pt)
		require.False(t, pt.At.After(time.Now()), pt)
	}
	require.True(t, slices.IsSortedFunc(cpu.Points, func(a, b evidence.Point) int { return a.At.Compare(b.At) }))

	reps, _ := series(b, gather.SignalReplicas)
	require.Equal(t, "shop", reps.Labels["deployment"])
	require.InDelta(t, 2.0, reps.Points[0].Value, 0)
	require.InDelta(t, 3.0, reps.Points[len(reps.Points)-1].Value, 0)

	it, ok := item(b, "metric/cpu_utilization")
	require.True(t, ok, b.Items)
	require.Equal(t, "prometheus", it.Source)
	require.Contains(t, it.Summary, "deployment/shop")
	// The last step may be past the replay's end, where rate() fades.
	require.Regexp(t, `^CPU use of deployment/shop, of its CPU limits \(or requests\): min \d+ %, max 90 %, last \d+ % \(\d+ samples, `, it.Summary)
	require.Equal(t, cpu.Points[len(cpu.Points)-1].At, it.At)
	it, ok = item(b, "metric/replicas")
	require.True(t, ok, b.Items)
	require.Contains(t, it.Summary, "Desired replicas of deployment/shop: min 2, max 3, last 3")

	t.Run("requests where no limit is set; no replicas series is a gap", func(t *testing.T) {
		api := &typesv1.ResourceRef{Cluster: "main", Namespace: "shop-ns", Kind: "Deployment", Name: "api"}
		b := &evidence.Bundle{}
		prom.Gather(t.Context(), api, at, time.Now(), b)
		s, ok := series(b, gather.SignalCPU)
		require.True(t, ok, b.Gaps)
		require.InDelta(t, 0.6, s.Points[len(s.Points)-1].Value, 0.001)
		require.Len(t, b.Metrics, 1)
		require.Len(t, b.Gaps, 1)
		require.Contains(t, b.Gaps[0], "prometheus replicas: no samples for deployment/api")
		_, ok = item(b, "metric/replicas")
		require.False(t, ok)
	})

	t.Run("without the token: gaps, no series", func(t *testing.T) {
		noToken, err := gather.NewPrometheus(authed.URL, "", 0)
		require.NoError(t, err)
		b := &evidence.Bundle{}
		noToken.Gather(t.Context(), shop, at, time.Now(), b)
		require.Empty(t, b.Metrics)
		require.Empty(t, b.Items)
		require.Len(t, b.Gaps, 2)
		require.Contains(t, b.Gaps[0], "prometheus cpu_utilization:")
		require.Contains(t, b.Gaps[0], "401")
	})

	t.Run("unreachable: gaps, no series", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		down, err := gather.NewPrometheus("http://"+addr, "", time.Second)
		require.NoError(t, err)
		b := &evidence.Bundle{}
		down.Gather(t.Context(), shop, at, time.Now(), b)
		require.Empty(t, b.Metrics)
		require.Len(t, b.Gaps, 2)
		require.Contains(t, b.Gaps[1], "prometheus replicas:")
	})
}

// End to end: a real Deployment whose pods are ready and a real
// Prometheus saying its cpu has been saturated: the rules propose to scale
// it, citing the cpu series and the workload.
func TestPrometheusSaturationRule(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	ctx := t.Context()
	_, err := k.Clientset.AppsV1().Deployments(ns).Create(ctx, deployment(ns, "shop", "registry.example.com/shop:1", 2), metav1.CreateOptions{})
	require.NoError(t, err)

	end := time.Now().Truncate(30 * time.Second)
	// The rule looks from 15 min before the incident to 5 after: all
	// within the replay.
	at := end.Add(-6 * time.Minute)
	p := serveCluster(t, newCluster(ns, end))
	prom, err := gather.NewPrometheus(p.URL, "", 0)
	require.NoError(t, err)
	ref := &typesv1.ResourceRef{Cluster: "main", Namespace: ns, Kind: "Deployment", Name: "shop"}

	var b *evidence.Bundle
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		b = &evidence.Bundle{Incident: evidence.Incident{ID: "inc-1", OpenedAt: at}, Target: ref}
		gather.Gather(ctx, k.Clientset, ref, gather.Limits{}, b, time.Now())
		require.NotNil(c, b.Workload)
		require.Equal(c, int32(2), b.Workload.ReadyReplicas)
		prom.Gather(ctx, ref, at, time.Now(), b)
		s, ok := series(b, gather.SignalCPU)
		require.True(c, ok, b.Gaps)
		require.False(c, s.Points[len(s.Points)-1].At.Before(end))
	}, time.Minute, 200*time.Millisecond)

	res, err := rules.New(rules.Options{}).Analyze(ctx, b)
	require.NoError(t, err)
	require.Equal(t, "saturation", res.Rule, res.Summary)
	require.Equal(t, typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT, res.Proposal.GetAction())
	require.Equal(t, int32(3), res.Proposal.GetScale().GetReplicas())
	require.Contains(t, res.Evidence, "metric/cpu_utilization")
	require.Contains(t, res.Evidence, "deployment/shop")
	require.Contains(t, res.Summary, "at least 90 %")
}
