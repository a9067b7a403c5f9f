package chaos_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/apitest"
	"github.com/vigil-ops/vigil/pkg/approval"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/kubedev"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/testkit/fakeslack"
	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
	"github.com/vigil-ops/vigil/pkg/workload/workloadtest"
)

const (
	// The operator of payments, who answers the approvals in the chats.
	olgaTelegram = int64(4242)
	olgaSlack    = "U0OLGA42"
)

// release is an app of payments whose second revision crash-loops: the
// loop must analyse it and roll it back, at once (auto) or once olga
// approves in a chat.
type release struct {
	name string
	auto bool
	// bySlack: olga answers in Slack rather than Telegram.
	bySlack bool
}

// onboard registers the test control plane as cluster main and olga, an
// operator of payments with her chat accounts, through the gateways.
func onboard(ctx context.Context, t *testing.T, conn *grpc.ClientConn) {
	t.Helper()
	kubeconfig, err := os.ReadFile(testkit.SharedKube(t).Kubeconfig)
	require.NoError(t, err)
	_, err = deployv1.NewClusterServiceClient(conn).AddCluster(ctx, &deployv1.AddClusterRequest{Name: "main", Kubeconfig: kubeconfig})
	require.NoError(t, err)
	apitest.Operator(ctx, t, conn, "olga", "payments", olgaTelegram, olgaSlack)
}

// prepare deploys the release's good revision, then the one that
// crash-loops; auto releases may be rolled back without a person.
func (r release) prepare(ctx context.Context, t *testing.T, conn *grpc.ClientConn) {
	t.Helper()
	apps := deployv1.NewAppServiceClient(conn)
	_, err := apps.CreateApp(ctx, &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: r.name, Framework: "go", Plan: "basic", Image: "registry.example.com/cart:1", Owner: "payments",
	}})
	require.NoError(t, err)
	d := apitest.Deployed(ctx, t, apps, r.name, "")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
	workloadtest.Settled(t, testkit.SharedKube(t).Clientset, r.name, r.name, 0, 1)
	if r.auto {
		_, err = repairv1.NewRepairServiceClient(conn).SetGuardrails(ctx, &repairv1.SetGuardrailsRequest{Guardrails: &repairv1.Guardrails{
			Scope: "app/" + r.name, Auto: proto.Bool(true), MaxAutoRisk: typesv1.Risk_RISK_MEDIUM, MinConfidence: proto.Float64(0.5),
		}})
		require.NoError(t, err)
	}
	d = apitest.Deployed(ctx, t, apps, r.name, kubedev.CrashImageHost+"/cart:2")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, d.GetStatus(), "revision 2 crash-loops")
}

// alert sends the alert Alertmanager would for the crash loop, until the
// gateways accept it.
func (r release) alert(ctx context.Context, conn *grpc.ClientConn) error {
	alerts := gatewayv1.NewAlertServiceClient(conn)
	for {
		_, err := alerts.IngestAlerts(ctx, &gatewayv1.IngestAlertsRequest{Alerts: []*typesv1.Alert{{
			Labels:   map[string]string{"alertname": "KubePodCrashLooping", "namespace": r.name, "deployment": r.name, "app": r.name, "severity": "critical"},
			StartsAt: timestamppb.Now(),
		}}})
		if err == nil || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Second)
	}
}

// repairOf is the release's repair, once there is one.
func (r release) repairOf(ctx context.Context, conn *grpc.ClientConn) *repairv1.Repair {
	resp, err := repairv1.NewRepairServiceClient(conn).ListRepairs(ctx, &repairv1.ListRepairsRequest{})
	if err != nil {
		return nil
	}
	for _, x := range resp.GetRepairs() {
		if x.GetApp() == r.name {
			return x
		}
	}
	return nil
}

// approveInChat presses Approve on the repair's card in olga's chat, and
// again while the repair waits (a press the gateways missed while down
// is pressed again, as a person would).
func (r release) approveInChat(ctx context.Context, s *Split, conn *grpc.ClientConn, t *testing.T) error {
	var pressed time.Time
	for ; ctx.Err() == nil; time.Sleep(time.Second) {
		rep := r.repairOf(ctx, conn)
		if rep != nil && rep.GetStatus() != repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL && rep.GetStatus() != repairv1.RepairStatus_REPAIR_STATUS_UNSPECIFIED {
			return nil
		}
		// Pressed again only when nothing came of the last press for a
		// while: a pressed card loses its buttons.
		if rep != nil && time.Since(pressed) > 20*time.Second {
			id := rep.GetId()
			if r.bySlack {
				for _, m := range s.Slack.Messages() {
					if b, ok := m.Button(approval.SlackActionID(approval.Approve)); ok && b.Value == id {
						s.Slack.Press(t, m, approval.SlackActionID(approval.Approve), fakeslack.User{ID: olgaSlack, Username: "olga"})
						pressed = time.Now()
						break
					}
				}
			} else {
				for _, m := range s.Telegram.Messages() {
					if hasButton(m, approval.CallbackData(approval.Approve, id)) {
						s.Telegram.Press(t, m, approval.CallbackData(approval.Approve, id), faketelegram.User{ID: olgaTelegram, FirstName: "Olga"})
						pressed = time.Now()
						break
					}
				}
			}
		}
	}
	return ctx.Err()
}

func hasButton(m faketelegram.Message, data string) bool {
	for _, row := range m.ReplyMarkup {
		for _, b := range row {
			if b.CallbackData == data {
				return true
			}
		}
	}
	return false
}

// runReleases sends each release's alert and answers its approval in the
// background; the returned func waits for that and reports what failed.
func runReleases(ctx context.Context, t *testing.T, s *Split, conn *grpc.ClientConn, rels []release) func() []error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, r := range rels {
		wg.Go(func() {
			err := r.alert(ctx, conn)
			if err == nil && !r.auto {
				err = r.approveInChat(ctx, s, conn, t)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", r.name, err))
				mu.Unlock()
			}
		})
	}
	return func() []error { wg.Wait(); return errs }
}

// checkReleases asserts each release was rolled back exactly once: one
// repair, succeeded, the app's history holding one deployment the repair
// asked for (revision 3, the good template again) and the Deployment at
// revision 3 at the apiserver.
func checkReleases(ctx context.Context, t *testing.T, conn *grpc.ClientConn, rels []release) (repairs int) {
	t.Helper()
	k := testkit.SharedKube(t)
	repairsAPI := repairv1.NewRepairServiceClient(conn)
	for _, r := range rels {
		var rep *repairv1.Repair
		if !assert.Eventually(t, func() bool {
			rep = r.repairOf(ctx, conn)
			return rep != nil && rep.GetStatus() == repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED
		}, 3*time.Minute, 500*time.Millisecond, "%s rolled back", r.name) {
			t.Logf("%s: repair %s %s: %s; steps %v", r.name, rep.GetId(), rep.GetStatus(), rep.GetDecisionReason(), rep.GetSteps())
			continue
		}
		resp, err := repairsAPI.ListRepairs(ctx, &repairv1.ListRepairsRequest{})
		require.NoError(t, err)
		n := 0
		for _, x := range resp.GetRepairs() {
			if x.GetApp() == r.name {
				n++
			}
		}
		assert.Equal(t, 1, n, "%s: one repair", r.name)
		repairs += n
		if r.auto {
			assert.Empty(t, rep.GetDecidedBy(), "%s: repaired without a person", r.name)
		} else {
			assert.Equal(t, "user:olga", rep.GetDecidedBy(), "%s: approved by olga in the chat", r.name)
		}
		hist, err := deployv1.NewAppServiceClient(conn).ListDeployments(ctx, &deployv1.ListDeploymentsRequest{App: r.name})
		require.NoError(t, err)
		byRepair := 0
		for _, d := range hist.GetDeployments() {
			if strings.HasPrefix(d.GetRequestedBy(), "repair/") {
				byRepair++
			}
		}
		assert.Equal(t, 1, byRepair, "%s: rolled back once", r.name)
		dep, err := k.Clientset.AppsV1().Deployments(r.name).Get(ctx, r.name, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, "3", dep.Annotations["deployment.kubernetes.io/revision"], "%s: one rollout after the bad one", r.name)
		assert.Equal(t, "registry.example.com/cart:1", dep.Spec.Template.Spec.Containers[0].Image)
	}
	return repairs
}
