package postgres_test

import (
	"io/fs"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/deploy/internal/postgres"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// Apps that shared a host before domains were unique keep it on the app
// that had it first; the others lose it, and every domain is stored as a
// host compares.
func TestUniqueDomainsMigration(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool, err := db.Open(ctx, testkit.Postgres(t), "deploy")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	all := db.Sub(postgres.Migrations, "migrations")
	first, err := fs.ReadFile(all, "00001_deploy.sql")
	require.NoError(t, err)
	require.NoError(t, db.Migrate(ctx, pool, "deploy", fstest.MapFS{"00001_deploy.sql": {Data: first}}))

	_, err = pool.Exec(ctx, `INSERT INTO clusters VALUES ('main', 'https://k', 'v1', '\x00', now())`)
	require.NoError(t, err)
	t0 := time.Now()
	for i, a := range []struct{ name, domain string }{
		{"first", "Shop.Example.com."},
		{"second", "shop.example.com"},
		{"third", "SHOP.EXAMPLE.COM"},
		{"alone", "blog.example.com."},
		{"none", ""},
	} {
		_, err = pool.Exec(ctx, `INSERT INTO apps (name, domain, framework, plan, image, cluster, namespace, created_at, updated_at)
			VALUES ($1, $2, 'go', 'basic', 'x:1', 'main', $1, $3, $3)`, a.name, a.domain, t0.Add(time.Duration(i)*time.Second))
		require.NoError(t, err)
	}
	require.NoError(t, db.Migrate(ctx, pool, "deploy", all))

	rows, err := pool.Query(ctx, `SELECT name, domain FROM apps`)
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var s [2]string
		return s, r.Scan(&s[0], &s[1])
	})
	require.NoError(t, err)
	require.ElementsMatch(t, [][2]string{
		{"first", "shop.example.com"}, {"second", ""}, {"third", ""}, {"alone", "blog.example.com"}, {"none", ""},
	}, got)
	_, err = pool.Exec(ctx, `UPDATE apps SET domain = 'Blog.example.com.' WHERE name = 'none'`)
	require.Error(t, err, "the index refuses a second app on a host")
}
