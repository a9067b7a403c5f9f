// Package bus is Vigil's only door to NATS JetStream: it provisions the
// streams, publishes typed events (protobuf body, Nats-Msg-Id = event id,
// W3C trace context in the headers) and runs durable pull consumers that hand
// typed, batched deliveries to business code and turn its answer into
// Ack, NakWithDelay or Term plus a copy on dlq.<subject>.
//
// Business code never sees a jetstream.Msg. A handler returns nil (Ack), an
// error wrapped with Permanent (Term and dead-letter), an error wrapped with
// RetryAfter (NakWithDelay of that long), or any other error (NakWithDelay
// with exponential backoff, dead-lettered once MaxDeliver is reached).
// A handler that works in several units (transactions) checks Stopping
// between them and answers ErrStopped for what it did not start: the
// message goes back at once, so shutdown waits for one unit, not a batch.
//
// Streams have limits (age and bytes, see StreamOptions); a durable
// consumer created for the first time starts at new events (or within
// ConsumerConfig.StartWithin), never at the beginning of history; a
// consumer that acts on the world skips events older than
// ConsumerConfig.MaxEventAge.
package bus
