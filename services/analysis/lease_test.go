package analysis_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	analysisv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/analysis/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/analysis"
	"github.com/vigil-ops/vigil/services/analysis/internal/engine"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
)

// slowAnalyzer answers as fixedAnalyzer after taking its time, as an LLM
// may, counting its calls.
type slowAnalyzer struct {
	took  time.Duration
	calls atomic.Int32
}

func (s *slowAnalyzer) Analyze(ctx context.Context, b *evidence.Bundle, first string) (engine.Result, []*analysisv1.Attempt, error) {
	s.calls.Add(1)
	select {
	case <-ctx.Done():
		return engine.Result{}, nil, ctx.Err()
	case <-time.After(s.took):
	}
	return fixedAnalyzer{confidence: 0.6}.Analyze(ctx, b, first)
}

// An analysis that takes four times the job's lease keeps its job: its
// worker renews the lease while it works, so the other worker does not
// take the incident and analyse it again.
func TestSlowAnalysisKeepsItsJob(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := crashingRelease(t, k)
	const lease = time.Second
	slow := &slowAnalyzer{took: 4 * lease}
	f := startOpts(t, analysis.Options{JobLease: lease, Workers: 2}, slow, clusters{k.Clientset})
	e := opened(ns, "checkout", time.Now())
	require.NoError(t, f.pub.Publish(t.Context(), e))

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		list, err := f.svc.Server().ListAnalyses(t.Context(), &analysisv1.ListAnalysesRequest{IncidentId: e.GetIncident().GetId()})
		require.NoError(c, err)
		require.Len(c, list.GetAnalyses(), 1)
	}, time.Minute, 100*time.Millisecond)
	assert.Equal(t, int32(1), slow.calls.Load(), "analysed once, by the worker that leased it")
}
