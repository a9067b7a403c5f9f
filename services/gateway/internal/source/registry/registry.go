// Package registry is the gateway's set of declared webhook sources: the
// ones admins manage through SourceService, stored in the gateway's
// schema, each served at POST /api/v1/webhooks/sources/{name}. Every
// replica keeps the set compiled in memory (a webhook costs no query),
// reloading it when the stored sources' version moves: on a poll, and
// at once after a change made through this replica, so a source declared
// through one replica is served by all within a poll interval.
package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway/internal/source"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/generic"
)

// Types of declared source. Each reads its bodies its own way. Sentry
// and Grafana have URLs of their own; one becomes a type here (a case in
// Check and Build, a member of Source.config in the API) when a Vigil
// must take several of them, each with its own secret and team.
const (
	TypeGeneric = "generic"
)

// Declared is one declared source, as stored.
type Declared struct {
	// Name is a DNS label: the last segment of its URL.
	Name string
	Type string
	// Team whose alerts it may send; "": anyone's.
	Team string
	// Auth is generic.AuthKey or generic.AuthHMAC; Secret the HMAC
	// secret in the clear (sealed in the database, never returned by the
	// API).
	Auth, Secret string
	// HasSecret: a secret is stored. Unsealed is why it could not be
	// opened (no key, another key): such a source answers 503 until it
	// is given a secret anew.
	HasSecret            bool
	Unsealed             error
	Settings             Settings
	CreatedBy, UpdatedBy string
	CreatedAt, UpdatedAt time.Time
}

// Settings are what a source's type needs besides its credentials.
type Settings struct {
	// Mapping of a generic source.
	Mapping *generic.Mapping `json:"mapping,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Check refuses a declaration no source can be built from, naming each
// field at fault (under "source."; the secret as "secret"): the
// mapping's expressions are compiled, so a mapping CEL refuses is never
// stored.
func Check(d Declared) error {
	var bad server.BadRequestError
	if !nameRE.MatchString(d.Name) {
		bad.Add("source.name", "must be a DNS label: lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit")
	}
	if d.Team != "" && !nameRE.MatchString(d.Team) {
		bad.Add("source.team", "must be a team name (a DNS label) or empty for every team")
	}
	switch d.Auth {
	case generic.AuthHMAC:
		if d.Secret == "" && !d.HasSecret {
			bad.Add("secret", "an hmac source needs a secret")
		} else if d.Secret != "" && len(d.Secret) < generic.MinSecret {
			bad.Addf("secret", "must be at least %d characters (openssl rand -hex 32 makes one)", generic.MinSecret)
		}
	case generic.AuthKey:
		if d.Secret != "" {
			bad.Add("secret", "a source verified by API keys has no secret")
		}
	default:
		bad.Addf("source.auth", "must be %q (a Vigil API key of the source's team) or %q (a signature with the source's secret), got %q", generic.AuthKey, generic.AuthHMAC, d.Auth)
	}
	switch d.Type {
	case TypeGeneric:
		if d.Settings.Mapping == nil {
			bad.Add("source.generic.mapping", "a generic source needs a mapping")
		} else if _, err := generic.Compile(*d.Settings.Mapping); err != nil {
			if invalid, ok := errors.AsType[*server.BadRequestError](err); ok {
				for _, v := range invalid.Violations {
					bad.Add("source.generic."+v.Field, v.Description)
				}
			} else {
				bad.Add("source.generic.mapping", err.Error())
			}
		}
	default:
		bad.Addf("source.type", "must be %q, got %q", TypeGeneric, d.Type)
	}
	return bad.Err("invalid source")
}

// Build is the source d declares.
func Build(d Declared, keys source.Keys, now func() time.Time) (*source.Source, error) {
	if d.Unsealed != nil {
		return nil, d.Unsealed
	}
	switch d.Type {
	case TypeGeneric:
		if d.Settings.Mapping == nil {
			return nil, fmt.Errorf("source %s: no mapping", d.Name)
		}
		return generic.New(generic.Config{Name: d.Name, Team: d.Team, Auth: d.Auth, Secret: d.Secret, Mapping: *d.Settings.Mapping}, keys, now)
	}
	return nil, fmt.Errorf("source %s: unknown type %q", d.Name, d.Type)
}

// Store is where declared sources are kept.
type Store interface {
	// SourcesVersion moves with every change of the sources.
	SourcesVersion(ctx context.Context) (int64, error)
	ListSources(ctx context.Context) ([]Declared, error)
}

// Registry serves the declared sources.
type Registry struct {
	store Store
	keys  source.Keys
	log   *slog.Logger

	mu      sync.RWMutex
	version int64
	loaded  bool
	byName  map[string]entry
}

// entry is a loaded source, or why it cannot be served.
type entry struct {
	src    *source.Source
	broken error
}

// New returns a Registry over store; Load loads it.
func New(store Store, keys source.Keys, log *slog.Logger) *Registry {
	return &Registry{store: store, keys: keys, log: log}
}

// Load reads the stored sources now, if they changed since the last load.
func (r *Registry) Load(ctx context.Context) error {
	v, err := r.store.SourcesVersion(ctx)
	if err != nil {
		return err
	}
	r.mu.RLock()
	same := r.loaded && v == r.version
	r.mu.RUnlock()
	if same {
		return nil
	}
	ds, err := r.store.ListSources(ctx)
	if err != nil {
		return err
	}
	byName := make(map[string]entry, len(ds))
	for _, d := range ds {
		src, err := Build(d, r.keys, nil)
		if err != nil {
			// One broken source (a secret sealed under another key) does
			// not keep the others from being served.
			r.log.ErrorContext(ctx, "declared source cannot be served", "source", d.Name, "error", err)
			byName[d.Name] = entry{broken: err}
			continue
		}
		byName[d.Name] = entry{src: src}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.loaded && v < r.version {
		return nil // a concurrent load got a newer set
	}
	r.byName, r.version, r.loaded = byName, v, true
	return nil
}

// errBroken is a declared source that cannot be served now: answered 503
// (its sender retries; the log says why).
var errBroken = errors.New("the source cannot be served: its secret cannot be opened (see the gateway's log)")

// Lookup is source.Handler's Lookup: the source named by the request's
// {name}.
func (r *Registry) Lookup(req *http.Request) (*source.Source, error) {
	r.mu.RLock()
	e, ok := r.byName[req.PathValue("name")]
	r.mu.RUnlock()
	switch {
	case !ok:
		return nil, source.ErrUnknown
	case e.broken != nil:
		return nil, errBroken
	}
	return e.src, nil
}

// Run reloads the sources every interval until ctx ends; a failed load
// is logged and tried again at the next tick.
func (r *Registry) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := r.Load(ctx); err != nil && ctx.Err() == nil {
				r.log.WarnContext(ctx, "declared sources not reloaded", "error", err)
			}
		}
	}
}
