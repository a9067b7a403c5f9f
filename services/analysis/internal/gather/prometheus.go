package gather

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
)

// The series the Prometheus gatherer records, by their signal label (what
// the rules look for). They are read from the metric names a cluster's
// usual exporters give:
//
//	cpu_utilization  cAdvisor's container_cpu_usage_seconds_total (the
//	                 kubelet's /metrics/cadvisor) over kube-state-metrics'
//	                 kube_pod_container_resource_limits{resource="cpu"},
//	                 or its ..._requests where no limit is set: a fraction
//	                 of the CPU the workload may use, 0..1 and more.
//	replicas         kube-state-metrics' kube_deployment_spec_replicas or
//	                 kube_statefulset_replicas: the desired count over time.
const (
	SignalCPU      = "cpu_utilization"
	SignalReplicas = "replicas"
)

// The window read around an incident: from promBefore before it to now,
// at most promSpan long, one sample every promStep, so a series is at
// most promSpan/promStep+1 points.
const (
	promBefore = 30 * time.Minute
	promSpan   = 90 * time.Minute
	promStep   = 30 * time.Second
	// promSeries is the most series one query may return: the queries
	// aggregate to one; more is a misconfigured Prometheus (duplicate
	// exporters), and the first are enough.
	promSeries = 3
)

// Prometheus reads a workload's metrics around an incident.
type Prometheus struct {
	api     promv1.API
	timeout time.Duration
}

// NewPrometheus returns a gatherer over the Prometheus HTTP API at url,
// sending token as a bearer token when it is not empty. timeout bounds
// each query (5 s when 0).
func NewPrometheus(url, token string, timeout time.Duration) (*Prometheus, error) {
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	rt := api.DefaultRoundTripper
	if token != "" {
		rt = bearer{token: token, next: rt}
	}
	c, err := api.NewClient(api.Config{Address: url, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus client for %s: %w", url, err)
	}
	return &Prometheus{api: promv1.NewAPI(c), timeout: timeout}, nil
}

type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// Gather reads ref's series from promBefore before at (the incident's
// start) until now into b, each with its item "metric/<signal>". A query
// that fails or finds nothing is a gap; the others still run.
func (p *Prometheus) Gather(ctx context.Context, ref *typesv1.ResourceRef, at, now time.Time, b *evidence.Bundle) {
	start := at.Add(-promBefore)
	end := now
	if end.After(start.Add(promSpan)) {
		end = start.Add(promSpan)
	}
	if !end.After(start) {
		end = start.Add(promStep)
	}
	r := promv1.Range{Start: start, End: end, Step: promStep}
	for _, q := range queries(ref) {
		if err := p.series(ctx, ref, q, r, b); err != nil {
			b.Gaps = append(b.Gaps, "prometheus "+q.signal+": "+err.Error())
		}
	}
}

type query struct{ signal, expr string }

// queries are ref's queries: cpu for any workload, replicas for those
// that scale.
func queries(ref *typesv1.ResourceRef) []query {
	ns, name := ref.GetNamespace(), ref.GetName()
	pods := fmt.Sprintf(`namespace=%q,pod=~%q`, ns, podPattern(ref.GetKind(), name))
	usage := fmt.Sprintf(`sum(rate(container_cpu_usage_seconds_total{%s,container!="",container!="POD"}[2m]))`, pods)
	res := func(kind string) string {
		return fmt.Sprintf(`sum(kube_pod_container_resource_%s{%s,resource="cpu"})`, kind, pods)
	}
	// `or` is evaluated at each step: the limits where they are set, the
	// requests where they are not.
	qs := []query{{SignalCPU, fmt.Sprintf(`%s / %s or %s / %s`, usage, res("limits"), usage, res("requests"))}}
	switch ref.GetKind() {
	case "Deployment":
		qs = append(qs, query{SignalReplicas, fmt.Sprintf(`max(kube_deployment_spec_replicas{namespace=%q,deployment=%q})`, ns, name)})
	case "StatefulSet":
		qs = append(qs, query{SignalReplicas, fmt.Sprintf(`max(kube_statefulset_replicas{namespace=%q,statefulset=%q})`, ns, name)})
	}
	return qs
}

// podPattern matches the names of the pods kind/name creates, and not those
// of a workload whose name merely starts the same ("shop" and "shop-db").
func podPattern(kind, name string) string {
	n := regexp.QuoteMeta(name)
	switch kind {
	case "Deployment": // <name>-<pod-template-hash>-<suffix>
		return n + `-[a-z0-9]{1,10}-[a-z0-9]{5}`
	case "StatefulSet": // <name>-<ordinal>
		return n + `-[0-9]+`
	case "DaemonSet", "Job": // <name>-<suffix>
		return n + `-[a-z0-9]{5}`
	default:
		return n + `-.+`
	}
}

func (p *Prometheus) series(ctx context.Context, ref *typesv1.ResourceRef, q query, r promv1.Range, b *evidence.Bundle) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	v, _, _, err := p.api.QueryRange(ctx, q.expr, r, promv1.WithTimeout(p.timeout))
	if err != nil {
		return fmt.Errorf("query %s: %w", q.expr, err)
	}
	m, ok := v.(model.Matrix)
	if !ok {
		return fmt.Errorf("query %s: a %s, not a matrix", q.expr, v.Type())
	}
	found := false
	for _, ss := range m[:min(len(m), promSeries)] {
		if len(ss.Values) == 0 {
			continue
		}
		s := evidence.Series{Query: q.expr, Labels: map[string]string{"signal": q.signal, "namespace": ref.GetNamespace(), strings.ToLower(ref.GetKind()): ref.GetName()}}
		for k, v := range ss.Metric {
			s.Labels[string(k)] = string(v)
		}
		s.Labels["signal"] = q.signal
		for _, sp := range ss.Values {
			s.Points = append(s.Points, evidence.Point{At: sp.Timestamp.Time().UTC(), Value: float64(sp.Value)})
		}
		b.Metrics = append(b.Metrics, s)
		if !found {
			last := s.Points[len(s.Points)-1]
			add(b, "metric/"+q.signal, "prometheus", summarize(ref, q.signal, s.Points), last.At)
		}
		found = true
	}
	if !found {
		return errors.New("no samples for " + strings.ToLower(ref.GetKind()) + "/" + ref.GetName() + " (are cAdvisor and kube-state-metrics scraped?)")
	}
	return nil
}

// summarize is a series in one line: its range and last value.
func summarize(ref *typesv1.ResourceRef, signal string, pts []evidence.Point) string {
	vals := make([]float64, len(pts))
	for i, p := range pts {
		vals[i] = p.Value
	}
	lo, hi, last := slices.Min(vals), slices.Max(vals), vals[len(vals)-1]
	w := strings.ToLower(ref.GetKind()) + "/" + ref.GetName()
	span := fmt.Sprintf("%d samples, %s to %s", len(pts), pts[0].At.Format(time.TimeOnly), pts[len(pts)-1].At.Format(time.TimeOnly))
	if signal == SignalCPU {
		return fmt.Sprintf("CPU use of %s, of its CPU limits (or requests): min %.0f %%, max %.0f %%, last %.0f %% (%s)", w, lo*100, hi*100, last*100, span)
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	return fmt.Sprintf("Desired replicas of %s: min %s, max %s, last %s (%s)", w, f(lo), f(hi), f(last), span)
}
