package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ProvisionCommand is what an operator runs, once per install and after
// each upgrade, to create or update the streams on an external NATS.
const ProvisionCommand = "VIGIL_NATS_USER=admin VIGIL_NATS_PASSWORD=... vigil nats provision"

// Waiting for the streams retries from minProvisionedRetry, doubling up to
// maxProvisionedRetry: a service started with its NATS before the streams
// were made starts seconds after they are.
const (
	minProvisionedRetry = time.Second
	maxProvisionedRetry = 15 * time.Second
)

// WaitProvisioned returns once the streams service consumes from (its
// durable consumers are named after it) exist, or with ctx's error. A
// service may not create streams (only admin may), so one started before
// `vigil nats provision` would fail to create its consumers: it waits
// instead, saying once what to run, rather than exit and be restarted over
// and over. Its consumers' info, which its permissions allow, tells a
// missing stream apart.
func WaitProvisioned(ctx context.Context, js jetstream.JetStream, service string, log *slog.Logger) error {
	streams, err := consumedStreams(service)
	if err != nil {
		return err
	}
	retry, told, failing := minProvisionedRetry, false, false
	for {
		missing, err := missingStreams(ctx, js, service, streams)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			// JetStream not ready yet (a server starting), say: asked again.
			if !failing {
				log.WarnContext(ctx, "cannot tell whether the NATS streams exist; asking again", "error", err)
				failing = true
			}
		case len(missing) == 0:
			if told || failing {
				log.InfoContext(ctx, "streams provisioned: starting")
			}
			return nil
		case !told:
			log.ErrorContext(ctx, "the NATS streams do not exist yet: run `"+ProvisionCommand+"` once; waiting for them", "missing", missing)
			told = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(retry):
		}
		retry = min(2*retry, maxProvisionedRetry)
	}
}

// consumedStreams are the streams user's durable consumers live on.
func consumedStreams(user string) ([]string, error) {
	r, ok := role(user)
	if !ok {
		return nil, fmt.Errorf("bus: no role for NATS user %q", user)
	}
	return r.streams()
}

// missingStreams are those of streams that do not exist.
func missingStreams(ctx context.Context, js jetstream.JetStream, user string, streams []string) ([]string, error) {
	var missing []string
	for _, s := range streams {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := js.Consumer(cctx, s, user)
		cancel()
		switch {
		case err == nil, errors.Is(err, jetstream.ErrConsumerNotFound):
		case errors.Is(err, jetstream.ErrStreamNotFound):
			missing = append(missing, s)
		default:
			return nil, fmt.Errorf("bus: look up stream %s: %w", s, err)
		}
	}
	return missing, nil
}
