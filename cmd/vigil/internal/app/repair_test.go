package app_test

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/kubedev"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/deploy"
	"github.com/vigil-ops/vigil/services/monitor"
)

// deployed runs a deployment of app to its end.
func deployed(ctx context.Context, t *testing.T, apps deployv1.AppServiceClient, name, image string) *deployv1.Deployment {
	t.Helper()
	stream, err := apps.DeployApp(ctx, &deployv1.DeployAppRequest{Name: name, Image: image})
	require.NoError(t, err)
	var last *deployv1.Deployment
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return last
		}
		require.NoError(t, err)
		last = m.GetDeployment()
	}
}

// The loop on one process, as `vigil up --kube-dev` runs it: a bad
// release of an app (revision 2 crash-loops), its alert, an incident, an
// analysis proposing a rollback (MEDIUM risk: a person is asked), the
// approval, the rollback through the deploy service (revision 3 is
// revision 1 again, in the app's history), the rollout verified, and the
// incident resolved.
func TestBadReleaseRolledBackOnApproval(t *testing.T) {
	k := testkit.SharedKube(t)
	kubeconfig, err := os.ReadFile(k.Kubeconfig)
	require.NoError(t, err)
	dsn := testkit.Postgres(t)
	conns, admin := lockedBus(t)
	a := runApp(t, app.Options{
		Services: app.Services, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminToken: adminToken,
		Monitor: monitor.Options{GroupBy: []string{"alertname", "namespace"}},
		Deploy: deploy.Options{
			EncryptionKey: testKey(), DevCluster: &deploy.Cluster{Name: "dev", Kubeconfig: kubeconfig},
			// Revision 2 never becomes ready: fail it soon.
			RolloutTimeout: 15 * time.Second,
		},
	}, app.Deps{DatabaseURL: dsn, Bus: conns, Admin: admin, Logger: testkit.Logger(t), Keys: testKeys(t)})
	conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken)

	apps := deployv1.NewAppServiceClient(conn)
	name := "rollback-cart"
	_, err = apps.CreateApp(ctx, &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: name, Framework: "go", Plan: "basic", Image: "registry.example.com/cart:1", Owner: "payments",
	}})
	require.NoError(t, err)
	d := deployed(ctx, t, apps, name, "")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
	d = deployed(ctx, t, apps, name, kubedev.CrashImageHost+"/cart:2")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, d.GetStatus(), "revision 2 crash-loops")

	_, err = gatewayv1.NewAlertServiceClient(conn).IngestAlerts(ctx, &gatewayv1.IngestAlertsRequest{Alerts: []*typesv1.Alert{{
		Labels:   map[string]string{"alertname": "KubePodCrashLooping", "namespace": name, "deployment": name, "app": name, "severity": "critical"},
		StartsAt: timestamppb.Now(),
	}}})
	require.NoError(t, err)

	repairs := repairv1.NewRepairServiceClient(conn)
	var r *repairv1.Repair
	require.Eventually(t, func() bool {
		resp, err := repairs.ListRepairs(ctx, &repairv1.ListRepairsRequest{})
		require.NoError(t, err)
		for _, x := range resp.GetRepairs() {
			if x.GetApp() == name {
				r = x
			}
		}
		return r != nil && r.GetStatus() != repairv1.RepairStatus_REPAIR_STATUS_UNSPECIFIED
	}, 2*time.Minute, 200*time.Millisecond, "the analysis proposes a repair, the guardrails decide")
	require.Equal(t, typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, r.GetProposal().GetAction(), "%s", r.GetSummary())
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL, r.GetStatus(), r.GetDecisionReason())
	assert.Equal(t, "payments", r.GetTeam())

	_, err = repairs.ApproveRepair(ctx, &repairv1.ApproveRepairRequest{Id: r.GetId()})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		g, err := repairs.GetRepair(ctx, &repairv1.GetRepairRequest{Id: r.GetId()})
		require.NoError(t, err)
		r = g.GetRepair()
		return r.GetStatus() == repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED || r.GetStatus() == repairv1.RepairStatus_REPAIR_STATUS_FAILED
	}, 3*time.Minute, 200*time.Millisecond)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED, r.GetStatus(), "timeline: %v", r.GetSteps())
	assert.Equal(t, "bootstrap:admin", r.GetDecidedBy())

	// Through the deploy service: its history says so.
	hist, err := apps.ListDeployments(ctx, &deployv1.ListDeploymentsRequest{App: name})
	require.NoError(t, err)
	require.NotEmpty(t, hist.GetDeployments())
	last := hist.GetDeployments()[0]
	assert.Equal(t, int64(3), last.GetRevision())
	assert.Equal(t, "repair/"+r.GetId(), last.GetRequestedBy())
	dep, err := k.Clientset.AppsV1().Deployments(name).Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "registry.example.com/cart:1", dep.Spec.Template.Spec.Containers[0].Image)

	// The verified repair resolved the incident.
	incidents := monitorv1.NewIncidentServiceClient(conn)
	require.Eventually(t, func() bool {
		resp, err := incidents.ListIncidents(ctx, &monitorv1.ListIncidentsRequest{})
		require.NoError(t, err)
		for _, inc := range resp.GetIncidents() {
			if inc.GetId() == r.GetIncidentId() {
				return inc.GetStatus() == typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED
			}
		}
		return false
	}, 30*time.Second, 200*time.Millisecond, "incident resolved")
}
