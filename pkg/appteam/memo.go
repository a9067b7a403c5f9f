package appteam

import (
	"context"
	"sync"
	"time"

	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/subject"
)

// memoMax bounds what a Memo remembers: names a sender made up are
// forgotten all together rather than kept for ever.
const memoMax = 10000

// Memo is IndexFor that remembers what the projection said of each
// namespace and app name it was asked about, and answers from that while
// Postgres is unavailable: the gateway resolves the owners of a team key's
// alerts through an outage by what it knew of their namespaces when the
// outage began (nothing can change meanwhile: applying app and namespace
// events needs Postgres too). A name not asked about in the last TTL
// before the outage cannot be resolved then, and the error stands.
type Memo struct {
	// TTL is how long a remembered answer may stand in for Postgres.
	TTL time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	mu   sync.Mutex
	ns   map[string]remembered // what lives in a namespace, and its mapping
	apps map[string]remembered // the apps of a name
}

type remembered struct {
	apps     []subject.App
	mappings []subject.Mapping
	at       time.Time
}

// IndexFor is IndexFor on q, or on what m remembers of every name the
// label sets mention when q answers that Postgres is unavailable.
func (m *Memo) IndexFor(ctx context.Context, q Rows, labelSets ...map[string]string) (*subject.Index, error) {
	namespaces, apps := names(labelSets)
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	known, mappings, err := owners(ctx, q, namespaces, apps)
	if err == nil {
		m.remember(namespaces, apps, known, mappings, now())
		return subject.NewIndex(known, mappings), nil
	}
	if !db.Unavailable(err) {
		return nil, err
	}
	known, mappings, ok := m.recall(namespaces, apps, now())
	if !ok {
		return nil, err
	}
	return subject.NewIndex(known, mappings), nil
}

func (m *Memo) remember(namespaces, apps []string, known []subject.App, mappings []subject.Mapping, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ns == nil || len(m.ns)+len(m.apps) > memoMax {
		m.ns, m.apps = map[string]remembered{}, map[string]remembered{}
	}
	for _, n := range namespaces {
		r := remembered{at: at}
		for _, a := range known {
			if a.Namespace == n {
				r.apps = append(r.apps, a)
			}
		}
		for _, mp := range mappings {
			if mp.Namespace == n {
				r.mappings = append(r.mappings, mp)
			}
		}
		m.ns[n] = r
	}
	for _, n := range apps {
		r := remembered{at: at}
		for _, a := range known {
			if a.Name == n {
				r.apps = append(r.apps, a)
			}
		}
		m.apps[n] = r
	}
}

// recall returns what m remembers of every name, and false when it lacks
// one or remembers it from longer than TTL ago.
func (m *Memo) recall(namespaces, apps []string, now time.Time) ([]subject.App, []subject.Mapping, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var (
		known    []subject.App
		mappings []subject.Mapping
	)
	for _, set := range []struct {
		names []string
		of    map[string]remembered
	}{{namespaces, m.ns}, {apps, m.apps}} {
		for _, n := range set.names {
			r, ok := set.of[n]
			if !ok || now.Sub(r.at) > m.TTL {
				return nil, nil, false
			}
			known = append(known, r.apps...)
			mappings = append(mappings, r.mappings...)
		}
	}
	return known, mappings, true
}
