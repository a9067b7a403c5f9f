package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	analysisv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/analysis/v1"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/kubedev"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/workload/workloadtest"
)

// TestTwoTeamsOneCluster is issue 17's scenario on `vigil up --kube-dev`:
// shop belongs to team shop-team, pay to payments; pay's revision 2
// crash-loops; alan operates shop. An alert as kube-prometheus sends it
// (no app label) belongs to payments; the same alert with app=shop added
// still does, and says the label disagreed; shop-team's ingest key may not
// send it at all. alan neither reads pay's incident and evidence nor
// approves its rollback; olga (payments) does, and the rollback goes
// through the deploy service.
func TestTwoTeamsOneCluster(t *testing.T) {
	l := startLoop(t, false)
	k := testkit.SharedKube(t)
	ctx := l.ctx
	apps := deployv1.NewAppServiceClient(l.conn)
	for name, team := range map[string]string{"shop": "shop-team", "pay": "payments"} {
		_, err := apps.CreateApp(ctx, &deployv1.CreateAppRequest{App: &deployv1.App{
			Name: name, Framework: "go", Plan: "basic", Image: "registry.example.com/" + name + ":1", Owner: team,
		}})
		require.NoError(t, err)
		d := deployed(ctx, t, apps, name, "")
		require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
		// Serving long enough to be the last good revision.
		workloadtest.Settled(t, k.Clientset, name, name, 0, 1)
	}
	d := deployed(ctx, t, apps, "pay", kubedev.CrashImageHost+"/pay:2")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, d.GetStatus(), "revision 2 crash-loops")

	users := gatewayv1.NewUserServiceClient(l.conn)
	_, err := users.CreateUser(ctx, &gatewayv1.CreateUserRequest{
		User: &gatewayv1.User{Name: "alan", Role: gatewayv1.Role_ROLE_OPERATOR, Teams: []string{"shop-team"}}, Password: "correct horse alan battery",
	})
	require.NoError(t, err)
	token := func(name string) context.Context {
		r, err := gatewayv1.NewAuthServiceClient(l.conn).Login(context.Background(), &gatewayv1.LoginRequest{Username: name, Password: "correct horse " + name + " battery"})
		require.NoError(t, err)
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+r.GetTokens().GetAccessToken())
	}
	alan, olga := token("alan"), token("olga")
	key := func(team string) context.Context {
		r, err := gatewayv1.NewKeyServiceClient(l.conn).CreateKey(ctx, &gatewayv1.CreateKeyRequest{Key: &gatewayv1.Key{
			Name: team + "-alerts", Scopes: []gatewayv1.Scope{gatewayv1.Scope_SCOPE_INGEST}, Team: team,
		}})
		require.NoError(t, err)
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+r.GetSecret())
	}
	shopKey, payKey := key("shop-team"), key("payments")
	alerts := gatewayv1.NewAlertServiceClient(l.conn)
	incidents := monitorv1.NewIncidentServiceClient(l.conn)
	send := func(ctx context.Context, labels map[string]string) error {
		_, err := alerts.IngestAlerts(ctx, &gatewayv1.IngestAlertsRequest{Alerts: []*typesv1.Alert{{Labels: labels, StartsAt: timestamppb.Now()}}})
		return err
	}
	incidentOf := func(alertname string) *typesv1.Incident {
		var inc *typesv1.Incident
		require.Eventually(t, func() bool {
			r, err := incidents.ListIncidents(ctx, &monitorv1.ListIncidentsRequest{})
			require.NoError(t, err)
			for _, i := range r.GetIncidents() {
				if i.GetGroupLabels()["alertname"] == alertname {
					inc = i
					return true
				}
			}
			return false
		}, time.Minute, 100*time.Millisecond, "incident %s", alertname)
		return inc
	}

	// The ingest key of shop-team may not speak for pay, with or
	// without a label naming shop: refused, and nothing opened.
	crashing := map[string]string{"alertname": "KubePodCrashLooping", "namespace": "pay", "deployment": "pay", "severity": "critical"}
	spoofed := map[string]string{"alertname": "KubeDeploymentReplicasMismatch", "namespace": "pay", "deployment": "pay", "app": "shop", "severity": "warning"}
	require.Eventually(t, func() bool {
		return status.Code(send(shopKey, crashing)) == codes.PermissionDenied
	}, 30*time.Second, 50*time.Millisecond, "the gateway learns from deploy's events that pay is payments'")
	for _, labels := range []map[string]string{crashing, spoofed} {
		err := send(shopKey, labels)
		require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
		require.ErrorContains(t, err, "belongs to team payments")
	}
	// pay's own key may; shop-team's key may send shop's alerts.
	require.NoError(t, send(payKey, crashing))
	require.NoError(t, send(shopKey, map[string]string{"alertname": "ShopSlow", "namespace": "shop", "deployment": "shop"}))
	require.NoError(t, send(ctx, spoofed))

	plain := incidentOf("KubePodCrashLooping")
	assert.Equal(t, "pay", plain.GetApp(), "no app label: the namespace Vigil made says whose")
	assert.Equal(t, "payments", plain.GetTeam())
	assert.Equal(t, typesv1.Ownership_OWNERSHIP_APP_NAMESPACE, plain.GetSubject().GetOwnership())
	mismatch := incidentOf("KubeDeploymentReplicasMismatch")
	assert.Equal(t, "payments", mismatch.GetTeam(), "a label does not move an incident to another team")
	assert.Contains(t, mismatch.GetSubject().GetMismatch(), "label app=shop")
	r, err := incidents.ListIncidents(ctx, &monitorv1.ListIncidentsRequest{})
	require.NoError(t, err)
	assert.Len(t, r.GetIncidents(), 3, "the refused alerts opened nothing")

	// The analysis proposes pay's rollback; it is payments', whatever
	// any label said.
	repairs := repairv1.NewRepairServiceClient(l.conn)
	var rep *repairv1.Repair
	require.Eventually(t, func() bool {
		resp, err := repairs.ListRepairs(ctx, &repairv1.ListRepairsRequest{IncidentId: plain.GetId()})
		require.NoError(t, err)
		if len(resp.GetRepairs()) == 0 {
			return false
		}
		rep = resp.GetRepairs()[0]
		return rep.GetStatus() != repairv1.RepairStatus_REPAIR_STATUS_UNSPECIFIED
	}, 2*time.Minute, 200*time.Millisecond, "the analysis proposes a repair, the guardrails decide")
	require.Equal(t, typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, rep.GetProposal().GetAction(), rep.GetSummary())
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL, rep.GetStatus(), rep.GetDecisionReason())
	assert.Equal(t, "pay", rep.GetApp())
	assert.Equal(t, "payments", rep.GetTeam())
	assert.Equal(t, "pay", rep.GetSubject().GetName())

	// alan reads nothing of pay's and approves nothing; nothing changed.
	_, err = incidents.GetIncident(alan, &monitorv1.GetIncidentRequest{Id: plain.GetId()})
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	an, err := analysisv1.NewAnalysisServiceClient(l.conn).ListAnalyses(alan, &analysisv1.ListAnalysesRequest{IncidentId: plain.GetId()})
	if err == nil {
		assert.Empty(t, an.GetAnalyses(), "pay's evidence (pods, images, logs) is not shop-team's to read")
	} else {
		assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	}
	_, err = repairs.ApproveRepair(alan, &repairv1.ApproveRepairRequest{Id: rep.GetId()})
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	g, err := repairs.GetRepair(ctx, &repairv1.GetRepairRequest{Id: rep.GetId()})
	require.NoError(t, err)
	assert.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL, g.GetRepair().GetStatus(), "alan's approval changed nothing")
	dep, err := k.Clientset.AppsV1().Deployments("pay").Get(t.Context(), "pay", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, kubedev.CrashImageHost+"/pay:2", dep.Spec.Template.Spec.Containers[0].Image)

	// olga, of payments, sees and approves her own app's repair.
	_, err = incidents.GetIncident(olga, &monitorv1.GetIncidentRequest{Id: plain.GetId()})
	require.NoError(t, err)
	_, err = repairs.ApproveRepair(olga, &repairv1.ApproveRepairRequest{Id: rep.GetId()})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		g, err := repairs.GetRepair(ctx, &repairv1.GetRepairRequest{Id: rep.GetId()})
		require.NoError(t, err)
		rep = g.GetRepair()
		return rep.GetStatus() == repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED || rep.GetStatus() == repairv1.RepairStatus_REPAIR_STATUS_FAILED
	}, 3*time.Minute, 200*time.Millisecond)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED, rep.GetStatus(), "timeline: %v", rep.GetSteps())
	hist, err := apps.ListDeployments(ctx, &deployv1.ListDeploymentsRequest{App: "pay"})
	require.NoError(t, err)
	assert.Equal(t, "repair/"+rep.GetId(), hist.GetDeployments()[0].GetRequestedBy(), "through the deploy service, in pay's history")
}
