package appteam_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/appteam"
	"github.com/vigil-ops/vigil/pkg/db"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/subject"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	p, err := db.Open(ctx, testkit.Postgres(t), "svc")
	require.NoError(t, err)
	t.Cleanup(p.Close)
	require.NoError(t, appteam.Migrate(ctx, p, "svc"))
	return p
}

// What the projection holds is what subjects are resolved against: the
// newest event wins whatever order they arrive in, a deleted app or a
// removed mapping places nothing.
func TestIndexFollowsTheEvents(t *testing.T) {
	t.Parallel()
	p := pool(t)
	ctx := context.Background()
	t0 := time.Now()
	require.NoError(t, appteam.SetApp(ctx, p, appteam.App{Name: "payments", Team: "team-b", Cluster: "kind", Namespace: "payments"}, t0))
	require.NoError(t, appteam.SetApp(ctx, p, appteam.App{Name: "payments", Team: "team-a", Cluster: "kind", Namespace: "payments"}, t0.Add(-time.Minute)))
	require.NoError(t, appteam.SetNamespace(ctx, p, subject.Mapping{Namespace: "logging", Team: "sre"}, t0))
	require.NoError(t, appteam.SetNamespace(ctx, p, subject.Mapping{Namespace: "old", Team: "sre"}, t0))
	require.NoError(t, appteam.UnsetNamespace(ctx, p, "", "old", t0.Add(time.Second)))
	// A mapping's older event arriving late changes nothing.
	require.NoError(t, appteam.SetNamespace(ctx, p, subject.Mapping{Namespace: "old", Team: "sre"}, t0))

	labels := []map[string]string{
		{"namespace": "payments", "deployment": "payments", "app": "shop"},
		{"namespace": "logging", "statefulset": "loki"},
		{"namespace": "old", "deployment": "x"},
	}
	ix, err := appteam.IndexFor(ctx, p, labels...)
	require.NoError(t, err)
	require.Equal(t, "team-b", ix.Resolve(labels[0]).GetTeam())
	require.Equal(t, typesv1.Ownership_OWNERSHIP_NAMESPACE_MAPPING, ix.Resolve(labels[1]).GetOwnership())
	require.Equal(t, "sre", ix.Resolve(labels[1]).GetTeam())
	require.Empty(t, ix.Resolve(labels[2]).GetTeam(), "an unmapped namespace is nobody's")

	require.NoError(t, appteam.Delete(ctx, p, "payments", t0.Add(time.Minute)))
	ix, err = appteam.IndexFor(ctx, p, labels...)
	require.NoError(t, err)
	require.Empty(t, ix.Resolve(labels[0]).GetTeam(), "a deleted app's namespace is nobody's")
}

// knownWorld is 1,000 apps of 50 teams and 100 mapped namespaces.
func knownWorld(b *testing.B, p *pgxpool.Pool) {
	b.Helper()
	ctx := context.Background()
	t0 := time.Now()
	for i := range 1000 {
		name := fmt.Sprintf("app-%d", i)
		require.NoError(b, appteam.SetApp(ctx, p, appteam.App{Name: name, Team: fmt.Sprintf("team-%d", i%50), Cluster: "kind", Namespace: name}, t0))
	}
	for i := range 100 {
		require.NoError(b, appteam.SetNamespace(ctx, p, subject.Mapping{Namespace: fmt.Sprintf("infra-%d", i), Team: "sre"}, t0))
	}
}

// storm is a webhook's 100 alerts over 20 namespaces, as kube-state-metrics
// sends them, half of them with an app label.
func storm() []map[string]string {
	out := make([]map[string]string, 100)
	for i := range out {
		ns := fmt.Sprintf("app-%d", i%20)
		if i%4 == 0 {
			ns = fmt.Sprintf("infra-%d", i%20)
		}
		out[i] = map[string]string{"alertname": "KubePodCrashLooping", "namespace": ns, "pod": fmt.Sprintf("%s-7d4b9c-%05d", ns, i), "container": "app"}
		if i%2 == 0 {
			out[i]["app"] = ns
		}
	}
	return out
}

// BenchmarkSubject is what resolving subjects costs per alert: the
// projection read once per batch of 100 alerts (as monitor and the
// gateway do), and Resolve for each alert. ns/alert is the figure.
func BenchmarkSubject(b *testing.B) {
	p := pool(b)
	knownWorld(b, p)
	ctx := context.Background()
	batch := storm()
	b.Run("batch-of-100", func(b *testing.B) {
		for b.Loop() {
			ix, err := appteam.IndexFor(ctx, p, batch...)
			if err != nil {
				b.Fatal(err)
			}
			for _, ls := range batch {
				if ix.Resolve(ls).GetTeam() == "" && ls["namespace"] != "" && ls["namespace"][0] == 'a' {
					b.Fatal("an app's namespace resolved to no team")
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/alert")
	})
	b.Run("resolve-only", func(b *testing.B) {
		ix, err := appteam.IndexFor(ctx, p, batch...)
		require.NoError(b, err)
		for b.Loop() {
			for _, ls := range batch {
				_ = ix.Resolve(ls)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/alert")
	})
}
