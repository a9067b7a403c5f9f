package app_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/kubedev"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/workload"
	"github.com/vigil-ops/vigil/pkg/workload/workloadtest"
)

// An app's revision 1 served, then two releases crash-looped: the
// analysis proposes the model's last good revision (the Deployment's
// revision 1, not 2, the one below the current, which crashes too), the
// repair executes that proposal, and the deploy service returns the app to
// its revision 1 — the three agree, from the alert on.
func TestTwoBadReleasesOfAnAppRolledBackPastBoth(t *testing.T) {
	l := startLoop(t, false)
	k := testkit.SharedKube(t)
	ctx := l.ctx
	name := appName("ledger-")
	apps := deployv1.NewAppServiceClient(l.conn)
	_, err := apps.CreateApp(ctx, &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: name, Framework: "go", Plan: "basic", Image: "registry.example.com/ledger:1", Owner: "payments",
	}})
	require.NoError(t, err)
	d := deployed(ctx, t, apps, name, "")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
	workloadtest.Settled(t, k.Clientset, name, name, 0, 1)
	for _, image := range []string{kubedev.CrashImageHost + "/ledger:2", kubedev.CrashImageHost + "/ledger:3"} {
		d = deployed(ctx, t, apps, name, image)
		require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, d.GetStatus(), "%s crash-loops", image)
	}
	w, err := workload.Read(ctx, k.Clientset, name, name, time.Now())
	require.NoError(t, err)
	good := w.LastGood()
	require.NotNil(t, good)
	require.Equal(t, "1", good.ReplicaSet.Annotations["vigil.dev/revision"], "the model's last good revision ran the app's revision 1")

	_, err = gatewayv1.NewAlertServiceClient(l.conn).IngestAlerts(ctx, &gatewayv1.IngestAlertsRequest{Alerts: []*typesv1.Alert{{
		Labels:   map[string]string{"alertname": "KubePodCrashLooping", "namespace": name, "deployment": name, "app": name, "severity": "critical"},
		StartsAt: timestamppb.Now(),
	}}})
	require.NoError(t, err)
	repairs := repairv1.NewRepairServiceClient(l.conn)
	var r *repairv1.Repair
	require.Eventually(t, func() bool {
		resp, err := repairs.ListRepairs(ctx, &repairv1.ListRepairsRequest{})
		require.NoError(t, err)
		for _, x := range resp.GetRepairs() {
			if x.GetApp() == name {
				r = x
			}
		}
		return r != nil && r.GetStatus() == repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL
	}, 2*time.Minute, 200*time.Millisecond, "the analysis proposes a repair, a person is asked")
	require.Equal(t, typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, r.GetProposal().GetAction(), r.GetSummary())
	assert.Equal(t, good.Number, r.GetProposal().GetRollback().GetRevision(), "the analysis proposes the model's last good revision")

	_, err = repairs.ApproveRepair(ctx, &repairv1.ApproveRepairRequest{Id: r.GetId()})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		g, err := repairs.GetRepair(ctx, &repairv1.GetRepairRequest{Id: r.GetId()})
		require.NoError(t, err)
		r = g.GetRepair()
		return r.GetStatus() == repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED || r.GetStatus() == repairv1.RepairStatus_REPAIR_STATUS_FAILED
	}, 3*time.Minute, 200*time.Millisecond)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED, r.GetStatus(), "timeline: %v", r.GetSteps())

	hist, err := apps.ListDeployments(ctx, &deployv1.ListDeploymentsRequest{App: name})
	require.NoError(t, err)
	last := hist.GetDeployments()[0]
	assert.Equal(t, deployv1.DeploymentKind_DEPLOYMENT_KIND_ROLLBACK, last.GetKind())
	assert.Equal(t, "repair/"+r.GetId(), last.GetRequestedBy())
	assert.Equal(t, int64(1), last.GetRollbackTo(), "the deploy service returns to the same revision")
	dep, err := k.Clientset.AppsV1().Deployments(name).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "registry.example.com/ledger:1", dep.Spec.Template.Spec.Containers[0].Image)
}
