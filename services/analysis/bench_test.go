package analysis_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/analysis"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
	"github.com/vigil-ops/vigil/services/analysis/internal/gather"
)

// BenchmarkOpenedToCompleted measures the whole path of one analysis with
// the rules engine on the dev control plane: incident.opened published →
// (consumed, queued, leased) → target resolved, evidence gathered from the
// cluster, rules, checks → stored and analysis.completed published through
// the outbox → read by a consumer. "Done" is the analysis.completed in
// hand. Incidents are sent one at a time (latency), then 20 at once
// (a burst). The yardstick, measured in the same run, is gathering alone
// (Resolve + Gather against the same cluster), which bounds what the rest
// of the path costs.
func BenchmarkOpenedToCompleted(b *testing.B) {
	k := testkit.SharedKube(b)
	ns := crashingRelease(b, k)
	// The service's client has the rate limits deploy.Readers gives it
	// (client-go's default, 5/s, would measure its throttle); the
	// yardstick has a client of its own.
	client := func() kubernetes.Interface {
		rc := rest.CopyConfig(k.Config)
		rc.QPS, rc.Burst = 50, 100
		kc, err := kubernetes.NewForConfig(rc)
		require.NoError(b, err)
		return kc
	}
	kc := client()
	f := startWith(b, k, analysis.RulesOnly(), client())
	ctx := context.Background()
	s, err := f.js.Stream(ctx, "ANALYSES")
	require.NoError(b, err)
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
	require.NoError(b, err)
	wait := func(ids map[string]time.Time) []time.Duration {
		var lat []time.Duration
		for len(ids) > 0 {
			m, err := c.Next(jetstream.FetchMaxWait(30 * time.Second))
			require.NoError(b, err)
			var e eventsv1.AnalysisCompleted
			require.NoError(b, proto.Unmarshal(m.Data(), &e))
			if at, ok := ids[e.GetIncidentId()]; ok {
				lat = append(lat, time.Since(at))
				delete(ids, e.GetIncidentId())
			}
		}
		return lat
	}
	var one, burst, gathering []time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		ref, _, err := gather.Resolve(ctx, kc, "main", &typesv1.Subject{Namespace: ns, Kind: "Deployment", Name: "checkout"})
		require.NoError(b, err)
		gather.Gather(ctx, kc, ref, gather.Limits{}, &evidence.Bundle{}, time.Now())
		gathering = append(gathering, time.Since(t0))

		e := opened(ns, "checkout", time.Now())
		require.NoError(b, f.pub.Publish(ctx, e))
		one = append(one, wait(map[string]time.Time{e.GetIncident().GetId(): time.Now()})...)

		ids := map[string]time.Time{}
		for range 20 {
			e := opened(ns, "checkout", time.Now())
			ids[e.GetIncident().GetId()] = time.Now()
			require.NoError(b, f.pub.Publish(ctx, e))
		}
		burst = append(burst, wait(ids)...)
		// Incidents do not open back to back forever: the client's rate
		// limiter refills before the next one.
		time.Sleep(2 * time.Second)
	}
	b.StopTimer()
	report := func(name string, d []time.Duration) {
		slices.Sort(d)
		b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, name+"-p50-ms")
		b.ReportMetric(float64(d[len(d)*99/100].Microseconds())/1000, name+"-p99-ms")
	}
	report("one", one)
	report("burst20", burst)
	report("gather", gathering)
}
