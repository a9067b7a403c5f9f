package bus

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrStreamFull is what publishing answers, wrapped, when JetStream
// refused events because their stream is full and takes no more until
// its consumers catch up (see trimmed) or its oldest events age out
// (MaxAge). ALERTS refuses so (discard new,
// see discard): the gateway answers 503 with Retry-After then, and never
// accepts an alert that the stream would drop unconsumed to make room.
var ErrStreamFull = errors.New("bus: stream full")

// jsErrCodeStoreFailed is JetStream's code for a message it did not
// store, the reason in its description (nats.go names no constant).
const jsErrCodeStoreFailed = 10077

// discard is a stream's policy when it holds its MaxBytes. ALERTS refuses
// new events: an alert is acknowledged to its sender (202) once stored,
// and dropping the oldest would drop alerts monitor may not have read
// yet -- a loss nobody sees. The other streams are written by Vigil's own
// outbox relays, which cannot answer anyone 503; they drop the oldest,
// long consumed in any but a broken installation.
func discard(stream string) jetstream.DiscardPolicy {
	if stream == "ALERTS" {
		return jetstream.DiscardNew
	}
	return jetstream.DiscardOld
}

// markFull wraps err with ErrStreamFull when JetStream refused a message
// because its stream is full.
func markFull(err error) error {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != jsErrCodeStoreFailed {
		return err
	}
	if d := apiErr.Description; strings.Contains(d, "maximum bytes exceeded") || strings.Contains(d, "maximum messages exceeded") {
		return fmt.Errorf("%w: %w", ErrStreamFull, err)
	}
	return err
}
