package loadgen

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/alertlabel"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// drive takes requests of k alerts from w until it is finished, accepting
// each unless reject says otherwise, and returns them in order.
func drive(t *testing.T, w *workload, k int, reject func(i int) bool) []request {
	t.Helper()
	var reqs []request
	for i := 0; ; i++ {
		require.Less(t, i, 100_000, "the workload does not finish")
		req, state := w.take(k)
		if state == finished {
			return reqs
		}
		require.Equal(t, ready, state, "one request at a time is never left waiting")
		require.NotEmpty(t, req.alerts)
		require.LessOrEqual(t, len(req.alerts), k)
		w.done(req, reject == nil || !reject(i))
		reqs = append(reqs, req)
	}
}

func TestWorkloadKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                         string
		groups                       int
		count                        int64
		k                            int
		repeatRatio, resolveRatio    float64
		wantRepeats, wantResolutions int
	}{
		{name: "unique only", groups: 3, count: 300, k: 10},
		{name: "repeats", groups: 3, count: 300, k: 10, repeatRatio: 0.25, wantRepeats: 100}, // 300 of 400 alerts unique
		{name: "resolutions", groups: 3, count: 300, k: 10, resolveRatio: 0.1, wantResolutions: 30},
		{name: "all resolved", groups: 2, count: 50, k: 7, resolveRatio: 1, wantResolutions: 50},
		{name: "both", groups: 5, count: 1000, k: 20, repeatRatio: 0.5, resolveRatio: 0.5, wantRepeats: 1000, wantResolutions: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorkload(tt.groups, tt.count, tt.repeatRatio, tt.resolveRatio, 1)
			reqs := drive(t, w, tt.k, nil)

			uniques := map[int64]int{} // alert → group
			resolved := map[int64]bool{}
			repeats, resolutions := 0, 0
			for _, req := range reqs {
				for _, a := range req.alerts {
					switch a.kind {
					case unique:
						require.NotContains(t, uniques, a.n, "a unique alert is sent once")
						uniques[a.n] = req.group
					case repeat:
						// Only an alert already accepted, in its own group,
						// not one resolved.
						require.Contains(t, uniques, a.n)
						require.Equal(t, uniques[a.n], req.group)
						repeats++
					case resolve:
						require.Contains(t, uniques, a.n)
						require.Equal(t, uniques[a.n], req.group)
						require.False(t, resolved[a.n], "resolved once")
						resolved[a.n] = true
						resolutions++
					}
				}
			}
			for _, req := range reqs {
				for _, a := range req.alerts {
					if a.kind == repeat {
						require.False(t, resolved[a.n], "an alert to be resolved is not repeated")
					}
				}
			}
			require.Len(t, uniques, int(tt.count))
			// Repeats not possible yet (nothing accepted in a group) are
			// made up later: the ratio holds within one alert.
			require.InDelta(t, tt.wantRepeats, repeats, 1)
			require.Equal(t, tt.wantResolutions, resolutions)
			groups := map[int]bool{}
			for _, g := range uniques {
				groups[g] = true
			}
			require.Len(t, groups, tt.groups, "alerts spread over every group")
		})
	}
}

func TestWorkloadRejected(t *testing.T) {
	t.Parallel()
	// Every other request rejected: its unique alerts are neither repeated
	// nor resolved, and not sent again.
	w := newWorkload(1, 100, 0.3, 1, 1)
	reqs := drive(t, w, 5, func(i int) bool { return i%2 == 1 })
	rejected := map[int64]bool{}
	seen := map[int64]bool{}
	for i, req := range reqs {
		for _, a := range req.alerts {
			if a.kind == unique {
				require.False(t, seen[a.n])
				seen[a.n] = true
				if i%2 == 1 {
					rejected[a.n] = true
				}
			} else {
				require.False(t, rejected[a.n], "alert %d of a rejected request was sent again", a.n)
			}
		}
	}
	require.Len(t, seen, 100)
}

func TestWorkloadWaitsForRequestsInFlight(t *testing.T) {
	t.Parallel()
	w := newWorkload(1, 2, 0, 1, 1)
	req, state := w.take(2)
	require.Equal(t, ready, state)
	// Every unique alert sent, but the request in flight may queue
	// resolutions.
	_, state = w.take(2)
	require.Equal(t, wait, state)
	w.done(req, true)
	res, state := w.take(2)
	require.Equal(t, ready, state)
	require.Equal(t, []alertRef{{0, resolve}, {1, resolve}}, res.alerts)
	w.done(res, true)
	_, state = w.take(2)
	require.Equal(t, finished, state)
}

func TestSpecNames(t *testing.T) {
	t.Parallel()
	s := &spec{runID: "r1", groups: 20}
	combos := map[[2]string]bool{}
	for g := range 20 {
		combos[[2]string{s.alertname(g), s.namespace(g)}] = true
	}
	require.Len(t, combos, 20, "distinct alertname × namespace per group")
	require.Equal(t, "Bench"+"r1_0", s.alertname(9))
	require.Equal(t, "Benchr1_1", s.alertname(10))
	require.Equal(t, "ns3", s.namespace(13))
	small := &spec{runID: "r1", groups: 3}
	require.Equal(t, []string{"ns0", "ns1", "ns2"}, []string{small.namespace(0), small.namespace(1), small.namespace(2)})
	require.Equal(t, "bench-r1-42", s.instance(42))
}

// webhookMessage is Alertmanager's webhook payload, version 4.
type webhookMessage struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []struct {
		Status       string            `json:"status"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     time.Time         `json:"startsAt"`
		EndsAt       time.Time         `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
		Fingerprint  string            `json:"fingerprint"`
	} `json:"alerts"`
}

func TestWebhookBody(t *testing.T) {
	t.Parallel()
	startsAt := time.Date(2026, 11, 22, 7, 0, 0, 123_000_000, time.UTC)
	now := startsAt.Add(time.Minute)
	s := &spec{runID: "ab12", groups: 3, startsAt: startsAt}

	tests := []struct {
		name       string
		alerts     []alertRef
		wantStatus string
	}{
		{name: "firing", alerts: []alertRef{{0, unique}, {1, unique}}, wantStatus: "firing"},
		{name: "repeat", alerts: []alertRef{{7, repeat}}, wantStatus: "firing"},
		{name: "mixed", alerts: []alertRef{{3, resolve}, {9, unique}, {4, repeat}}, wantStatus: "firing"},
		{name: "resolved", alerts: []alertRef{{5, resolve}, {6, resolve}}, wantStatus: "resolved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := request{group: 2, alerts: tt.alerts}
			body := s.webhookBody(req, now)
			require.True(t, json.Valid(body), string(body))
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			var m webhookMessage
			require.NoError(t, dec.Decode(&m))

			require.Equal(t, "4", m.Version)
			require.Equal(t, tt.wantStatus, m.Status)
			require.Equal(t, `{}:{alertname="Benchab12_0", namespace="ns2"}`, m.GroupKey)
			require.Equal(t, map[string]string{"alertname": "Benchab12_0", "namespace": "ns2"}, m.GroupLabels)
			require.Equal(t, "ab12", m.CommonLabels[runLabel])
			require.Len(t, m.Alerts, len(tt.alerts))
			for i, a := range m.Alerts {
				ref := tt.alerts[i]
				// Repeats and resolutions carry the very labels, and so
				// fingerprint, of the alert they refer to.
				require.Equal(t, s.labels(2, ref.n), a.Labels)
				require.Equal(t, "bench-ab12-"+strconv.FormatInt(ref.n, 10), a.Labels["instance"])
				require.Equal(t, alertlabel.Fingerprint(a.Labels), a.Fingerprint)
				require.Subset(t, slices.Collect(maps.Keys(a.Labels)), slices.Collect(maps.Keys(m.CommonLabels)))
				for k, v := range m.CommonLabels {
					require.Equal(t, v, a.Labels[k], "common label %s", k)
				}
				require.True(t, startsAt.Equal(a.StartsAt), "startsAt is the run's: repeats dedup")
				if ref.kind == resolve {
					require.Equal(t, "resolved", a.Status)
					require.True(t, now.Equal(a.EndsAt))
				} else {
					require.Equal(t, "firing", a.Status)
					require.True(t, a.EndsAt.IsZero())
				}
			}
		})
	}
}

func TestIngestRequest(t *testing.T) {
	t.Parallel()
	startsAt := time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC)
	now := startsAt.Add(time.Minute)
	s := &spec{runID: "ab12", groups: 3, startsAt: startsAt}
	got := s.ingestRequest(request{group: 1, alerts: []alertRef{{0, unique}, {0, repeat}, {1, resolve}}}, now)
	require.Len(t, got.GetAlerts(), 3)
	require.Equal(t, got.GetAlerts()[0].GetLabels(), got.GetAlerts()[1].GetLabels(), "a repeat has the labels of its alert")
	require.Equal(t, typesv1.AlertStatus_ALERT_STATUS_FIRING, got.GetAlerts()[0].GetStatus())
	require.Nil(t, got.GetAlerts()[0].GetEndsAt())
	require.Equal(t, typesv1.AlertStatus_ALERT_STATUS_RESOLVED, got.GetAlerts()[2].GetStatus())
	require.Equal(t, now, got.GetAlerts()[2].GetEndsAt().AsTime())
	require.Equal(t, startsAt, got.GetAlerts()[2].GetStartsAt().AsTime())
	require.Equal(t, "Benchab12_0", got.GetAlerts()[2].GetLabels()["alertname"])
	require.Equal(t, "ns1", got.GetAlerts()[2].GetLabels()["namespace"])
}
