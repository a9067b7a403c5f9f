package source

import "github.com/prometheus/client_golang/prometheus"

// Metrics count, per source, the alerts accepted and the requests refused
// (by reason: unauthenticated, forbidden, too large, invalid, unknown
// source, subject of another team). The number of sources is what admins
// declare: the label's values stay few.
type Metrics struct {
	alerts  *prometheus.CounterVec
	refusal *prometheus.CounterVec
}

// NewMetrics returns the sources' metrics, registered with reg when set.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_gateway_source_alerts_accepted_total",
			Help: "Alerts accepted from a webhook source and stored on the bus.",
		}, []string{"source"}),
		refusal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_gateway_source_requests_refused_total",
			Help: "Webhook requests a source refused, by reason.",
		}, []string{"source", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.alerts, m.refusal)
	}
	return m
}

func (m *Metrics) accepted(src string, n int) {
	if m != nil {
		m.alerts.WithLabelValues(src).Add(float64(n))
	}
}

func (m *Metrics) refused(src, reason string) {
	if m != nil {
		m.refusal.WithLabelValues(src, reason).Inc()
	}
}
