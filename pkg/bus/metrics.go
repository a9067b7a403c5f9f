package bus

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the bus's Prometheus metrics. One value serves every
// publisher and consumer of a process.
type Metrics struct {
	once sync.Once
	m    *metrics
	reg  prometheus.Registerer

	stateOnce sync.Once
	state     *consumerState // the consumers' state on the server
}

// NewMetrics registers the bus metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{reg: reg}
}

type metrics struct {
	published     *prometheus.CounterVec
	publishErrors prometheus.Counter
	handled       *prometheus.CounterVec
	stale         *prometheus.CounterVec
	batchSize     *prometheus.HistogramVec
	handleSeconds *prometheus.HistogramVec
	waiting       *prometheus.GaugeVec
	waitSeconds   *prometheus.CounterVec
	retries       *prometheus.CounterVec
	trimmed       *prometheus.CounterVec
	trimErrors    *prometheus.CounterVec
}

func (m *Metrics) get() *metrics {
	if m == nil {
		return newMetrics(nil)
	}
	m.once.Do(func() { m.m = newMetrics(m.reg) })
	return m.m
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_bus_published_total",
			Help: "Events stored on JetStream, by stream and subject.",
		}, []string{"stream", "subject"}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_bus_publish_errors_total",
			Help: "Events JetStream did not acknowledge.",
		}),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_bus_handled_total",
			Help: "Deliveries handled by consumers, by consumer and outcome (ack, retry, dead_letter, stopped).",
		}, []string{"consumer", "outcome"}),
		stale: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_bus_stale_events_total",
			Help: "Deliveries acknowledged without handling because their event was older than the consumer's max event age, by consumer and subject.",
		}, []string{"consumer", "subject"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vigil_bus_batch_size",
			Help:    "Deliveries handled together in one batch.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500},
		}, []string{"consumer"}),
		handleSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vigil_bus_batch_duration_seconds",
			Help:    "Time to handle one batch.",
			Buckets: prometheus.DefBuckets,
		}, []string{"consumer"}),
		waiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_bus_dependency_waiting_events",
			Help: "Events a consumer holds because a dependency (postgres) is unavailable, by consumer and dependency: not failures, tried again until it is back.",
		}, []string{"consumer", "dependency"}),
		waitSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_bus_dependency_wait_seconds_total",
			Help: "Time consumers' batches waited for an unavailable dependency, by consumer and dependency.",
		}, []string{"consumer", "dependency"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_bus_dependency_retries_total",
			Help: "Tries of batches held for an unavailable dependency, by consumer and dependency.",
		}, []string{"consumer", "dependency"}),
		trimmed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_bus_trimmed_total",
			Help: "Events dropped from a stream kept only until consumed (ALERTS) because every consumer of it had acknowledged them, by stream. Each replica counts what it dropped.",
		}, []string{"stream"}),
		trimErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_bus_trim_errors_total",
			Help: "Failed tries to drop acknowledged events from a stream kept only until consumed, by stream: it then keeps them until its max age.",
		}, []string{"stream"}),
	}
	if reg != nil {
		reg.MustRegister(m.published, m.publishErrors, m.handled, m.stale, m.batchSize, m.handleSeconds,
			m.waiting, m.waitSeconds, m.retries, m.trimmed, m.trimErrors)
	}
	return m
}
