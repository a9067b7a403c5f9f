package loadgen

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// kind is what an alert of a request is to the run.
type kind uint8

const (
	// unique is an alert sent for the first time: one more alert the
	// incidents must account for.
	unique kind = iota
	// repeat re-sends an accepted, still firing alert with the same labels
	// and startsAt: monitor must fold it into the alert it has.
	repeat
	// resolve sends an accepted alert again as resolved, with endsAt.
	resolve
)

// alertRef is one alert of a request: the run's n-th unique alert, sent
// as kind.
type alertRef struct {
	n    int64
	kind kind
}

// request is what one sender sends at once: alerts of one group, as
// Alertmanager sends one webhook per group.
type request struct {
	group  int
	alerts []alertRef
}

// namespacesPerName is how many namespaces each alertname of a run spans:
// group g is alertname g/10 in namespace g%10.
const namespacesPerName = 10

// spec names the alerts of one run. Everything but endsAt is a function of
// the run, the group and the alert's number, so a repeat or a resolution
// carries exactly the labels (and so the fingerprint) and startsAt of the
// alert it refers to.
type spec struct {
	runID    string
	groups   int
	startsAt time.Time
}

// prefix starts the alertname of every alert of the run, and so the title
// and group labels of every incident of the run: the read-back counts only
// incidents whose alertname has it.
func (s *spec) prefix() string { return "Bench" + s.runID + "_" }

func (s *spec) alertname(group int) string {
	return fmt.Sprintf("%s%d", s.prefix(), group/min(s.groups, namespacesPerName))
}

func (s *spec) namespace(group int) string {
	return fmt.Sprintf("ns%d", group%min(s.groups, namespacesPerName))
}

// Label names and values every alert of a run carries besides alertname,
// namespace and instance.
const (
	runLabel     = "bench_run"
	jobLabel     = "job"
	jobValue     = "vigil-bench"
	severity     = "warning"
	summary      = "vigil bench ingest load"
	generatorURL = "http://vigil-bench.invalid/graph"
	externalURL  = "http://vigil-bench.invalid"
)

// labels are the labels of the run's n-th unique alert in group.
func (s *spec) labels(group int, n int64) map[string]string {
	return map[string]string{
		"alertname": s.alertname(group),
		"namespace": s.namespace(group),
		"instance":  s.instance(n),
		"severity":  severity,
		jobLabel:    jobValue,
		runLabel:    s.runID,
	}
}

// instance is the label that makes the n-th alert unique, within the run
// and across runs.
func (s *spec) instance(n int64) string { return fmt.Sprintf("bench-%s-%d", s.runID, n) }

// maxRepeatPool bounds how many accepted alerts per group are remembered
// as candidates to repeat; past it a random one is replaced.
const maxRepeatPool = 1 << 16

// workload decides what each request carries: resolutions due first, then
// repeats at the asked ratio, then new unique alerts until the count is
// reached. It learns from done which alerts were accepted: only those are
// repeated or resolved, and an alert chosen for resolution is never
// repeated (a firing repeat after its resolution would be stale).
type workload struct {
	groups       int
	count        int64 // unique alerts to send; 0: no limit
	repeatRatio  float64
	resolveRatio float64

	mu        sync.Mutex
	rng       *rand.Rand
	next      int64 // the next unique alert's number
	nextGroup int
	slots     int64 // unique and repeat slots filled
	repeats   int64
	accepted  int64 // unique alerts accepted
	resolving int64 // of which chosen for resolution
	firing    [][]int64
	toResolve [][]int64
	inflight  int
}

func newWorkload(groups int, count int64, repeatRatio, resolveRatio float64, seed uint64) *workload {
	return &workload{
		groups: groups, count: count, repeatRatio: repeatRatio, resolveRatio: resolveRatio,
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		firing:    make([][]int64, groups),
		toResolve: make([][]int64, groups),
	}
}

// takeState says whether take returned a request.
type takeState int

const (
	ready takeState = iota
	// wait: nothing to send now, but requests in flight may yet queue
	// resolutions.
	wait
	// finished: every unique alert is sent and every resolution too.
	finished
)

// take returns the next request, of at most k alerts.
func (w *workload) take(k int) (request, takeState) {
	w.mu.Lock()
	defer w.mu.Unlock()
	budget := w.count == 0 || w.next < w.count
	g := -1
	if budget {
		g = w.nextGroup
		w.nextGroup = (w.nextGroup + 1) % w.groups
	} else {
		for i := range w.groups {
			if j := (w.nextGroup + i) % w.groups; len(w.toResolve[j]) > 0 {
				g, w.nextGroup = j, (j+1)%w.groups
				break
			}
		}
		if g < 0 {
			if w.inflight == 0 {
				return request{}, finished
			}
			return request{}, wait
		}
	}
	req := request{group: g, alerts: make([]alertRef, 0, k)}
	for len(req.alerts) < k {
		if q := w.toResolve[g]; len(q) > 0 {
			req.alerts = append(req.alerts, alertRef{n: q[0], kind: resolve})
			w.toResolve[g] = q[1:]
			continue
		}
		if w.count > 0 && w.next >= w.count {
			break
		}
		// Repeats owed so far: a repeat not possible yet (nothing accepted
		// in the group) is made up later, so the ratio holds over the run.
		w.slots++
		if pool := w.firing[g]; int64(float64(w.slots)*w.repeatRatio) > w.repeats && len(pool) > 0 {
			w.repeats++
			req.alerts = append(req.alerts, alertRef{n: pool[w.rng.IntN(len(pool))], kind: repeat})
			continue
		}
		req.alerts = append(req.alerts, alertRef{n: w.next, kind: unique})
		w.next++
	}
	w.inflight++
	return req, ready
}

// done tells the workload how req ended: accepted, or not (rejected,
// failed or never sent). Alerts of a request not accepted are not tried
// again.
func (w *workload) done(req request, accepted bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.inflight--
	for _, a := range req.alerts {
		switch {
		case a.kind != unique || !accepted:
		case int64(float64(w.accepted+1)*w.resolveRatio) > w.resolving:
			w.accepted++
			w.resolving++
			w.toResolve[req.group] = append(w.toResolve[req.group], a.n)
		default:
			w.accepted++
			if pool := w.firing[req.group]; len(pool) >= maxRepeatPool {
				pool[w.rng.IntN(len(pool))] = a.n
			} else {
				w.firing[req.group] = append(pool, a.n)
			}
		}
	}
}
