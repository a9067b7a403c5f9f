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
	// What Vigil knows of who owns what: apps, and namespaces mapped to
	// teams.
	{Name: "APPS", Subjects: []string{"app.>", "namespace.>"}},
	{Name: "DEPLOYS", Subjects: []string{"deploy.>"}},
	{Name: "DLQ", Subjects: []string{DLQPrefix + ">"}},
}

// StreamOptions tune every stream alike.
//
// Every stream keeps events for a bounded time and in bounded space (limits
// retention, the oldest dropped first; but a full ALERTS refuses new alerts
// instead, see discard), so a JetStream store does not grow without end.
// ALERTS keeps only what waits: its consumers drop what they all
// acknowledged (see trimmed). Unless MaxAge and MaxBytes override them, the
// limits are:
//
//	ALERTS                                24 hours  4 GiB (~9M alerts)
//	INCIDENTS                              7 days   512 MiB
//	ANALYSES, REPAIRS, APPS, DEPLOYS       7 days   256 MiB each
//	DLQ                                   30 days   512 MiB
//
// Alerts are many and matter only while they are fresh; the events that
// change state are few and replayed to a rebuilt consumer; dead letters
// wait for a person to look at them. JetStream reserves each stream's
// MaxBytes on the server's disk when the stream is created.
type StreamOptions struct {
	// Replicas per stream: 1 for one server, 3 for a cluster.
	Replicas int
	// MaxAge, when set, drops events older than this from every stream,
	// instead of each stream's own default.
	MaxAge time.Duration
	// MaxBytes, when set, caps every stream at this many bytes, instead of
	// each stream's own default; the oldest events go first (ALERTS:
	// new alerts are refused).
	MaxBytes int64
	// Duplicates is how long JetStream remembers a Nats-Msg-Id to drop a
	// republished copy. Default two minutes, JetStream's own default; never
	// more than a stream's MaxAge.
	Duplicates time.Duration
}

// streamLimits are a stream's default MaxAge and MaxBytes.
type streamLimits struct {
	maxAge   time.Duration
	maxBytes int64
}

const (
	day = 24 * time.Hour
	mib = 1 << 20
	gib = 1 << 30
)

// defaultLimits are each stream's limits unless StreamOptions override them
// (see StreamOptions).
var defaultLimits = map[string]streamLimits{
	"ALERTS":    {maxAge: day, maxBytes: 4 * gib},
	"INCIDENTS": {maxAge: 7 * day, maxBytes: 512 * mib},
	"ANALYSES":  {maxAge: 7 * day, maxBytes: 256 * mib},
	"REPAIRS":   {maxAge: 7 * day, maxBytes: 256 * mib},
	"APPS":      {maxAge: 7 * day, maxBytes: 256 * mib},
	"DEPLOYS":   {maxAge: 7 * day, maxBytes: 256 * mib},
	"DLQ":       {maxAge: 30 * day, maxBytes: 512 * mib},
}

// limits returns stream's MaxAge and MaxBytes under opts.
func (o StreamOptions) limits(stream string) streamLimits {
	l, ok := defaultLimits[stream]
	if !ok {
		// A stream added to Streams without a row above still gets the
		// limits of most.
		l = streamLimits{maxAge: 7 * day, maxBytes: 256 * mib}
	}
	if o.MaxAge > 0 {
		l.maxAge = o.MaxAge
	}
	if o.MaxBytes > 0 {
		l.maxBytes = o.MaxBytes
	}
	return l
}

// jsErrCodeStorageExceeded is JetStream's error code for a stream whose
// MaxBytes the server's store cannot reserve (nats.go names no constant).
const jsErrCodeStorageExceeded = 10047

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
		l := opts.limits(s.Name)
		want := jetstream.StreamConfig{
			Name:      s.Name,
			Subjects:  s.Subjects,
			Storage:   jetstream.FileStorage,
			Retention: jetstream.LimitsPolicy,
			Discard:   discard(s.Name),
			Replicas:  opts.Replicas,
			MaxAge:    l.maxAge,
			MaxBytes:  l.maxBytes,
			// JetStream refuses a dedup window longer than the events live.
			Duplicates: min(opts.Duplicates, l.maxAge),
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
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrCodeStorageExceeded {
				return fmt.Errorf("provision stream %s: the server cannot reserve %d bytes of disk for it (free disk space or lower the streams' max bytes): %w", s.Name, l.maxBytes, err)
			}
			return fmt.Errorf("provision stream %s: %w", s.Name, err)
		}
	}
	return nil
}

// sameStream reports whether have already is what Provision wants of it. A
// stream made by a version without limits (MaxAge 0, MaxBytes -1) differs,
// and so gets them.
func sameStream(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) &&
		have.Storage == want.Storage &&
		have.Retention == want.Retention &&
		have.Discard == want.Discard &&
		have.Replicas == want.Replicas &&
		have.MaxAge == want.MaxAge &&
		have.MaxBytes == want.MaxBytes &&
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
