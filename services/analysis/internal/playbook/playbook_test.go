package playbook_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/services/analysis/internal/playbook"
)

func TestAdjust(t *testing.T) {
	t.Parallel()
	p := playbook.DefaultPolicy()
	tests := []struct {
		name  string
		prior float64
		rec   playbook.Record
		want  float64
	}{
		{"no record", 0.8, playbook.Record{}, 0.8},
		{"below the floor, successes", 0.6, playbook.Record{Successes: 2}, 0.6},
		{"below the floor, failures", 0.8, playbook.Record{Failures: 2}, 0.8},
		{"at the floor, successes raise", 0.8, playbook.Record{Successes: 3}, 6.2 / 7},
		{"at the floor, failures lower", 0.8, playbook.Record{Failures: 3}, 3.2 / 7},
		{"7 of 8", 0.8, playbook.Record{Successes: 7, Failures: 1}, 10.2 / 12},
		{"mostly failing", 0.8, playbook.Record{Successes: 2, Failures: 8}, 5.2 / 14},
		{"a long good record reaches the cap, not past it", 0.8, playbook.Record{Successes: 20}, 0.95},
		{"a long good record lifts a weak answer", 0.5, playbook.Record{Successes: 40}, 0.95},
		{"a record matching the prior keeps it", 0.75, playbook.Record{Successes: 6, Failures: 2}, 0.75},
		{"a prior above the cap is capped once the record counts", 1, playbook.Record{Successes: 3}, 0.95},
		{"zero confidence learns", 0, playbook.Record{Successes: 4}, 0.5},
		{"a prior outside 0..1 is clamped", 1.5, playbook.Record{Failures: 4}, 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := p.Adjust(tt.prior, tt.rec)
			require.InDelta(t, tt.want, got, 1e-9)
			require.LessOrEqual(t, got, math.Max(p.MaxConfidence, tt.prior), "never above the cap, unless left alone")
		})
	}
}

// Past the floor of evidence, more successes never lower the confidence
// and more failures never raise it; nothing exceeds the cap.
func TestAdjustIsMonotone(t *testing.T) {
	t.Parallel()
	p := playbook.DefaultPolicy()
	for _, prior := range []float64{0, 0.3, 0.5, 0.8, 0.95} {
		for s := range 15 {
			for f := range 15 {
				c := p.Adjust(prior, playbook.Record{Successes: s, Failures: f})
				require.LessOrEqual(t, c, math.Max(prior, p.MaxConfidence))
				if s+f >= p.MinOutcomes {
					require.GreaterOrEqual(t, p.Adjust(prior, playbook.Record{Successes: s + 1, Failures: f}), c, "prior %v, %d/%d", prior, s, s+f)
					require.LessOrEqual(t, p.Adjust(prior, playbook.Record{Successes: s, Failures: f + 1}), c, "prior %v, %d/%d", prior, s, s+f)
				}
			}
		}
	}
}

func TestConfidence(t *testing.T) {
	t.Parallel()
	p := playbook.DefaultPolicy()
	tests := []struct {
		rec  playbook.Record
		want float64
	}{
		{playbook.Record{}, 0},
		{playbook.Record{Successes: 2}, 0},
		{playbook.Record{Successes: 3}, 5.0 / 7},
		{playbook.Record{Successes: 7, Failures: 1}, 9.0 / 12},
		{playbook.Record{Failures: 5}, 2.0 / 9},
		{playbook.Record{Successes: 100}, 0.95},
	}
	for _, tt := range tests {
		require.InDelta(t, tt.want, p.Confidence(tt.rec), 1e-9, "%s", tt.rec)
	}
}

func TestExplain(t *testing.T) {
	t.Parallel()
	p := playbook.DefaultPolicy()
	require.Equal(t, "playbook: 7/8 succeeded: confidence 0.80 -> 0.85",
		p.Explain(playbook.Record{Successes: 7, Failures: 1}, 0.8, 10.2/12))
	require.Equal(t, "playbook: 1/2 succeeded, fewer than 3 outcomes: confidence 0.70 unchanged",
		p.Explain(playbook.Record{Successes: 1, Failures: 1}, 0.7, 0.7))
}
