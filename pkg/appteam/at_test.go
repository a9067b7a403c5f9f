package appteam_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/appteam"
	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// At finds an app of Vigil's by where it runs, and only there: the
// cluster, the namespace and the name must all be the app's, and a
// deleted app is no longer there.
func TestAt(t *testing.T) {
	pool, err := db.Open(t.Context(), testkit.Postgres(t), "svc")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, appteam.Migrate(t.Context(), pool, "svc"))
	now := time.Now()
	require.NoError(t, appteam.SetApp(t.Context(), pool, appteam.App{
		Name: "payments", Team: "team-b", Cluster: "main", Namespace: "payments", AutoRepair: true,
	}, now))
	require.NoError(t, appteam.SetApp(t.Context(), pool, appteam.App{Name: "gone", Team: "team-a", Cluster: "main", Namespace: "gone"}, now))
	require.NoError(t, appteam.Delete(t.Context(), pool, "gone", now.Add(time.Second)))

	for _, tc := range []struct {
		name                         string
		cluster, namespace, workload string
		want                         bool
	}{
		{"the app's Deployment", "main", "payments", "payments", true},
		{"another cluster", "edge", "payments", "payments", false},
		{"another namespace", "main", "shop", "payments", false},
		{"another workload in its namespace", "main", "payments", "worker", false},
		{"no cluster", "", "payments", "payments", false},
		{"a deleted app", "main", "gone", "gone", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, ok, err := appteam.At(t.Context(), pool, tc.cluster, tc.namespace, tc.workload)
			require.NoError(t, err)
			assert.Equal(t, tc.want, ok)
			if tc.want {
				assert.Equal(t, appteam.App{Name: "payments", Team: "team-b", Cluster: "main", Namespace: "payments", AutoRepair: true}, a)
			}
		})
	}
}
