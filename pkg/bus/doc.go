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
//
// # A locked bus
//
// NATS lets in only Vigil's users, each with the permissions of its Role
// (Roles, permissions.go): a service publishes only its own subjects,
// dead-letters only what it consumes, and of the JetStream API may only
// create, look up and pull from its own durable consumers (named after it)
// and acknowledge their messages; replies come under its own inbox prefix
// (InboxPrefix), the only one it may subscribe to. Only admin creates,
// updates, purges or deletes streams (Provision runs as admin: `vigil up`
// in-process, `vigil nats provision` for an external server). Direct
// alert publishers log in as publisher, which may publish alert.fired and
// alert.resolved and nothing else. The one table configures the embedded
// server (ServerOptions.Users) and renders the configuration of an external
// one (Config, shipped as deploy/nats/nats.conf; a test fails when the two
// differ).
//
// The publish permission is the guarantee that a subject's events come from
// its owner. A Consumer checks it again, in case the server runs without
// the permissions or a service misnames itself: an event whose
// meta.producer is not a user allowed to publish its subject is not
// handed to the handler but terminated and dead-lettered with the reason
// (alert.fired and alert.resolved are exempt: direct publishers name
// themselves). An event of another stream smuggled into an EventBatch is
// dead-lettered under the batch's subject, the only one of that stream a
// consumer may dead-letter besides its own.
package bus
