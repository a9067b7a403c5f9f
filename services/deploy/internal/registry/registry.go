// Package registry is the deploy service's registry of apps, of the
// clusters they run on and of the namespaces admins map to teams: every
// change to them, and the event that announces it (app.registered,
// app.updated, app.deleted, namespace.mapped, namespace.unmapped), in one
// transaction through the store (internal/postgres) and the outbox. Deployments are the
// deployer's. Callers (the gRPC port) check who asks and what they send;
// this package keeps what holds whoever asks — an app's namespace is not
// another team's leftover, a name is configuration or a secret, a
// namespace an app has belongs to the app's team — and says so with its
// errors, which the port maps to status codes.
package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/services/deploy/internal/deployer"
	"github.com/vigil-ops/vigil/services/deploy/internal/kube"
	"github.com/vigil-ops/vigil/services/deploy/internal/postgres"
)

// Registry changes apps, clusters and namespace mappings.
type Registry struct {
	pool  *pgxpool.Pool
	store *postgres.Store
	kube  *kube.Pool
	opts  Options
	log   *slog.Logger
}

// Options tune the registry.
type Options struct {
	// DefaultCluster is where apps created without a cluster go, if set.
	DefaultCluster string
	// ClusterAdded, when set, is called once a cluster is registered:
	// the deploy service provisions Vigil's identities in it.
	ClusterAdded func(ctx context.Context, cluster string)
}

// New returns the registry over pool and store; kp holds the clients of
// the registered clusters.
func New(pool *pgxpool.Pool, store *postgres.Store, kp *kube.Pool, opts Options, log *slog.Logger) *Registry {
	return &Registry{pool: pool, store: store, kube: kp, opts: opts, log: log}
}

// AddCluster registers cluster c with its kubeconfig
// (postgres.ErrExists when its name is taken).
func (g *Registry) AddCluster(ctx context.Context, c *deployv1.Cluster, kubeconfig []byte) error {
	if err := g.store.InsertCluster(ctx, g.pool, c, kubeconfig); err != nil {
		return err
	}
	if g.opts.ClusterAdded != nil {
		g.opts.ClusterAdded(ctx, c.GetName())
	}
	return nil
}

// RemoveCluster forgets cluster name, which no app may target
// (postgres.ErrInUse), and its client.
func (g *Registry) RemoveCluster(ctx context.Context, name string) error {
	if err := g.store.DeleteCluster(ctx, g.pool, name); err != nil {
		return err
	}
	g.kube.Forget(name)
	return nil
}

// ClusterError is an app created without a cluster when none, or more
// than one, is registered (and no default is set).
type ClusterError struct{ Registered int }

func (e *ClusterError) Error() string {
	if e.Registered == 0 {
		return "no cluster is registered: add one first (vigil clusters add NAME --kubeconfig FILE)"
	}
	return fmt.Sprintf("is required: %d clusters are registered", e.Registered)
}

// LeftBehindError is an app whose namespace another team's deleted app
// left behind (Tombstone), which only an admin may hand over.
type LeftBehindError struct{ Tombstone *postgres.Tombstone }

func (e *LeftBehindError) Error() string {
	return fmt.Sprintf("namespace %s in cluster %s belonged to the deleted app %s", e.Tombstone.Namespace, e.Tombstone.Cluster, e.Tombstone.App)
}

// SecretInEnvError is a name that would be both an app's configuration
// and one of its secrets.
type SecretInEnvError struct{ Name string }

func (e *SecretInEnvError) Error() string {
	return e.Name + " is also a secret: a name is either configuration or a secret"
}

// AppNamespaceError is a mapping of a namespace that is an app's: it
// belongs to the app's team.
type AppNamespaceError struct{ Namespace, App string }

func (e *AppNamespaceError) Error() string {
	return fmt.Sprintf("namespace %s is app %s's: it belongs to the app's team (change the app's owner instead: vigil apps update %s --owner TEAM)",
		e.Namespace, e.App, e.App)
}

// ErrUnknownCluster is a mapping in a cluster that is not registered.
var ErrUnknownCluster = errors.New("cluster not registered")

// Create records new app a (its cluster chosen when it names none) and
// announces it. The namespace a deleted app left behind in its cluster
// is a's when the same team left it, or when adopt (an admin hands it
// over); otherwise a *LeftBehindError.
func (g *Registry) Create(ctx context.Context, a *postgres.App, adopt bool, by string) error {
	return db.InTx(ctx, g.pool, func(tx pgx.Tx) error {
		if a.Cluster == "" {
			c, err := g.pickCluster(ctx, tx)
			if err != nil {
				return err
			}
			a.Cluster = c
		}
		if err := g.adoptNamespace(ctx, tx, a, adopt, by); err != nil {
			return err
		}
		if err := g.store.InsertApp(ctx, tx, a); err != nil {
			return err
		}
		return outbox.Add(ctx, tx, &eventsv1.AppRegistered{
			Meta: bus.NewMeta(deployer.Producer, nil), App: a.Name, Namespace: a.Namespace, Cluster: a.Cluster,
			Framework: a.Framework, Plan: a.Plan, Image: a.Image, Owner: a.Owner, AutoRepair: a.AutoRepair,
		})
	})
}

// pickCluster chooses the cluster of an app created without one: the
// default cluster, or the only one registered.
func (g *Registry) pickCluster(ctx context.Context, q postgres.Querier) (string, error) {
	if g.opts.DefaultCluster != "" {
		return g.opts.DefaultCluster, nil
	}
	cs, err := g.store.ListClusters(ctx, q)
	if err != nil {
		return "", err
	}
	if len(cs) != 1 {
		return "", &ClusterError{Registered: len(cs)}
	}
	return cs[0].GetName(), nil
}

// adoptNamespace decides whether new app a may have the namespace a
// deleted app left behind in a's cluster (postgres.Tombstone): the team
// that left it may take it back, another team only when an admin says so
// (adopt). Either way the record goes: the namespace is a's from now on.
func (g *Registry) adoptNamespace(ctx context.Context, tx pgx.Tx, a *postgres.App, adopt bool, by string) error {
	t, err := g.store.TakeTombstone(ctx, tx, a.Cluster, a.Namespace)
	if err != nil || t == nil {
		return err
	}
	if t.Owner != a.Owner && !adopt {
		return &LeftBehindError{Tombstone: t}
	}
	if t.Owner != a.Owner {
		g.log.InfoContext(ctx, "namespace handed over", "namespace", t.Namespace, "cluster", t.Cluster,
			"from_team", t.Owner, "to_team", a.Owner, "app", a.Name, "by", by)
	}
	return g.store.DeleteTombstone(ctx, tx, t.Cluster, t.Namespace)
}

// Update changes app name in one transaction: it reads the app locked,
// lets fn change it (an error from fn changes nothing), checks that no
// name is both configuration and a secret, writes it and announces it
// (app.updated).
func (g *Registry) Update(ctx context.Context, name string, fn func(*postgres.App) error) (*postgres.App, error) {
	var a *postgres.App
	err := db.InTx(ctx, g.pool, func(tx pgx.Tx) error {
		var err error
		if a, err = g.store.GetApp(ctx, tx, name, true); err != nil {
			return err
		}
		if err := fn(a); err != nil {
			return err
		}
		for k := range a.Secrets {
			if _, ok := a.Env[k]; ok {
				return &SecretInEnvError{Name: k}
			}
		}
		a.UpdateTime = timestamppb.New(time.Now().Truncate(time.Microsecond))
		if err := g.store.UpdateApp(ctx, tx, a); err != nil {
			return err
		}
		return outbox.Add(ctx, tx, appUpdated(a))
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Announce publishes app.updated for every app and namespace.mapped for
// every namespace mapping, through the outbox: whoever keeps a
// projection of the apps (monitor, for their teams) and missed events --
// started after them, or past the stream's retention -- catches up. The
// deploy service announces once per start; replicas starting together
// announce twice, which consumers keep once (newest by occurred_at).
func (g *Registry) Announce(ctx context.Context) error {
	return db.InTx(ctx, g.pool, func(tx pgx.Tx) error {
		apps, err := g.store.AppRefs(ctx, tx)
		if err != nil {
			return fmt.Errorf("announce apps: %w", err)
		}
		for _, a := range apps {
			if err := outbox.Add(ctx, tx, &eventsv1.AppUpdated{
				Meta: bus.NewMeta(deployer.Producer, nil), App: a.Name, Owner: a.Owner, Namespace: a.Namespace, Cluster: a.Cluster,
				AutoRepair: a.AutoRepair,
			}); err != nil {
				return fmt.Errorf("announce apps: %w", err)
			}
		}
		mappings, err := g.store.Mappings(ctx, tx)
		if err != nil {
			return fmt.Errorf("announce namespace mappings: %w", err)
		}
		for _, m := range mappings {
			if err := outbox.Add(ctx, tx, mapped(m)); err != nil {
				return fmt.Errorf("announce namespace mappings: %w", err)
			}
		}
		return nil
	})
}

// appUpdated is the event announcing what a is now (its team, for
// monitor's projection).
func appUpdated(a *postgres.App) *eventsv1.AppUpdated {
	return &eventsv1.AppUpdated{
		Meta: bus.NewMeta(deployer.Producer, nil), App: a.Name, Owner: a.Owner, Namespace: a.Namespace, Cluster: a.Cluster,
		AutoRepair: a.AutoRepair,
	}
}

// Delete forgets app a and announces it (app.deleted). When its
// namespace stays (keepNamespace: its resources were not deleted), the
// namespace is recorded as left behind by a's team (see Create).
func (g *Registry) Delete(ctx context.Context, a *postgres.App, keepNamespace bool, by string) error {
	return db.InTx(ctx, g.pool, func(tx pgx.Tx) error {
		if err := g.store.DeleteApp(ctx, tx, a.Name); err != nil {
			return err
		}
		if keepNamespace {
			// The namespace stays, labelled as the app's: a new app of
			// the same name would inherit it and what is in it.
			if err := g.store.PutTombstone(ctx, tx, postgres.Tombstone{
				Cluster: a.Cluster, Namespace: a.Namespace, App: a.Name, Owner: a.Owner,
				DeletedBy: by, DeletedAt: time.Now(),
			}); err != nil {
				return err
			}
		}
		return outbox.Add(ctx, tx, &eventsv1.AppDeleted{Meta: bus.NewMeta(deployer.Producer, nil), App: a.Name})
	})
}

// MapNamespace records (or replaces) m, an admin's mapping of a
// namespace to a team, and announces it (namespace.mapped). Its cluster,
// when named, must be registered (ErrUnknownCluster), and the namespace
// must not be an app's (*AppNamespaceError).
func (g *Registry) MapNamespace(ctx context.Context, m *deployv1.NamespaceMapping) error {
	return db.InTx(ctx, g.pool, func(tx pgx.Tx) error {
		if c := m.GetCluster(); c != "" {
			ok, err := g.store.ClusterExists(ctx, tx, c)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("cluster %s: %w", c, ErrUnknownCluster)
			}
		}
		if app, ok, err := g.store.AppOfNamespace(ctx, tx, m.GetCluster(), m.GetNamespace()); err != nil {
			return err
		} else if ok {
			return &AppNamespaceError{Namespace: m.GetNamespace(), App: app}
		}
		if err := g.store.PutMapping(ctx, tx, m); err != nil {
			return err
		}
		return outbox.Add(ctx, tx, mapped(m))
	})
}

func mapped(m *deployv1.NamespaceMapping) *eventsv1.NamespaceMapped {
	return &eventsv1.NamespaceMapped{
		Meta: bus.NewMeta(deployer.Producer, nil), Cluster: m.GetCluster(), Namespace: m.GetNamespace(), Team: m.GetTeam(),
	}
}

// UnmapNamespace removes the mapping of namespace in cluster
// (postgres.ErrNotFound when there is none) and announces it
// (namespace.unmapped).
func (g *Registry) UnmapNamespace(ctx context.Context, cluster, namespace string) error {
	return db.InTx(ctx, g.pool, func(tx pgx.Tx) error {
		if err := g.store.DeleteMapping(ctx, tx, cluster, namespace); err != nil {
			return err
		}
		return outbox.Add(ctx, tx, &eventsv1.NamespaceUnmapped{
			Meta: bus.NewMeta(deployer.Producer, nil), Cluster: cluster, Namespace: namespace,
		})
	})
}
