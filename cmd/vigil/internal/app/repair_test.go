package app_test

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/apitest"
	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/pkg/approval"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/kubedev"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/testkit/fakeslack"
	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
	"github.com/vigil-ops/vigil/pkg/workload/workloadtest"
	"github.com/vigil-ops/vigil/services/deploy"
	"github.com/vigil-ops/vigil/services/gateway"
	"github.com/vigil-ops/vigil/services/monitor"
	"github.com/vigil-ops/vigil/services/notify"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/channel/slack"
	"github.com/vigil-ops/vigil/services/notify/channel/telegram"
)

// deployed runs a deployment of app to its end.
var deployed = apitest.Deployed

// approver answers the approval of repair r as the test's operator, one
// way or another.
type approver func(t *testing.T, l *loop, r *repairv1.Repair)

// loop is one `vigil up --kube-dev`-shaped process with chats.
type loop struct {
	app      *app.App
	ctx      context.Context
	conn     *grpc.ClientConn
	telegram *faketelegram.Server
	slack    *fakeslack.Server
}

const (
	slackChannel = "C0VIGIL01"
	// The operator of payments, and their chat accounts.
	olgaTelegram = int64(4242)
	olgaSlack    = "U0OLGA42"
)

// TestBadReleaseRolledBackOnApproval is the loop of the seeds on one
// process, as `vigil up --kube-dev` runs it: a bad release of an app
// (revision 2 crash-loops), its alert, an incident, an analysis proposing
// a rollback (MEDIUM risk: a person is asked, in Telegram and Slack, with
// a card in the incident's thread), the approval — a button in Telegram by
// webhook or by polling, a signed Slack interaction, or `vigil repairs
// approve`'s RPC — the rollback through the deploy service (revision 3 is
// revision 1 again, in the app's history), the rollout verified, the
// incident resolved, and the outcome in the same thread.
func TestBadReleaseRolledBackOnApproval(t *testing.T) {
	byTelegram := func(t *testing.T, l *loop, r *repairv1.Repair) {
		t.Helper()
		card := l.telegramCard(t, r.GetId())
		l.telegram.Press(t, card, approval.CallbackData(approval.Approve, r.GetId()), faketelegram.User{ID: olgaTelegram, FirstName: "Olga"})
	}
	for _, tc := range []struct {
		name    string
		webhook bool
		approve approver
		// by is who the card says decided.
		by string
	}{
		{name: "api", by: "bootstrap:admin", approve: func(t *testing.T, l *loop, r *repairv1.Repair) {
			t.Helper()
			_, err := repairv1.NewRepairServiceClient(l.conn).ApproveRepair(l.ctx, &repairv1.ApproveRepairRequest{Id: r.GetId()})
			require.NoError(t, err)
		}},
		{name: "telegram-webhook", webhook: true, approve: byTelegram, by: "user:olga"},
		{name: "telegram-polling", approve: byTelegram, by: "user:olga"},
		{name: "slack", by: "user:olga", approve: func(t *testing.T, l *loop, r *repairv1.Repair) {
			t.Helper()
			card := l.slackCard(t, r.GetId())
			in := l.slack.Press(t, card, approval.SlackActionID(approval.Approve), fakeslack.User{ID: olgaSlack, Username: "olga"})
			require.True(t, in.Acknowledged(), "acknowledged within 3 s")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := startLoop(t, tc.webhook)
			l.badReleaseRolledBack(t, "cart-"+tc.name, tc.approve, tc.by)
		})
	}
}

// freeAddr is a loopback address nothing listens on now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func startLoop(t testing.TB, webhook bool) *loop {
	t.Helper()
	k := testkit.SharedKube(t)
	kubeconfig, err := os.ReadFile(k.Kubeconfig)
	require.NoError(t, err)
	tg := faketelegram.New(t, faketelegram.Options{ChatIDs: []string{chatID}})
	sl := fakeslack.New(t, fakeslack.Options{Channels: []fakeslack.Channel{{ID: slackChannel}}})
	httpAddr := freeAddr(t)
	gw := gateway.Options{
		TelegramBotToken: tg.Token(), TelegramAPIURL: tg.URL(), TelegramWebhookSecret: telegramSecret,
		SlackSigningSecret: sl.SigningSecret(), SlackResponseURLBase: sl.ResponseURLBase(),
		// Workloads Vigil did not deploy belong to no team: payments
		// answers for them too.
		DefaultTeam: "payments",
	}
	if webhook {
		gw.TelegramWebhookURL = "http://" + httpAddr + "/api/v1/webhooks/telegram"
	}
	conns, admin := lockedBus(t)
	a := runApp(t, app.Options{
		Services: app.Services, GRPCAddr: "127.0.0.1:0", HTTPAddr: httpAddr, AdminToken: adminToken,
		Monitor: monitor.Options{GroupBy: []string{"alertname", "namespace"}},
		Deploy: deploy.Options{
			EncryptionKey: testKey(), DevCluster: &deploy.Cluster{Name: "dev", Kubeconfig: kubeconfig},
			// Revision 2 never becomes ready: fail it soon.
			RolloutTimeout: 15 * time.Second,
		},
		Gateway: gw,
		Notify: notify.Options{Channels: []channel.Config{
			telegram.Options{BotToken: tg.Token(), ChatID: chatID, APIURL: tg.URL()},
			slack.Options{BotToken: sl.BotToken(), Channel: slackChannel, APIURL: sl.APIURL()},
		}},
	}, app.Deps{DatabaseURL: testkit.Postgres(t), Bus: conns, Admin: admin, Logger: testkit.Logger(t), Keys: testKeys(t)})
	sl.SetInteractivityURL("http://" + a.HTTPAddr() + "/api/v1/webhooks/slack/interactions")
	conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken)

	// Olga operates the apps of payments; her chat accounts are hers.
	apitest.Operator(ctx, t, conn, "olga", "payments", olgaTelegram, olgaSlack)
	return &loop{app: a, ctx: ctx, conn: conn, telegram: tg, slack: sl}
}

// telegramCard waits for the approval card of repair id in Telegram.
func (l *loop) telegramCard(t testing.TB, id string) faketelegram.Message {
	t.Helper()
	var card faketelegram.Message
	require.Eventually(t, func() bool {
		for _, m := range l.telegram.Messages() {
			for _, row := range m.ReplyMarkup {
				for _, b := range row {
					if b.CallbackData == approval.CallbackData(approval.Approve, id) {
						card = m
						return true
					}
				}
			}
		}
		return false
	}, time.Minute, 50*time.Millisecond, "the card of repair %s in Telegram", id)
	return card
}

// slackCard waits for the approval card of repair id in Slack.
func (l *loop) slackCard(t *testing.T, id string) fakeslack.Message {
	t.Helper()
	var card fakeslack.Message
	require.Eventually(t, func() bool {
		for _, m := range l.slack.Messages() {
			for _, b := range m.Buttons {
				if b.ActionID == approval.SlackActionID(approval.Approve) && b.Value == id {
					card = m
					return true
				}
			}
		}
		return false
	}, time.Minute, 50*time.Millisecond, "the card of repair %s in Slack", id)
	return card
}

// badRelease deploys app name (of payments), then a release of it that
// crash-loops, and sends the alert Alertmanager would: the loop takes it
// from there.
func (l *loop) badRelease(t *testing.T, name string) {
	t.Helper()
	k := testkit.SharedKube(t)
	ctx := l.ctx
	apps := deployv1.NewAppServiceClient(l.conn)
	_, err := apps.CreateApp(ctx, &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: name, Framework: "go", Plan: "basic", Image: "registry.example.com/cart:1", Owner: "payments",
	}})
	require.NoError(t, err)
	d := deployed(ctx, t, apps, name, "")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
	// Serving long enough to be the last good revision.
	workloadtest.Settled(t, k.Clientset, name, name, 0, 1)
	d = deployed(ctx, t, apps, name, kubedev.CrashImageHost+"/cart:2")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, d.GetStatus(), "revision 2 crash-loops")

	_, err = gatewayv1.NewAlertServiceClient(l.conn).IngestAlerts(ctx, &gatewayv1.IngestAlertsRequest{Alerts: []*typesv1.Alert{{
		Labels:   map[string]string{"alertname": "KubePodCrashLooping", "namespace": name, "deployment": name, "app": name, "severity": "critical"},
		StartsAt: timestamppb.Now(),
	}}})
	require.NoError(t, err)
}

// proposedRepair waits for the repair the analysis of app name's incident
// proposes: a rollback, waiting for a person's approval.
func (l *loop) proposedRepair(t *testing.T, name string) *repairv1.Repair {
	t.Helper()
	ctx := l.ctx
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
		return r != nil && r.GetStatus() != repairv1.RepairStatus_REPAIR_STATUS_UNSPECIFIED
	}, 2*time.Minute, 200*time.Millisecond, "the analysis proposes a repair, the guardrails decide")
	require.Equal(t, typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, r.GetProposal().GetAction(), "%s", r.GetSummary())
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL, r.GetStatus(), r.GetDecisionReason())
	return r
}

func (l *loop) badReleaseRolledBack(t *testing.T, name string, approve approver, by string) {
	t.Helper()
	k := testkit.SharedKube(t)
	ctx := l.ctx
	apps := deployv1.NewAppServiceClient(l.conn)
	l.badRelease(t, name)
	r := l.proposedRepair(t, name)
	assert.Equal(t, "payments", r.GetTeam())
	// The card, with its buttons, in both chats before anyone answers.
	card := l.telegramCard(t, r.GetId())
	slackCard := l.slackCard(t, r.GetId())

	repairs := repairv1.NewRepairServiceClient(l.conn)
	approve(t, l, r)
	require.Eventually(t, func() bool {
		g, err := repairs.GetRepair(ctx, &repairv1.GetRepairRequest{Id: r.GetId()})
		require.NoError(t, err)
		r = g.GetRepair()
		return r.GetStatus() == repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED || r.GetStatus() == repairv1.RepairStatus_REPAIR_STATUS_FAILED
	}, 3*time.Minute, 200*time.Millisecond)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED, r.GetStatus(), "timeline: %v", r.GetSteps())

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
	incidents := monitorv1.NewIncidentServiceClient(l.conn)
	require.Eventually(t, func() bool {
		inc, err := incidents.GetIncident(ctx, &monitorv1.GetIncidentRequest{Id: r.GetIncidentId()})
		require.NoError(t, err)
		return inc.GetIncident().GetStatus() == typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED
	}, 30*time.Second, 200*time.Millisecond, "incident resolved")

	// One conversation: the card, and after it the outcome, are replies
	// to the incident's first message, in both chats; the card shows who
	// decided, its buttons gone.
	require.NotZero(t, card.ReplyToMessageID)
	require.Eventually(t, func() bool {
		c, ok := l.telegram.Message(chatID, card.MessageID)
		if !ok || len(c.ReplyMarkup) > 0 {
			return false
		}
		for _, m := range l.telegram.Messages() {
			if m.ReplyToMessageID == card.ReplyToMessageID && m.MessageID > card.MessageID && strings.Contains(m.PlainText, "Repaired") {
				return true
			}
		}
		return false
	}, 30*time.Second, 100*time.Millisecond, "the card decided and the success in the incident's Telegram thread")
	c, _ := l.telegram.Message(chatID, card.MessageID)
	assert.Contains(t, c.PlainText, "Approved by "+by)
	assert.Contains(t, c.PlainText, "KubePodCrashLooping in "+name, "the card names the incident")
	assert.Equal(t, by, r.GetDecidedBy())
	require.NotEmpty(t, slackCard.ThreadTS, "the card is in the incident's Slack thread")
	require.Eventually(t, func() bool {
		for _, m := range l.slack.Messages() {
			if m.ThreadTS == slackCard.ThreadTS && m.TS != slackCard.TS && strings.Contains(m.Text, "Repaired") {
				return true
			}
		}
		return false
	}, 30*time.Second, 100*time.Millisecond, "the success in the incident's Slack thread")
}
