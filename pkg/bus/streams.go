package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream groups the subjects of one aggregate.
type Stream struct {
	Name     string
	Subjects []string
}

// Streams are every stream Vigil uses. Each event subject falls in exactly
// one of them.
var Streams = []Stream{
	{Name: "ALERTS", Subjects: []string{"alert.>"}},
	{Name: "INCIDENTS", Subjects: []string{"incident.>"}},
	{Name: "ANALYSES", Subjects: []string{"analysis.>"}},
	{Name: "REPAIRS", Subjects: []string{"repair.>"}},
	{Name: "APPS", Subjects: []string{"app.>"}},
	{Name: "DEPLOYS", Subjects: []string{"deploy.>"}},
	{Name: "DLQ", Subjects: []string{DLQPrefix + ">"}},
}

// StreamOptions tune every stream alike.
type StreamOptions struct {
	// Replicas per stream: 1 for one server, 3 for a cluster.
	Replicas int
	// MaxAge drops events older than this; 0 keeps them (limits retention).
	MaxAge time.Duration
	// Duplicates is how long JetStream remembers a Nats-Msg-Id to drop a
	// republished copy. Default two minutes, JetStream's own default.
	Duplicates time.Duration
}

// Provision creates the streams, or updates them to opts. It is safe to call
// from every replica at start.
func Provision(ctx context.Context, js jetstream.JetStream, opts StreamOptions) error {
	if opts.Replicas == 0 {
		opts.Replicas = 1
	}
	if opts.Duplicates == 0 {
		opts.Duplicates = 2 * time.Minute
	}
	for _, s := range Streams {
		want := jetstream.StreamConfig{
			Name:       s.Name,
			Subjects:   s.Subjects,
			Storage:    jetstream.FileStorage,
			Retention:  jetstream.LimitsPolicy,
			Replicas:   opts.Replicas,
			MaxAge:     opts.MaxAge,
			Duplicates: opts.Duplicates,
			// Publishers batch: one fsync per batch, not per message.
			AllowAtomicPublish: true,
		}
		// Every replica provisions at start; only one whose options differ
		// changes anything. An update rewrites the stream's store config even
		// when nothing changed, racing (inside nats-server 2.15) with other
		// replicas creating their consumers on it.
		existing, err := js.Stream(ctx, s.Name)
		switch {
		case err == nil && sameStream(existing.CachedInfo().Config, want):
			continue
		case err != nil && !errors.Is(err, jetstream.ErrStreamNotFound):
			return fmt.Errorf("provision stream %s: %w", s.Name, err)
		}
		if _, err := js.CreateOrUpdateStream(ctx, want); err != nil {
			return fmt.Errorf("provision stream %s: %w", s.Name, err)
		}
	}
	return nil
}

// sameStream reports whether have already is what Provision wants of it.
func sameStream(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) &&
		have.Storage == want.Storage &&
		have.Retention == want.Retention &&
		have.Replicas == want.Replicas &&
		have.MaxAge == want.MaxAge &&
		have.Duplicates == want.Duplicates &&
		have.AllowAtomicPublish == want.AllowAtomicPublish
}

// streamFor returns the stream that holds subject.
func streamFor(subject string) (string, error) {
	for _, s := range Streams {
		for _, pattern := range s.Subjects {
			if subjectMatches(pattern, subject) {
				return s.Name, nil
			}
		}
	}
	return "", fmt.Errorf("bus: no stream holds subject %q", subject)
}

// subjectMatches reports whether a literal subject matches a NATS pattern
// with * and > wildcards.
func subjectMatches(pattern, subject string) bool {
	pt, st := splitTokens(pattern), splitTokens(subject)
	for i, p := range pt {
		if p == ">" {
			return len(st) > i
		}
		if i >= len(st) || (p != "*" && p != st[i]) {
			return false
		}
	}
	return len(pt) == len(st)
}

func splitTokens(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
