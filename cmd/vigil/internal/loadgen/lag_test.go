package loadgen

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLagOf(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ms := func(n int) Duration { return Duration(time.Duration(n) * time.Millisecond) }

	tests := []struct {
		name                string
		accepted, persisted []Point
		samples             int
		want                Lag
	}{
		{
			name: "no alerts",
			want: Lag{},
		},
		{
			name:      "nothing persisted",
			accepted:  []Point{{at(0), 10}},
			persisted: nil,
			samples:   1000,
			want:      Lag{},
		},
		{
			// Every alert persisted 300ms after its acceptance.
			name:      "constant lag",
			accepted:  []Point{{at(0), 10}, {at(1000), 20}, {at(2000), 30}},
			persisted: []Point{{at(300), 10}, {at(1300), 20}, {at(2300), 30}},
			samples:   1000,
			want:      Lag{P50: ms(300), P99: ms(300), Max: ms(300), Samples: 30},
		},
		{
			// Alerts 1-5: 500ms; 6-10: 2000ms; 11-20: 1000ms. Sorted:
			// 5×500ms, 10×1s, 5×2s; nearest rank: p50 is the 10th, p99
			// the 20th.
			name:      "persisted in steps",
			accepted:  []Point{{at(0), 10}, {at(1000), 20}},
			persisted: []Point{{at(500), 5}, {at(2000), 20}},
			samples:   1000,
			want:      Lag{P50: ms(1000), P99: ms(2000), Max: ms(2000), Samples: 20},
		},
		{
			// The poll saw the alerts before the client read the 202:
			// no lag, not a negative one.
			name:      "seen before accepted",
			accepted:  []Point{{at(1000), 4}},
			persisted: []Point{{at(900), 4}},
			samples:   1000,
			want:      Lag{Samples: 4},
		},
		{
			// Only the 6 alerts both curves reached are sampled.
			name:      "some missing",
			accepted:  []Point{{at(0), 10}},
			persisted: []Point{{at(100), 2}, {at(700), 6}},
			samples:   1000,
			want:      Lag{P50: ms(700), P99: ms(700), Max: ms(700), Samples: 6},
		},
		{
			// More persisted than accepted (a request that timed out was
			// stored anyway): the accepted ones are sampled.
			name:      "more persisted than accepted",
			accepted:  []Point{{at(0), 3}},
			persisted: []Point{{at(250), 5}},
			samples:   1000,
			want:      Lag{P50: ms(250), P99: ms(250), Max: ms(250), Samples: 3},
		},
		{
			// 10,000 alerts, 10 samples: alerts 1000, 2000, ... 10000.
			// Alert k·1000 was accepted at k·100ms; the first 5000 are
			// persisted at 1s, the rest at 3s.
			name: "sampled",
			accepted: func() []Point {
				var c []Point
				for k := 1; k <= 10; k++ {
					c = append(c, Point{at(k * 100), int64(k * 1000)})
				}
				return c
			}(),
			persisted: []Point{{at(1000), 5000}, {at(3000), 10000}},
			samples:   10,
			// Lags: 900, 800, 700, 600, 500 (ms, to 1s), then 2400, 2300,
			// 2200, 2100, 2000 (to 3s).
			want: Lag{P50: ms(900), P99: ms(2400), Max: ms(2400), Samples: 10},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, lagOf(tt.accepted, tt.persisted, tt.samples))
		})
	}
}

func TestCumulative(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC)
	// Requests as senders recorded them: out of time order, one with no
	// unique alert (only repeats).
	events := []Point{{t0.Add(2 * time.Second), 5}, {t0, 10}, {t0.Add(time.Second), 0}, {t0.Add(3 * time.Second), 1}}
	require.Equal(t, []Point{{t0, 10}, {t0.Add(2 * time.Second), 15}, {t0.Add(3 * time.Second), 16}}, cumulative(events))
}

func TestReach(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC)
	curve := []Point{{t0, 10}, {t0.Add(time.Second), 20}}
	got, ok := reach(curve, 10)
	require.True(t, ok)
	require.Equal(t, t0, got)
	got, ok = reach(curve, 11)
	require.True(t, ok)
	require.Equal(t, t0.Add(time.Second), got)
	_, ok = reach(curve, 21)
	require.False(t, ok)
}
