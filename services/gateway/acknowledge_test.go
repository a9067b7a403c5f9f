package gateway_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/approval"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit/fakeslack"
	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
	"github.com/vigil-ops/vigil/services/gateway"
)

// person is someone with an account in each chat.
type person struct {
	tg faketelegram.User
	sl fakeslack.User
	ln string
}

var (
	alice    = person{tgAlice, slAlice, lnAlice}
	vera     = person{tgVera, slVera, lnVera}
	olga     = person{tgOlga, slOlga, lnOlga}
	stranger = person{tgStranger, slStranger, lnStranger}
)

// TestAcknowledgeFromChat: the Acknowledge button of an incident's
// message, pressed in Telegram, Slack or LINE by a linked operator of the
// incident's team, acknowledges it in monitor as that user, answered
// first; pressed by someone of another team, a viewer or a stranger, it
// is refused and the incident stays open; pressed again, it says who
// acknowledged it. Every press is audited.
func TestAcknowledgeFromChat(t *testing.T) {
	t.Parallel()
	ack := approval.CallbackData(approval.Acknowledge, incidentID)
	for _, tc := range []struct {
		provider string
		press    func(t *testing.T, e *env, url string, who person) string
		stranger string
	}{
		{"telegram", func(t *testing.T, e *env, _ string, who person) string {
			_, a := e.tgPress(t, e.tgCard(t, rApprove, ack), ack, who.tg)
			return a.Text
		}, "telegram:1009"},
		{"slack", func(t *testing.T, e *env, _ string, who person) string {
			return e.slPress(t, incidentID, approval.Acknowledge, who.sl).Text
		}, "slack:" + fakeslack.DefaultTeamID + ":USAM01"},
		{"line", func(t *testing.T, e *env, url string, who person) string {
			n := len(e.ln.Replies())
			status, _ := e.ln.Post(t, url, e.ln.Postback(who.ln, ack))
			require.Equal(t, http.StatusOK, status)
			return e.lnReply(t, n+1)
		}, "line:" + lnStranger},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			g := e.start(t, gateway.Options{
				TelegramBotToken: e.tg.Token(), TelegramAPIURL: e.tg.URL(),
				TelegramWebhookURL: webhookURL, TelegramWebhookSecret: telegramSecret,
				SlackSigningSecret: e.sl.SigningSecret(), SlackResponseURLBase: e.sl.ResponseURLBase(),
				LineChannelSecret: e.ln.ChannelSecret(), LineChannelToken: e.ln.Token(), LineAPIURL: e.ln.URL(),
				AdminToken: restAdminToken,
			})
			e.sl.SetInteractivityURL("http://" + g.addr + "/api/v1/webhooks/slack/interactions")
			require.Eventually(t, func() bool { _, ok := e.tg.Webhook(); return ok }, 10*time.Second, 10*time.Millisecond, "setWebhook")
			url := "http://" + g.addr + "/api/v1/webhooks/line"
			// The incident as the API shows it.
			incident := func() *typesv1.Incident {
				var got struct {
					Incident struct {
						Status         string `json:"status"`
						AcknowledgedBy string `json:"acknowledged_by"`
					} `json:"incident"`
				}
				require.Equal(t, http.StatusOK, rest(t, g.addr, http.MethodGet, "/api/v1/incidents/"+incidentID, restAdminToken, "", nil, &got).StatusCode)
				return &typesv1.Incident{
					Status:         typesv1.IncidentStatus(typesv1.IncidentStatus_value[got.Incident.Status]),
					AcknowledgedBy: got.Incident.AcknowledgedBy,
				}
			}

			require.Contains(t, tc.press(t, e, url, olga), "Only an operator of the incident's team may acknowledge it; user:olga is not in it.")
			require.Contains(t, tc.press(t, e, url, vera), "user:vera is a viewer")
			require.Contains(t, tc.press(t, e, url, stranger), "Vigil does not know your")
			require.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_OPEN, incident().GetStatus(), "a refusal changes nothing")
			require.Empty(t, incident().GetAcknowledgedBy())

			require.Equal(t, "Acknowledged by user:alice: the incident is yours.", tc.press(t, e, url, alice))
			require.Eventually(t, func() bool {
				return incident().GetStatus() == typesv1.IncidentStatus_INCIDENT_STATUS_ACKNOWLEDGED
			}, 10*time.Second, 10*time.Millisecond)
			require.Equal(t, "user:alice", incident().GetAcknowledgedBy())
			require.Equal(t, "Already acknowledged by user:alice.", tc.press(t, e, url, alice))

			method := "chat." + tc.provider + "/AcknowledgeIncident"
			require.Eventually(t, func() bool { return len(e.audit(t, method)) == 5 }, 10*time.Second, 10*time.Millisecond)
			target := " incident/" + incidentID
			require.ElementsMatch(t, []string{
				"user:olga" + target + " PermissionDenied", "user:vera" + target + " PermissionDenied",
				tc.stranger + target + " Unauthenticated",
				"user:alice" + target + " OK", "user:alice" + target + " FailedPrecondition",
			}, e.audit(t, method))
			require.Empty(t, e.events(), "nothing on the bus: monitor is called")
		})
	}
}
