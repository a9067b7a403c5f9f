package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/monitor/internal/incident"
	"github.com/vigil-ops/vigil/services/monitor/internal/inhibit"
	"github.com/vigil-ops/vigil/services/monitor/internal/monitortest"
	"github.com/vigil-ops/vigil/services/monitor/internal/postgres"
)

// BenchmarkInhibition is the cost of inhibition per alert: chunks of 2,000
// new firing alerts (20 alertnames, 10 nodes) applied by the correlator in
// one transaction each, with no rules (the yardstick), with 100 rules
// (each alert the target of 5, keyed by node) and no source firing, and
// with sources firing for half the nodes (half the alerts inhibited).
//
//	go test -run '^$' -bench Inhibition -benchtime 20x ./services/monitor/internal/postgres/
func BenchmarkInhibition(b *testing.B) {
	const chunk, names, nodes, rules = 2000, 20, 10, 100
	var set *inhibit.Set
	{
		rs := make([]inhibit.Rule, rules)
		for i := range rs {
			rs[i] = inhibit.Rule{
				SourceMatchers: []string{fmt.Sprintf(`alertname="Down%d"`, i)},
				TargetMatchers: []string{fmt.Sprintf(`alertname="Target%d"`, i%names)},
				Equal:          []string{"node"},
			}
		}
		var err error
		set, err = inhibit.Compile(rs)
		require.NoError(b, err)
	}
	for _, tc := range []struct {
		name    string
		rules   bool
		sources int // nodes with a source firing for every rule
	}{{"rules=0", false, 0}, {"rules=100/none-inhibited", true, 0}, {"rules=100/half-inhibited", true, nodes / 2}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			pool, _ := monitortest.Pool(b)
			opts := incident.Options{UpdateInterval: time.Hour}
			if tc.rules {
				require.NoError(b, db.InTx(ctx, pool, func(tx pgx.Tx) error {
					_, err := postgres.SetInhibitionRules(ctx, tx, set, 0, false, "bench", time.Now())
					return err
				}))
				opts.Inhibitor = &postgres.Inhibitions{}
			}
			c := incident.NewCorrelator(postgres.Store{}, opts, testkit.Logger(b))
			apply := func(as []*typesv1.Alert) {
				signals := make([]*incident.Signal, len(as))
				for i, a := range as {
					signals[i] = &incident.Signal{Alert: a, Cause: bus.NewMeta("bench", nil)}
				}
				require.NoError(b, db.InTx(ctx, pool, func(tx pgx.Tx) error {
					return c.Apply(ctx, tx, c.NewPlan(signals, nil).Signals)
				}))
			}
			start := timestamppb.New(time.Now().Add(-time.Minute))
			var sources []*typesv1.Alert
			for i := range rules {
				for n := range tc.sources {
					sources = append(sources, &typesv1.Alert{
						Fingerprint: fmt.Sprintf("down%d/n%d", i, n), StartsAt: start,
						Labels: map[string]string{"alertname": fmt.Sprintf("Down%d", i), "node": fmt.Sprintf("n%d", n)},
					})
				}
			}
			if len(sources) > 0 {
				apply(sources)
			}
			batch := 0
			for b.Loop() {
				b.StopTimer()
				as := make([]*typesv1.Alert, chunk)
				for i := range as {
					as[i] = &typesv1.Alert{
						Fingerprint: fmt.Sprintf("b%d/a%d", batch, i), StartsAt: start,
						Labels: map[string]string{
							"alertname": fmt.Sprintf("Target%d", i%names), "namespace": "shop",
							"node": fmt.Sprintf("n%d", (i/names)%nodes), "instance": fmt.Sprint(batch*chunk + i),
						},
					}
				}
				batch++
				b.StartTimer()
				apply(as)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*chunk), "µs/alert")
			if tc.sources > 0 {
				var held int
				require.NoError(b, pool.QueryRow(ctx, `SELECT count(*) FROM alerts WHERE inhibited_by IS NOT NULL`).Scan(&held))
				require.Equal(b, b.N*chunk/2, held, "half the alerts inhibited")
			}
		})
	}
}
