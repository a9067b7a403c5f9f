package loadgen

import (
	"cmp"
	"math"
	"slices"
	"sort"
	"time"
)

// Point is a cumulative count of alerts at a time.
type Point struct {
	At time.Time `json:"at"`
	N  int64     `json:"n"`
}

// Lag is how long alerts took from the gateway's acceptance to being
// counted in an incident, over samples of the alerts.
type Lag struct {
	P50     Duration `json:"p50_seconds"`
	P99     Duration `json:"p99_seconds"`
	Max     Duration `json:"max_seconds"`
	Samples int      `json:"samples"`
}

// lagSamples is how many alerts lagOf looks at, at most: one every
// 1/1000th of the run.
const lagSamples = 1000

// cumulative turns per-request counts (time, alerts it carried) into a
// cumulative curve, in time order; requests that carried none are left out.
func cumulative(events []Point) []Point {
	events = slices.Clone(events)
	slices.SortStableFunc(events, func(a, b Point) int { return a.At.Compare(b.At) })
	curve := make([]Point, 0, len(events))
	var n int64
	for _, e := range events {
		if e.N <= 0 {
			continue
		}
		n += e.N
		curve = append(curve, Point{At: e.At, N: n})
	}
	return curve
}

// lagOf matches the cumulative curve of accepted alerts with the one of
// persisted alerts first in, first out: the n-th accepted alert is taken
// to be the n-th persisted one, and its lag is the time the persisted
// count first reached n minus the time the accepted count did. Both curves
// must be non-decreasing in N and in At.
//
// The n-th persisted alert is not necessarily the n-th accepted one, but
// the distribution over the run is what a FIFO pipeline would show. The
// persisted curve is only known at the read-back's polls, so every lag is
// rounded up to the next poll: the resolution is the poll interval (plus
// the time a poll takes). A persisted count seen before the acceptance
// (the poll answered before the client read the 202) counts as no lag.
//
// Only alerts both curves reach are sampled: at most samples of them,
// evenly spaced (every alert when there are fewer).
func lagOf(accepted, persisted []Point, samples int) Lag {
	if len(accepted) == 0 || len(persisted) == 0 || samples <= 0 {
		return Lag{}
	}
	total := min(accepted[len(accepted)-1].N, persisted[len(persisted)-1].N)
	if total <= 0 {
		return Lag{}
	}
	steps := min(total, int64(samples))
	lags := make([]time.Duration, 0, steps)
	for k := int64(1); k <= steps; k++ {
		n := (k*total + steps - 1) / steps // ceil(k·total/steps): the last sample is total
		a, _ := reach(accepted, n)
		p, _ := reach(persisted, n)
		lags = append(lags, max0(p.Sub(a)))
	}
	slices.Sort(lags)
	return Lag{
		P50:     Duration(percentile(lags, 0.50)),
		P99:     Duration(percentile(lags, 0.99)),
		Max:     Duration(lags[len(lags)-1]),
		Samples: len(lags),
	}
}

// reach returns when curve first reached n.
func reach(curve []Point, n int64) (time.Time, bool) {
	i := sort.Search(len(curve), func(i int) bool { return curve[i].N >= n })
	if i == len(curve) {
		return time.Time{}, false
	}
	return curve[i].At, true
}

// percentile of sorted values, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(float64(len(sorted))*p - 1e-9))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func max0[T cmp.Ordered](v T) T {
	var zero T
	return max(v, zero)
}
