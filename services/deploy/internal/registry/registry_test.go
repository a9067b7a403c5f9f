package registry_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/pkg/seal"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/deploy/internal/kube"
	"github.com/vigil-ops/vigil/services/deploy/internal/postgres"
	"github.com/vigil-ops/vigil/services/deploy/internal/registry"
)

func TestMain(m *testing.M) { testkit.Main(m) }

type fixture struct {
	pool  *pgxpool.Pool
	store *postgres.Store
	// added are the clusters ClusterAdded was told of.
	added []string
}

func start(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	pool, err := db.Open(ctx, testkit.Postgres(t), "deploy")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, outbox.Migrate(ctx, pool, "deploy"))
	require.NoError(t, db.Migrate(ctx, pool, "deploy", db.Sub(postgres.Migrations, "migrations")))
	box, err := seal.New(bytes.Repeat([]byte{7}, seal.KeySize))
	require.NoError(t, err)
	return &fixture{pool: pool, store: postgres.New(box)}
}

func (f *fixture) registry(t *testing.T, defaultCluster string) *registry.Registry {
	t.Helper()
	return registry.New(f.pool, f.store, kube.NewPool(), registry.Options{
		DefaultCluster: defaultCluster,
		ClusterAdded:   func(_ context.Context, c string) { f.added = append(f.added, c) },
	}, testkit.Logger(t))
}

// events are the subjects waiting in the outbox.
func (f *fixture) events(t *testing.T) []string {
	t.Helper()
	rows, err := f.pool.Query(t.Context(), `SELECT subject FROM outbox ORDER BY seq`)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}

func app(name, owner string) *postgres.App {
	now := timestamppb.New(time.Now().Truncate(time.Microsecond))
	return &postgres.App{App: &deployv1.App{
		Name: name, Namespace: name, Owner: owner, Framework: "node", Plan: "small", Image: "registry.example.com/" + name + ":1",
		CreateTime: now, UpdateTime: now,
	}, Secrets: map[string]string{}}
}

func cluster(name string) *deployv1.Cluster {
	return &deployv1.Cluster{Name: name, Server: "https://" + name, CreateTime: timestamppb.Now()}
}

// withShop is a registry whose default cluster, main, has app shop of
// team web.
func withShop(t *testing.T) (*fixture, *registry.Registry) {
	t.Helper()
	f := start(t)
	reg := f.registry(t, "main")
	require.NoError(t, reg.AddCluster(t.Context(), cluster("main"), []byte("kubeconfig")))
	require.NoError(t, reg.Create(t.Context(), app("shop", "web"), false, "user:alice"))
	return f, reg
}

// An app without a cluster goes to the default, or the only one
// registered; with none or several, it is refused and nothing is
// recorded or announced.
func TestCreatePicksTheCluster(t *testing.T) {
	t.Parallel()
	f := start(t)
	ctx := t.Context()
	reg := f.registry(t, "")

	var none *registry.ClusterError
	require.ErrorAs(t, reg.Create(ctx, app("shop", "web"), false, "user:alice"), &none)
	require.Equal(t, 0, none.Registered)

	require.NoError(t, reg.AddCluster(ctx, cluster("main"), []byte("kubeconfig")))
	require.Equal(t, []string{"main"}, f.added, "told once it is registered")
	a := app("shop", "web")
	require.NoError(t, reg.Create(ctx, a, false, "user:alice"))
	require.Equal(t, "main", a.Cluster, "the only one")

	require.NoError(t, reg.AddCluster(ctx, cluster("edge"), []byte("kubeconfig")))
	var several *registry.ClusterError
	require.ErrorAs(t, reg.Create(ctx, app("blog", "web"), false, "user:alice"), &several)
	require.Equal(t, 2, several.Registered)
	b := app("blog", "web")
	require.NoError(t, f.registry(t, "edge").Create(ctx, b, false, "user:alice"))
	require.Equal(t, "edge", b.Cluster, "the default")

	require.Equal(t, []string{bus.SubjectAppRegistered, bus.SubjectAppRegistered}, f.events(t), "one announcement per app created")
	require.ErrorIs(t, reg.RemoveCluster(ctx, "main"), postgres.ErrInUse)
}

// The namespace a deleted app left behind goes back to its team, or to
// another team only when an admin hands it over.
func TestDeletedAppsNamespace(t *testing.T) {
	t.Parallel()
	f := start(t)
	ctx := t.Context()
	reg := f.registry(t, "main")
	require.NoError(t, reg.AddCluster(ctx, cluster("main"), []byte("kubeconfig")))
	a := app("shop", "web")
	require.NoError(t, reg.Create(ctx, a, false, "user:alice"))
	require.NoError(t, reg.Delete(ctx, a, true, "user:alice"))

	var left *registry.LeftBehindError
	require.ErrorAs(t, reg.Create(ctx, app("shop", "payments"), false, "user:olga"), &left)
	require.Equal(t, "web", left.Tombstone.Owner)
	_, err := f.store.GetApp(ctx, f.pool, "shop", false)
	require.ErrorIs(t, err, postgres.ErrNotFound, "nothing created")
	require.Equal(t, []string{bus.SubjectAppRegistered, bus.SubjectAppDeleted}, f.events(t))

	require.NoError(t, reg.Create(ctx, app("shop", "payments"), true, "user:alice"), "handed over by an admin")
	require.NoError(t, reg.Delete(ctx, app("shop", "payments"), false, "user:alice"))
	require.NoError(t, reg.Create(ctx, app("shop", "web"), false, "user:alice"), "deleted with its resources: nothing left behind")
}

// An update is the app's changes and its announcement, or nothing.
func TestUpdate(t *testing.T) {
	t.Parallel()
	f, reg := withShop(t)
	ctx := t.Context()

	_, err := reg.Update(ctx, "shop", func(a *postgres.App) error {
		a.Image = "registry.example.com/shop:2"
		a.Env = map[string]string{"TOKEN": "x"}
		a.Secrets["TOKEN"] = "y"
		return nil
	})
	var both *registry.SecretInEnvError
	require.ErrorAs(t, err, &both)
	require.Equal(t, "TOKEN", both.Name)
	errCaller := errors.New("not your app")
	_, err = reg.Update(ctx, "shop", func(a *postgres.App) error {
		a.Image = "registry.example.com/shop:2"
		return errCaller
	})
	require.ErrorIs(t, err, errCaller)
	got, err := f.store.GetApp(ctx, f.pool, "shop", false)
	require.NoError(t, err)
	require.Equal(t, "registry.example.com/shop:1", got.Image, "refused: unchanged")
	require.Empty(t, got.Secrets)
	require.Equal(t, []string{bus.SubjectAppRegistered}, f.events(t), "refused: not announced")

	a, err := reg.Update(ctx, "shop", func(a *postgres.App) error { a.Owner = "payments"; return nil })
	require.NoError(t, err)
	require.Equal(t, "payments", a.Owner)
	require.Equal(t, []string{bus.SubjectAppRegistered, bus.SubjectAppUpdated}, f.events(t))
	_, err = reg.Update(ctx, "blog", func(*postgres.App) error { return nil })
	require.ErrorIs(t, err, postgres.ErrNotFound)
}

// A namespace is mapped to a team in a registered cluster, unless an app
// has it; a refused mapping records and announces nothing.
func TestMapNamespace(t *testing.T) {
	t.Parallel()
	f, reg := withShop(t)
	ctx := t.Context()
	mapping := func(cluster, ns string) *deployv1.NamespaceMapping {
		return &deployv1.NamespaceMapping{Cluster: cluster, Namespace: ns, Team: "payments", UpdateTime: timestamppb.Now(), UpdatedBy: "user:alice"}
	}

	require.ErrorIs(t, reg.MapNamespace(ctx, mapping("elsewhere", "ledger")), registry.ErrUnknownCluster)
	var taken *registry.AppNamespaceError
	require.ErrorAs(t, reg.MapNamespace(ctx, mapping("main", "shop")), &taken)
	require.Equal(t, "shop", taken.App)
	ms, err := f.store.Mappings(ctx, f.pool)
	require.NoError(t, err)
	require.Empty(t, ms)
	require.Equal(t, []string{bus.SubjectAppRegistered}, f.events(t))

	require.NoError(t, reg.MapNamespace(ctx, mapping("main", "ledger")))
	require.NoError(t, reg.Announce(ctx))
	require.NoError(t, reg.UnmapNamespace(ctx, "main", "ledger"))
	require.ErrorIs(t, reg.UnmapNamespace(ctx, "main", "ledger"), postgres.ErrNotFound)
	require.Equal(t, []string{
		bus.SubjectAppRegistered, bus.SubjectNamespaceMapped,
		bus.SubjectAppUpdated, bus.SubjectNamespaceMapped, // announced again, for whoever missed them
		bus.SubjectNamespaceUnmapped,
	}, f.events(t))
}
