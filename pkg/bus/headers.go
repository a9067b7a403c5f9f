package bus

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
)

// Header names set on every event message.
const (
	HeaderContentType = "Content-Type"
	HeaderEventType   = "Vigil-Event-Type"
	contentType       = "application/protobuf"

	// JetStream atomic batch publish (NATS 2.12+).
	headerBatchID     = "Nats-Batch-Id"
	headerBatchSeq    = "Nats-Batch-Sequence"
	headerBatchCommit = "Nats-Batch-Commit"

	headerDLQReason   = "Vigil-Dlq-Reason"
	headerDLQConsumer = "Vigil-Dlq-Consumer"
	headerDLQSubject  = "Vigil-Dlq-Subject"
	// The EventBatch an event was dead-lettered from.
	headerDLQBatch = "Vigil-Dlq-Batch"
)

// headerCarrier lets the OpenTelemetry propagator read and write NATS
// headers with their W3C names (traceparent, tracestate) as they are.
type headerCarrier nats.Header

func (c headerCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c headerCarrier) Set(key, value string) { c[key] = []string{value} }

func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// propagator is fixed to W3C trace context: the bus's wire format does not
// depend on how the process configured OpenTelemetry.
var propagator = propagation.TraceContext{}

func injectTrace(ctx context.Context, h nats.Header) {
	propagator.Inject(ctx, headerCarrier(h))
}

func extractTrace(ctx context.Context, h nats.Header) context.Context {
	return propagator.Extract(ctx, headerCarrier(h))
}
