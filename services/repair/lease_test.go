package repair_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/vigil-ops/vigil/pkg/bus"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/repair"
)

// patching passes a repair service's requests to the real API server,
// counting the PATCHes of Deployments (the changes its executors make,
// one an execution) in patches as they are asked for. Each is held delay
// before it is sent; with hang, once the cluster has made the change
// the answer never comes back, as for a replica killed at that moment.
type patching struct {
	next    http.RoundTripper
	delay   time.Duration
	hang    bool
	patches *atomic.Int32
}

func (p *patching) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPatch || !strings.Contains(r.URL.Path, "/deployments/") {
		return p.next.RoundTrip(r)
	}
	p.patches.Add(1)
	select {
	case <-r.Context().Done():
		return nil, r.Context().Err()
	case <-time.After(p.delay):
	}
	resp, err := p.next.RoundTrip(r)
	if err != nil || !p.hang {
		return resp, err
	}
	_ = resp.Body.Close()
	<-r.Context().Done()
	return nil, r.Context().Err()
}

// client is a client of k's API server through p.
func (p *patching) client(t *testing.T, k *testkit.Kube) kubernetes.Interface {
	t.Helper()
	return through(t, k, func(rt http.RoundTripper) http.RoundTripper { p.next = rt; return p })
}

// through is a client of k's API server whose requests go through wrap
// of the real transport.
func through(t *testing.T, k *testkit.Kube, wrap func(http.RoundTripper) http.RoundTripper) kubernetes.Interface {
	t.Helper()
	cfg := rest.CopyConfig(k.Config)
	cfg.Wrap(wrap)
	kc, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	return kc
}

// leaseSetup is a database and a stream for replicas, and a namespace.
func leaseSetup(t *testing.T, k *testkit.Kube) (dsn string, js jetstream.JetStream, ns string) {
	t.Helper()
	_, js = testkit.JetStream(t, testkit.NATS(t))
	require.NoError(t, bus.Provision(context.Background(), js, testkit.TestStreams))
	return testkit.Postgres(t), js, k.Namespace(t)
}

// generationOf is the Deployment's generation now.
func generationOf(t *testing.T, k *testkit.Kube, ns, name string) int64 {
	t.Helper()
	d, err := k.Clientset.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return d.Generation
}

// A restart whose change takes five leases to reach the cluster stays
// its worker's: the worker renews the lease while it executes, so no
// worker of either replica takes the repair and restarts the Deployment
// a second time.
func TestSlowExecutionKeepsItsLease(t *testing.T) {
	k := testkit.SharedKube(t)
	dsn, js, ns := leaseSetup(t, k)
	const lease = time.Second
	var patches atomic.Int32
	opts := repair.Options{Workers: 2, Lease: lease}
	a := replicaOn(t, (&patching{delay: 5 * lease, patches: &patches}).client(t, k), opts, dsn, js)
	replicaOn(t, (&patching{delay: 5 * lease, patches: &patches}).client(t, k), opts, dsn, js)
	before := healthy(t, k, ns, "orders", 1).Generation
	a.setGuardrails(t, &repairv1.Guardrails{Scope: "global", Auto: proto.Bool(true)})

	e := a.proposal(t, ns, "orders", "", typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, typesv1.Risk_RISK_LOW, 0.9)
	require.NoError(t, a.pub.Publish(t.Context(), e))
	r := a.repairOf(t, e, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED, repairv1.RepairStatus_REPAIR_STATUS_FAILED)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED, r.GetStatus(), "%v", r.GetSteps())
	assert.Equal(t, int32(1), patches.Load(), "executed once: no other worker took the repair meanwhile")
	assert.Equal(t, before+1, generationOf(t, k, ns, "orders"), "restarted once")
}

// A replica killed once its restart reached the cluster, before it
// recorded it, leaves the repair to another replica as soon as its lease
// runs out; that one finds the change made (the repair's id on the pod
// template), does not make it again, and verifies it.
func TestDeadWorkersRepairTakenOver(t *testing.T) {
	k := testkit.SharedKube(t)
	dsn, js, ns := leaseSetup(t, k)
	const lease = time.Second
	var patches atomic.Int32
	opts := repair.Options{Lease: lease}
	a := replicaOn(t, (&patching{hang: true, patches: &patches}).client(t, k), opts, dsn, js)
	before := healthy(t, k, ns, "billing", 1).Generation
	a.setGuardrails(t, &repairv1.Guardrails{Scope: "global", Auto: proto.Bool(true)})
	e := a.proposal(t, ns, "billing", "", typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, typesv1.Risk_RISK_LOW, 0.9)
	require.NoError(t, a.pub.Publish(t.Context(), e))
	require.Eventually(t, func() bool { return patches.Load() == 1 }, time.Minute, 50*time.Millisecond, "the restart reaches the cluster")
	require.Eventually(t, func() bool { return generationOf(t, k, ns, "billing") == before+1 }, 30*time.Second, 50*time.Millisecond)

	b := replicaOn(t, (&patching{patches: &patches}).client(t, k), opts, dsn, js)
	a.stop()
	// Ten leases: a lease that outlived its worker (the 15-s default, or
	// one extended for a rollout) does not end in time.
	require.Eventually(t, func() bool {
		resp, err := b.api.ListRepairs(as(admin), &repairv1.ListRepairsRequest{IncidentId: e.GetIncidentId()})
		require.NoError(t, err)
		return len(resp.GetRepairs()) == 1 && resp.GetRepairs()[0].GetStatus() != repairv1.RepairStatus_REPAIR_STATUS_RUNNING
	}, 10*lease, 50*time.Millisecond, "another replica takes the repair over")
	r := b.repairOf(t, e, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED, repairv1.RepairStatus_REPAIR_STATUS_FAILED,
		repairv1.RepairStatus_REPAIR_STATUS_BLOCKED)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED, r.GetStatus(), "%v", r.GetSteps())
	i := slices.Index(steps(r), repairv1.StepKind_STEP_KIND_EXECUTED)
	require.NotEqual(t, -1, i, "%v", r.GetSteps())
	assert.Contains(t, r.GetSteps()[i].GetMessage(), "was already restarted by repair "+r.GetId())
	assert.Equal(t, int32(1), patches.Load(), "the change was made once, by the replica that died")
	assert.Equal(t, before+1, generationOf(t, k, ns, "billing"), "restarted once")
}
