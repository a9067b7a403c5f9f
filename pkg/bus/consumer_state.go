package bus

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// consumerState exports, at each scrape, what JetStream says of the
// process's durable consumers: the events that wait for them (their lag),
// those out and not yet acknowledged, and those of these redelivered. The
// replicas of a service share one durable consumer and each reports it,
// so read it with max by (stream, consumer).
type consumerState struct {
	mu   sync.Mutex
	cons []*Consumer

	pending, ackPending, redelivered *prometheus.Desc
}

// stateTimeout bounds each consumer's info request: a scrape while NATS is
// away leaves the consumer out rather than hang.
const stateTimeout = 2 * time.Second

func newConsumerState() *consumerState {
	labels := []string{"stream", "consumer"}
	return &consumerState{
		pending: prometheus.NewDesc("vigil_bus_consumer_pending",
			"Events of the stream that match the durable consumer and were not delivered yet: its lag.", labels, nil),
		ackPending: prometheus.NewDesc("vigil_bus_consumer_ack_pending",
			"Deliveries of the durable consumer that are out and not yet acknowledged.", labels, nil),
		redelivered: prometheus.NewDesc("vigil_bus_consumer_redelivered",
			"Deliveries of the durable consumer out and not yet acknowledged that were delivered before.", labels, nil),
	}
}

// track adds c to the consumers whose state m exports (none without a
// registry).
func (m *Metrics) track(c *Consumer) {
	if m == nil || m.reg == nil {
		return
	}
	m.stateOnce.Do(func() {
		m.state = newConsumerState()
		m.reg.MustRegister(m.state)
	})
	m.state.track(c)
}

func (s *consumerState) track(c *Consumer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cons = append(s.cons, c)
}

func (s *consumerState) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.pending
	ch <- s.ackPending
	ch <- s.redelivered
}

func (s *consumerState) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	cons := append([]*Consumer(nil), s.cons...)
	s.mu.Unlock()
	seen := map[[2]string]bool{}
	for _, c := range cons {
		// Creating the consumer holds the lock: it is left out until made.
		if !c.mu.TryLock() {
			continue
		}
		jc := c.cons
		c.mu.Unlock()
		key := [2]string{c.stream, c.cfg.Name}
		if jc == nil || seen[key] {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
		info, err := jc.Info(ctx)
		cancel()
		if err != nil {
			continue
		}
		seen[key] = true
		ch <- prometheus.MustNewConstMetric(s.pending, prometheus.GaugeValue, float64(info.NumPending), key[0], key[1])
		ch <- prometheus.MustNewConstMetric(s.ackPending, prometheus.GaugeValue, float64(info.NumAckPending), key[0], key[1])
		ch <- prometheus.MustNewConstMetric(s.redelivered, prometheus.GaugeValue, float64(info.NumRedelivered), key[0], key[1])
	}
}
