package analysis_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/kubedev"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/workload"
	"github.com/vigil-ops/vigil/pkg/workload/workloadtest"
)

// analysed publishes an incident about Deployment ns/name and returns its
// one analysis.
func analyse(t *testing.T, k *testkit.Kube, ns, name string) *eventsv1.AnalysisCompleted {
	t.Helper()
	f := start(t, k)
	require.NoError(t, f.pub.Publish(t.Context(), opened(ns, name, time.Now())))
	var got []*eventsv1.AnalysisCompleted
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got = completed(t, f.js)
		require.Len(c, got, 1)
	}, 60*time.Second, 200*time.Millisecond)
	return got[0]
}

// lastGood is the model's last good revision of Deployment ns/name, what
// repair executes and deploy returns to.
func lastGood(t *testing.T, k *testkit.Kube, ns, name string) int64 {
	t.Helper()
	w, err := workload.Read(t.Context(), k.Clientset, ns, name, time.Now())
	require.NoError(t, err)
	if g := w.LastGood(); g != nil {
		return g.Number
	}
	return 0
}

// Two bad releases in a row after a good one: the analysis proposes the
// revision before both, the model's last good one, not the one below the
// current (which crashes too).
func TestTwoBadReleasesRollBackPastBoth(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	c := k.Clientset
	workloadtest.History(t, c, ns, "checkout", 2, false, "registry.example.com/checkout:1", kubedev.CrashImageHost+"/checkout:2", kubedev.CrashImageHost+"/checkout:3")

	a := analyse(t, k, ns, "checkout")
	require.Equal(t, typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, a.GetProposal().GetAction(), "%s: %s", a.GetSummary(), a.GetRootCause())
	assert.Equal(t, int64(1), a.GetProposal().GetRollback().GetRevision())
	assert.Equal(t, lastGood(t, k, ns, "checkout"), a.GetProposal().GetRollback().GetRevision(), "what repair and deploy return to")
}

// Good, bad, good, bad: the analysis proposes the last good revision, 3.
func TestABadRevisionBetweenTwoGoodOnes(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	c := k.Clientset
	workloadtest.History(t, c, ns, "checkout", 2, true, "registry.example.com/checkout:1", kubedev.CrashImageHost+"/checkout:2",
		"registry.example.com/checkout:3", kubedev.CrashImageHost+"/checkout:4")

	a := analyse(t, k, ns, "checkout")
	require.Equal(t, typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, a.GetProposal().GetAction(), "%s: %s", a.GetSummary(), a.GetRootCause())
	assert.Equal(t, int64(3), a.GetProposal().GetRollback().GetRevision())
	assert.Equal(t, lastGood(t, k, ns, "checkout"), a.GetProposal().GetRollback().GetRevision())
}

// One replica of three crashes on a release whose other two have been
// serving: not a rollback of the release, the pod is deleted.
func TestOneBadReplicaOfThreeIsNotARollback(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	c := k.Clientset
	_, err := c.AppsV1().Deployments(ns).Create(t.Context(), deployment(ns, "checkout", "registry.example.com/checkout:1", 3), metav1.CreateOptions{})
	require.NoError(t, err)
	workloadtest.Settled(t, c, ns, "checkout", 1, 3)
	workloadtest.Record(t, c, ns, "checkout")
	workloadtest.Release(t, c, ns, "checkout", "registry.example.com/checkout:2", 2)
	workloadtest.Settled(t, c, ns, "checkout", 2, 3)
	w, err := workload.Read(t.Context(), c, ns, "checkout", time.Now())
	require.NoError(t, err)
	bad := w.Current.Pods[2].Name
	workloadtest.Crash(t, c, ns, bad)

	a := analyse(t, k, ns, "checkout")
	require.Equal(t, typesv1.RepairAction_REPAIR_ACTION_DELETE_POD, a.GetProposal().GetAction(), "%s: %s", a.GetSummary(), a.GetRootCause())
	assert.Equal(t, "Pod", a.GetProposal().GetTarget().GetKind())
	assert.Equal(t, bad, a.GetProposal().GetTarget().GetName())
	assert.Contains(t, a.GetSummary(), "a rollback is not the fix")
}

// CoreDNS crash-looping in kube-system after an image change: the cause is
// said, and that it needs a person; no rollback is proposed there.
func TestKubeSystemCrashNeedsAPerson(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	c := k.Clientset
	const ns = "kube-system"
	name := "coredns-" + rand.String(5)
	_, err := c.AppsV1().Deployments(ns).Create(t.Context(), deployment(ns, name, "registry.k8s.io/coredns/coredns:v1.11.1", 2), metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = c.AppsV1().Deployments(ns).Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	workloadtest.Settled(t, c, ns, name, 1, 2)
	workloadtest.Release(t, c, ns, name, kubedev.CrashImageHost+"/coredns:v1.12.0", 2)
	workloadtest.Failing(t, c, ns, name, 2, 1)

	a := analyse(t, k, ns, name)
	assert.Equal(t, typesv1.RepairAction_REPAIR_ACTION_NONE, a.GetProposal().GetAction(), "%s: %s", a.GetSummary(), a.GetRootCause())
	assert.Contains(t, a.GetSummary(), "namespace kube-system is the cluster's own (kube-*), where Vigil never repairs: needs a person")
	assert.Contains(t, a.GetRootCause(), "revision 2 fails")
}
