package app_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/pkg/approval"
	"github.com/vigil-ops/vigil/pkg/bus"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
	"github.com/vigil-ops/vigil/services/gateway"
	"github.com/vigil-ops/vigil/services/monitor"
	"github.com/vigil-ops/vigil/services/notify"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/channel/telegram"
)

// An alert opens a P1 incident of no app, which payments answers for (the
// default team), announced in the team's Telegram chat with an
// Acknowledge button. Its response target passes
// unacknowledged: step 1 of payments' policy pages whoever is on call,
// olga, in her own Telegram chat (her personal channel). Olga presses
// Acknowledge on the team chat's message, through the gateway's webhook as
// her linked account: the incident is hers, and step 2 (the team's chat,
// a minute later, the least a later step may wait) never comes.
func TestEscalationPagesOnCallAndStopsOnAChatPress(t *testing.T) {
	olgaChat := fmt.Sprint(olgaTelegram) // a private chat's id is its user's
	file := filepath.Join(t.TempDir(), "escalation.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`
response_targets: {P0: 1s, P1: 1s, P2: 1h}
schedules:
  - name: payments
    team: payments
    zone: Asia/Taipei
    layers: [{participants: [olga], rotation_days: 7, handoff: "09:00", start: "2026-01-05"}]
policies:
  - name: payments
    repeat: 1
    steps:
      - schedules: [payments]
      - delay: 1m
        channels: [telegram]
`), 0o600))
	tg := faketelegram.New(t, faketelegram.Options{ChatIDs: []string{chatID, olgaChat}})
	httpAddr := freeAddr(t)
	key := testKey()
	conns, admin := lockedBus(t)
	a := runApp(t, app.Options{
		// notify before the gateway, as in app.Services: the gateway serves
		// the ChannelService of a notify made before it.
		Services: []string{"monitor", "notify", "gateway"}, GRPCAddr: "127.0.0.1:0", HTTPAddr: httpAddr, AdminToken: adminToken,
		DeployAddr: "127.0.0.1:1",
		Monitor:    monitor.Options{GroupBy: []string{"alertname", "namespace"}, EscalationFile: file},
		Gateway: gateway.Options{
			TelegramBotToken: tg.Token(), TelegramAPIURL: tg.URL(), TelegramWebhookSecret: telegramSecret,
			TelegramWebhookURL: "http://" + httpAddr + "/api/v1/webhooks/telegram",
			DefaultTeam:        "payments",
		},
		Notify: notify.Options{EncryptionKey: key, Channels: []channel.Config{
			telegram.Options{BotToken: tg.Token(), ChatID: chatID, APIURL: tg.URL()},
		}},
	}, app.Deps{DatabaseURL: testkit.Postgres(t), Bus: conns, Admin: admin, Logger: testkit.Logger(t), Keys: testKeys(t)})
	conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken)

	// Olga operates payments; her Telegram account is hers, and so is her
	// private chat with the bot. The policy above is global: the incident,
	// which no app claims, is of no team.
	users := gatewayv1.NewUserServiceClient(conn)
	_, err = users.CreateUser(ctx, &gatewayv1.CreateUserRequest{
		User: &gatewayv1.User{Name: "olga", Role: gatewayv1.Role_ROLE_OPERATOR, Teams: []string{"payments"}}, Password: password("olga"),
	})
	require.NoError(t, err)
	_, err = users.LinkChatIdentity(ctx, &gatewayv1.LinkChatIdentityRequest{
		Name: "olga", Provider: gatewayv1.ChatProvider_CHAT_PROVIDER_TELEGRAM, ExternalId: olgaChat,
	})
	require.NoError(t, err)
	_, err = notifyv1.NewChannelServiceClient(conn).CreateChannel(ctx, &notifyv1.CreateChannelRequest{
		Channel:    &notifyv1.Channel{Name: "olga-telegram", Kind: "telegram", Target: olgaChat, User: "olga", ApiUrl: tg.URL()},
		Credential: tg.Token(), NoTest: true,
	})
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, ok := tg.Webhook(); return ok }, 30*time.Second, 50*time.Millisecond, "the gateway set its webhook")

	_, err = gatewayv1.NewAlertServiceClient(conn).IngestAlerts(ctx, &gatewayv1.IngestAlertsRequest{Alerts: []*typesv1.Alert{{
		Labels: map[string]string{"alertname": "CheckoutDown", "namespace": "checkout", "severity": "critical"}, StartsAt: timestamppb.Now(),
	}}})
	require.NoError(t, err)

	in := func(chat string) (out []faketelegram.Message) {
		for _, m := range tg.Messages() {
			if m.ChatID == chat {
				out = append(out, m)
			}
		}
		return out
	}
	escalations := func(msgs []faketelegram.Message) (out []faketelegram.Message) {
		for _, m := range msgs {
			if strings.Contains(m.PlainText, "Incident escalated") {
				out = append(out, m)
			}
		}
		return out
	}

	// The page: step 1, in olga's own chat, and only there.
	var page faketelegram.Message
	require.Eventually(t, func() bool {
		pages := escalations(in(olgaChat))
		if len(pages) == 0 {
			return false
		}
		page = pages[0]
		return true
	}, time.Minute, 50*time.Millisecond, "olga is paged in her own chat")
	require.Contains(t, page.PlainText, "Incident escalated: CheckoutDown in checkout")
	require.Contains(t, page.PlainText, "Step 1 of policy payments: nobody acknowledged it in time")
	require.Contains(t, page.PlainText, "Asked to respond: olga")

	incidents := monitorv1.NewIncidentServiceClient(conn)
	list, err := incidents.ListIncidents(ctx, &monitorv1.ListIncidentsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetIncidents(), 1)
	id := list.GetIncidents()[0].GetId()
	inc, err := incidents.GetIncident(ctx, &monitorv1.GetIncidentRequest{Id: id})
	require.NoError(t, err)
	require.Equal(t, typesv1.Priority_PRIORITY_P1, inc.GetIncident().GetPriority())
	require.Equal(t, "payments", inc.GetEscalation().GetPolicy())
	require.Equal(t, int32(1), inc.GetEscalation().GetLevel())
	require.NotNil(t, inc.GetEscalation().GetNextStepAt(), "step 2 is planned")
	step2 := inc.GetEscalation().GetNextStepAt().AsTime()
	require.Contains(t, page.PlainText, id)

	// The team's chat: the incident's opening, with its Acknowledge button.
	ack := approval.CallbackData(approval.Acknowledge, id)
	var opening faketelegram.Message
	require.Eventually(t, func() bool {
		for _, m := range in(chatID) {
			for _, row := range m.ReplyMarkup {
				for _, b := range row {
					if b.CallbackData == ack {
						opening = m
						return true
					}
				}
			}
		}
		return false
	}, 30*time.Second, 50*time.Millisecond, "the incident's message in the team's chat")
	require.Contains(t, opening.PlainText, "Incident opened: CheckoutDown in checkout")
	require.Empty(t, escalations(in(chatID)), "step 1 names no channel: the team's chat is not paged")

	// Olga presses Acknowledge in the team's chat.
	q := tg.Press(t, opening, ack, faketelegram.User{ID: olgaTelegram, FirstName: "Olga"})
	require.Equal(t, "Acknowledged by user:olga: the incident is yours.", tg.WaitForAnswer(t, q.ID, 30*time.Second).Text)
	inc, err = incidents.GetIncident(ctx, &monitorv1.GetIncidentRequest{Id: id})
	require.NoError(t, err)
	require.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_ACKNOWLEDGED, inc.GetIncident().GetStatus())
	require.Equal(t, "olga", inc.GetIncident().GetAcknowledgedBy(), "as the API names its users")
	require.Equal(t, "acknowledged", inc.GetEscalation().GetStopped())
	require.Nil(t, inc.GetEscalation().GetNextStepAt(), "no step after the acknowledgement")

	// Past step 2's time, and a few of the engine's ticks: nothing more was
	// published, and nobody was told more.
	time.Sleep(time.Until(step2) + 3*time.Second)
	s, err := admin.Stream(ctx, "INCIDENTS")
	require.NoError(t, err)
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(bus.SubjectIncidentEscalated))
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.State.Subjects[bus.SubjectIncidentEscalated], "step 1 only, published once")
	require.Len(t, escalations(in(olgaChat)), 1, "olga was paged once")
	require.Empty(t, escalations(in(chatID)), "step 2 never reached the team's chat")
	inc, err = incidents.GetIncident(ctx, &monitorv1.GetIncidentRequest{Id: id})
	require.NoError(t, err)
	require.Equal(t, int32(1), inc.GetEscalation().GetLevel())
}
