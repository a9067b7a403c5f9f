// Package registry is notify's set of channels: the ones configured by
// the environment (VIGIL_TELEGRAM_*, ...: implicit, named after their
// kind, read-only) and the ones managed through ChannelService, stored in
// notify's schema. Every replica keeps its set loaded, notify calling
// Load on a poll, which reloads it when the stored channels' version
// moves, so a channel created through one replica is used by all within
// a poll interval.
package registry

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
)

// Registry is the channels notify writes to.
type Registry struct {
	store *postgres.Channels
	deps  channel.Deps
	log   *slog.Logger
	env   []*channel.Endpoint

	mu      sync.RWMutex
	version int64
	loaded  bool
	stored  []entry
}

// entry is an opened stored channel.
type entry struct {
	rec postgres.Channel
	ep  *channel.Endpoint
}

// New opens the environment's channels (each off when its config is
// empty); Load loads the stored ones.
func New(store *postgres.Channels, env []channel.Config, deps channel.Deps) (*Registry, error) {
	r := &Registry{store: store, deps: deps, log: deps.Logger}
	for _, c := range env {
		ep, err := c.Open(deps)
		if err != nil {
			return nil, err
		}
		if ep == nil {
			continue
		}
		if _, dup := r.EnvChannel(ep.Name); dup {
			return nil, fmt.Errorf("notify: two channels named %s", ep.Name)
		}
		r.env = append(r.env, ep)
	}
	return r, nil
}

// EnvChannel is the environment's channel named name, false when there
// is none.
func (r *Registry) EnvChannel(name string) (*channel.Endpoint, bool) {
	for _, ep := range r.env {
		if ep.Name == name {
			return ep, true
		}
	}
	return nil, false
}

// Reserved reports whether name is an environment channel's, or would be
// one's when configured: a stored channel may not take it (the delivery
// log already knows these names as the environment's channels).
func Reserved(name string) bool { return slices.Contains(Kinds, name) }

// Load reads the stored channels now, if they changed since the last
// load.
func (r *Registry) Load(ctx context.Context) error {
	v, err := r.store.Version(ctx)
	if err != nil {
		return err
	}
	r.mu.RLock()
	same := r.loaded && v == r.version
	r.mu.RUnlock()
	if same {
		return nil
	}
	recs, err := r.store.List(ctx)
	if err != nil {
		return err
	}
	stored := make([]entry, 0, len(recs))
	for _, rec := range recs {
		if rec.Unsealed != nil {
			r.log.ErrorContext(ctx, "channel credential cannot be opened: channel not used", "channel", rec.Name, "error", rec.Unsealed)
			continue
		}
		ep, err := Open(rec, r.deps)
		if err != nil {
			// One broken record (a credential sealed under another key)
			// does not keep the others from being used.
			r.log.ErrorContext(ctx, "channel cannot be opened: not used", "channel", rec.Name, "error", err)
			continue
		}
		stored = append(stored, entry{rec: rec, ep: ep})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.loaded && v < r.version {
		return nil // a concurrent load got a newer set
	}
	r.stored, r.version, r.loaded = stored, v, true
	return nil
}

// All are the channels that hear about everything unless routes decide
// otherwise: every channel but the personal ones.
func (r *Registry) All() []*channel.Endpoint {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := slices.Clone(r.env)
	for _, e := range r.stored {
		if e.rec.User == "" {
			out = append(out, e.ep)
		}
	}
	return out
}

// Endpoints are every channel, personal ones included.
func (r *Registry) Endpoints() []*channel.Endpoint {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := slices.Clone(r.env)
	for _, e := range r.stored {
		out = append(out, e.ep)
	}
	return out
}

// Channel is the channel named name.
func (r *Registry) Channel(name string) (*channel.Endpoint, bool) {
	if ep, ok := r.EnvChannel(name); ok {
		return ep, true
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, e := range r.stored {
		if e.rec.Name == name {
			return e.ep, true
		}
	}
	return nil, false
}

// Kind is the kind of channel name (an environment channel is named
// after its kind), "" when there is no such channel (deleted since).
func (r *Registry) Kind(name string) string {
	if _, ok := r.EnvChannel(name); ok {
		return name
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, e := range r.stored {
		if e.rec.Name == name {
			return e.rec.Kind
		}
	}
	return ""
}

// Personal are the channels that reach user.
func (r *Registry) Personal(user string) []*channel.Endpoint {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*channel.Endpoint
	for _, e := range r.stored {
		if user != "" && e.rec.User == user {
			out = append(out, e.ep)
		}
	}
	return out
}

// Env are the channels of the environment.
func (r *Registry) Env() []*channel.Endpoint { return slices.Clone(r.env) }
