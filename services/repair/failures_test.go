package repair_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"k8s.io/client-go/kubernetes"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/repair"
)

var errCredentials = errors.New("cluster credentials out of reach")

// flaky is the test cluster as a repair service reaches it, failing as
// the test says. Once a Deployment was changed (a PATCH went through),
// the API server does not answer reads of Deployments until up: the
// verification sees nothing yet and polls on, each poll a lease. And the
// next calls for the cluster's client fail as the test asks (failNext),
// as when the deploy service cannot hand the credentials out for a
// moment: the step of the repair fails then.
type flaky struct {
	kc   kubernetes.Interface
	next http.RoundTripper
	// patched: a Deployment was changed; up: reads are answered again.
	patched, up atomic.Bool
	// unanswered counts the reads of Deployments not answered.
	unanswered atomic.Int32

	mu sync.Mutex
	// fail is how many calls for the client fail next (<0: all); failed
	// counts those that did.
	fail, failed int
}

func newFlaky(t *testing.T, k *testkit.Kube) *flaky {
	t.Helper()
	f := &flaky{}
	f.kc = through(t, k, func(rt http.RoundTripper) http.RoundTripper { f.next = rt; return f })
	return f
}

func (f *flaky) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.Contains(r.URL.Path, "/deployments/") {
		return f.next.RoundTrip(r)
	}
	if r.Method == http.MethodGet && f.patched.Load() && !f.up.Load() {
		f.unanswered.Add(1)
		return nil, errors.New("dial tcp: connect: connection refused")
	}
	resp, err := f.next.RoundTrip(r)
	if r.Method == http.MethodPatch && err == nil && resp.StatusCode == http.StatusOK {
		f.patched.Store(true)
	}
	return resp, err
}

func (f *flaky) Repairer(context.Context, string) (kubernetes.Interface, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail == 0 {
		return f.kc, nil
	}
	if f.fail > 0 {
		f.fail--
	}
	f.failed++
	return nil, errCredentials
}

func (*flaky) DefaultCluster(context.Context) (string, error) { return "main", nil }

// failNext makes the next n calls for the client fail (n < 0: all).
func (f *flaky) failNext(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = n
}

func (f *flaky) failures() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// verifying starts a repair service on cl with a 1-s lease (a failed step
// is tried again a lease later), and has it restart a healthy Deployment
// automatically; it returns once the verification polled ten times, each
// a lease: twice as many leases as failures a step may have.
func verifying(t *testing.T, k *testkit.Kube, cl *flaky) (*fixture, *eventsv1.AnalysisCompleted) {
	t.Helper()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	require.NoError(t, bus.Provision(context.Background(), js, testkit.TestStreams))
	f := replicaWith(t, cl, repair.Options{Lease: time.Second}, testkit.Postgres(t), js)
	ns := k.Namespace(t)
	healthy(t, k, ns, "orders", 1)
	f.setGuardrails(t, &repairv1.Guardrails{Scope: "global", Auto: proto.Bool(true)})
	e := f.proposal(t, ns, "orders", "", typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, typesv1.Risk_RISK_LOW, 0.9)
	require.NoError(t, f.pub.Publish(t.Context(), e))
	require.Eventually(t, func() bool { return cl.unanswered.Load() >= 10 }, time.Minute, 20*time.Millisecond, "the verification polls")
	f.repairOf(t, e, repairv1.RepairStatus_REPAIR_STATUS_VERIFYING)
	return f, e
}

// A repair verified for many polls — a lease each — that then meets
// failures (the cluster's credentials out of reach for a while) is not
// given up: only failed tries in a row count, four are one short, and a
// poll that goes well ends the run, so one more later is the first of a
// new one. Once the workload is seen healthy the repair succeeds.
func TestVerificationOutlastsFailures(t *testing.T) {
	k := testkit.SharedKube(t)
	cl := newFlaky(t, k)
	f, e := verifying(t, k, cl)

	cl.failNext(4)
	require.Eventually(t, func() bool { return cl.failures() == 4 }, time.Minute, 20*time.Millisecond, "four tries fail")
	polls := cl.unanswered.Load()
	require.Eventually(t, func() bool { return cl.unanswered.Load() >= polls+2 }, time.Minute, 20*time.Millisecond, "polls go on")
	cl.failNext(1)
	require.Eventually(t, func() bool { return cl.failures() == 5 }, time.Minute, 20*time.Millisecond, "a fifth, not in a row")
	polls = cl.unanswered.Load()
	require.Eventually(t, func() bool { return cl.unanswered.Load() >= polls+2 }, time.Minute, 20*time.Millisecond, "polls go on")
	r := f.repairOf(t, e, repairv1.RepairStatus_REPAIR_STATUS_VERIFYING, repairv1.RepairStatus_REPAIR_STATUS_FAILED)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_VERIFYING, r.GetStatus(), "%v", r.GetSteps())

	cl.up.Store(true)
	r = f.repairOf(t, e, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED, repairv1.RepairStatus_REPAIR_STATUS_FAILED)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED, r.GetStatus(), "%v", r.GetSteps())
	assert.Contains(t, steps(r), repairv1.StepKind_STEP_KIND_VERIFIED)
	assert.NotContains(t, steps(r), repairv1.StepKind_STEP_KIND_ESCALATED)
	assert.Empty(t, events(t, f.js, bus.SubjectRepairFailed, func() *eventsv1.RepairFailed { return &eventsv1.RepairFailed{} }))
}

// A step that keeps failing gives up after five failed tries in a row,
// however many leases the repair took before: it fails, and people are
// told why.
func TestStepThatKeepsFailingGivesUp(t *testing.T) {
	k := testkit.SharedKube(t)
	cl := newFlaky(t, k)
	f, e := verifying(t, k, cl)

	cl.failNext(-1)
	r := f.repairOf(t, e, repairv1.RepairStatus_REPAIR_STATUS_FAILED, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_FAILED, r.GetStatus(), "%v", r.GetSteps())
	assert.Equal(t, 5, cl.failures(), "tried five times")
	last := r.GetSteps()[len(r.GetSteps())-1]
	assert.Equal(t, repairv1.StepKind_STEP_KIND_ESCALATED, last.GetKind())
	assert.Contains(t, last.GetMessage(), "gave up after 5 failed tries in a row: "+errCredentials.Error())
	failed := events(t, f.js, bus.SubjectRepairFailed, func() *eventsv1.RepairFailed { return &eventsv1.RepairFailed{} })
	require.Len(t, failed, 1)
}

// hanging is the test cluster, but for calls for its client while hang is
// set: those never answer, until the worker that asked is stopped.
type hanging struct {
	kc      kubernetes.Interface
	hang    atomic.Bool
	entered atomic.Int32
}

func (h *hanging) Repairer(ctx context.Context, _ string) (kubernetes.Interface, error) {
	if h.hang.Load() {
		h.entered.Add(1)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return h.kc, nil
}

func (*hanging) DefaultCluster(context.Context) (string, error) { return "main", nil }

// A step whose worker dies or is stopped in it every time fails nothing,
// yet it is not tried forever: after twice five tries that never
// finished the next worker gives the repair up, and people are told.
func TestStepThatNeverFinishesGivesUp(t *testing.T) {
	k := testkit.SharedKube(t)
	_, js := testkit.JetStream(t, testkit.NATS(t))
	require.NoError(t, bus.Provision(context.Background(), js, testkit.TestStreams))
	dsn := testkit.Postgres(t)
	cl := &hanging{kc: k.Clientset}
	cl.hang.Store(true)
	opts := repair.Options{Lease: time.Second}
	f := replicaWith(t, cl, opts, dsn, js)
	ns := k.Namespace(t)
	healthy(t, k, ns, "orders", 1)
	f.setGuardrails(t, &repairv1.Guardrails{Scope: "global", Auto: proto.Bool(true)})
	e := f.proposal(t, ns, "orders", "", typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, typesv1.Risk_RISK_LOW, 0.9)
	require.NoError(t, f.pub.Publish(t.Context(), e))
	for try := int32(1); try <= 10; try++ {
		require.Eventually(t, func() bool { return cl.entered.Load() == try }, time.Minute, 20*time.Millisecond, "try %d", try)
		f.stop() // in the middle of the step
		f = replicaWith(t, cl, opts, dsn, js)
	}
	cl.hang.Store(false)
	r := f.repairOf(t, e, repairv1.RepairStatus_REPAIR_STATUS_FAILED, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_FAILED, r.GetStatus(), "%v", r.GetSteps())
	assert.Equal(t, int32(10), cl.entered.Load(), "not tried an eleventh time")
	last := r.GetSteps()[len(r.GetSteps())-1]
	assert.Contains(t, last.GetMessage(), "gave up: 10 tries of its step never finished")
	require.Len(t, events(t, f.js, bus.SubjectRepairFailed, func() *eventsv1.RepairFailed { return &eventsv1.RepairFailed{} }), 1)
}
