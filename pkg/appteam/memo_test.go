package appteam_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/appteam"
	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/subject"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// While Postgres is down a Memo resolves owners as Postgres did for the
// names it was asked about before, for TTL; a name it never saw, or saw
// too long ago, gets the outage's error, never a guess.
func TestMemoResolvesOwnersThroughAnOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := testkit.OwnPostgres(t)
	p, err := db.Open(ctx, pg.DSN("postgres"), "svc")
	require.NoError(t, err)
	t.Cleanup(p.Close)
	require.NoError(t, appteam.Migrate(ctx, p, "svc"))
	t0 := time.Now()
	require.NoError(t, appteam.SetApp(ctx, p, appteam.App{Name: "checkout", Team: "team-a", Cluster: "kind", Namespace: "shop"}, t0))
	require.NoError(t, appteam.SetNamespace(ctx, p, subject.Mapping{Namespace: "logging", Team: "sre"}, t0))

	now := t0
	m := &appteam.Memo{TTL: time.Hour, Now: func() time.Time { return now }}
	labels := []map[string]string{
		{"namespace": "shop", "deployment": "checkout"},
		{"namespace": "logging", "statefulset": "loki"},
		{"namespace": "scratch"},
	}
	resolve := func(ls ...map[string]string) ([]string, error) {
		ix, err := m.IndexFor(ctx, p, ls...)
		if err != nil {
			return nil, err
		}
		var teams []string
		for _, l := range ls {
			teams = append(teams, ix.Resolve(l).GetTeam())
		}
		return teams, nil
	}
	before, err := resolve(labels...)
	require.NoError(t, err)
	require.Equal(t, []string{"team-a", "sre", ""}, before)

	pg.Stop()
	now = t0.Add(59 * time.Minute)
	during, err := resolve(labels[1], labels[0])
	require.NoError(t, err, "answered from what Postgres said")
	require.Equal(t, []string{"sre", "team-a"}, during)

	_, err = resolve(labels[0], map[string]string{"namespace": "unseen"})
	require.Error(t, err)
	require.True(t, db.Unavailable(err), "a namespace never asked about: %v", err)
	now = t0.Add(61 * time.Minute)
	_, err = resolve(labels[0])
	require.True(t, db.Unavailable(err), "remembered longer than TTL ago: %v", err)
}
