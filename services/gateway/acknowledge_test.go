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

// presser presses an incident's button (data: its callback data) in one
// chat as who, and returns the answer; stranger is how the audit log
// names the unlinked account.
type presser struct {
	provider string
	press    func(t *testing.T, e *env, url string, who person, v approval.Verb) string
	stranger string
}

var pressers = []presser{
	{"telegram", func(t *testing.T, e *env, _ string, who person, v approval.Verb) string {
		data := approval.CallbackData(v, incidentID)
		_, a := e.tgPress(t, e.tgCard(t, rApprove, data), data, who.tg)
		return a.Text
	}, "telegram:1009"},
	{"slack", func(t *testing.T, e *env, _ string, who person, v approval.Verb) string {
		return e.slPress(t, incidentID, v, who.sl).Text
	}, "slack:" + fakeslack.DefaultTeamID + ":USAM01"},
	{"line", func(t *testing.T, e *env, url string, who person, v approval.Verb) string {
		n := len(e.ln.Replies())
		status, _ := e.ln.Post(t, url, e.ln.Postback(who.ln, approval.CallbackData(v, incidentID)))
		require.Equal(t, http.StatusOK, status)
		return e.lnReply(t, n+1)
	}, "line:" + lnStranger},
}

// startChats runs a gateway answering the three chats (snooze: how long
// the Snooze button snoozes) and returns it with the LINE webhook's URL.
func (e *env) startChats(t *testing.T, snooze time.Duration) (*gw, string) {
	t.Helper()
	g := e.start(t, gateway.Options{
		TelegramBotToken: e.tg.Token(), TelegramAPIURL: e.tg.URL(),
		TelegramWebhookURL: webhookURL, TelegramWebhookSecret: telegramSecret,
		SlackSigningSecret: e.sl.SigningSecret(), SlackResponseURLBase: e.sl.ResponseURLBase(),
		LineChannelSecret: e.ln.ChannelSecret(), LineChannelToken: e.ln.Token(), LineAPIURL: e.ln.URL(),
		AdminToken: restAdminToken, ChatSnooze: snooze,
	})
	e.sl.SetInteractivityURL("http://" + g.addr + "/api/v1/webhooks/slack/interactions")
	require.Eventually(t, func() bool { _, ok := e.tg.Webhook(); return ok }, 10*time.Second, 10*time.Millisecond, "setWebhook")
	return g, "http://" + g.addr + "/api/v1/webhooks/line"
}

// restIncident is the incident as the API shows it.
type restIncident struct {
	Incident struct {
		Status         string `json:"status"`
		AcknowledgedBy string `json:"acknowledged_by"`
	} `json:"incident"`
	Escalation struct {
		Level        int32     `json:"level"`
		SnoozedUntil time.Time `json:"snoozed_until"`
		SnoozedBy    string    `json:"snoozed_by"`
	} `json:"escalation"`
}

func getIncident(t *testing.T, g *gw) restIncident {
	t.Helper()
	var got restIncident
	require.Equal(t, http.StatusOK, rest(t, g.addr, http.MethodGet, "/api/v1/incidents/"+incidentID, restAdminToken, "", nil, &got).StatusCode)
	return got
}

// TestAcknowledgeFromChat: the Acknowledge button of an incident's
// message, pressed in Telegram, Slack or LINE by a linked operator of the
// incident's team, acknowledges it in monitor as that user, answered
// first; pressed by someone of another team, a viewer or a stranger, it
// is refused and the incident stays open; pressed again, it says who
// acknowledged it. Every press is audited.
func TestAcknowledgeFromChat(t *testing.T) {
	t.Parallel()
	for _, tc := range pressers {
		t.Run(tc.provider, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			g, url := e.startChats(t, 0)
			press := func(who person) string { return tc.press(t, e, url, who, approval.Acknowledge) }
			incident := func() *typesv1.Incident {
				got := getIncident(t, g).Incident
				return &typesv1.Incident{
					Status:         typesv1.IncidentStatus(typesv1.IncidentStatus_value[got.Status]),
					AcknowledgedBy: got.AcknowledgedBy,
				}
			}

			require.Contains(t, press(olga), "Only an operator of the incident's team may acknowledge it; user:olga is not in it.")
			require.Contains(t, press(vera), "user:vera is a viewer")
			require.Contains(t, press(stranger), "Vigil does not know your")
			require.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_OPEN, incident().GetStatus(), "a refusal changes nothing")
			require.Empty(t, incident().GetAcknowledgedBy())

			require.Equal(t, "Acknowledged by user:alice: the incident is yours.", press(alice))
			require.Eventually(t, func() bool {
				return incident().GetStatus() == typesv1.IncidentStatus_INCIDENT_STATUS_ACKNOWLEDGED
			}, 10*time.Second, 10*time.Millisecond)
			require.Equal(t, "user:alice", incident().GetAcknowledgedBy())
			require.Equal(t, "Already acknowledged by user:alice.", press(alice))

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

// TestEscalateAndSnoozeFromChat: the Escalate and Snooze buttons of an
// incident's message, pressed by a linked operator of the incident's
// team, escalate it (the next step, in monitor, as that user) and snooze
// its escalation for VIGIL_CHAT_SNOOZE; pressed by someone of another
// team, a viewer or a stranger, they are refused and the escalation is
// as it was. Once the incident is acknowledged, Snooze is refused (there
// is nothing left to hold) while Escalate still asks for help. Audited.
func TestEscalateAndSnoozeFromChat(t *testing.T) {
	t.Parallel()
	const snooze = 30 * time.Minute
	for _, tc := range pressers {
		t.Run(tc.provider, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			g, url := e.startChats(t, snooze)
			press := func(who person, v approval.Verb) string { return tc.press(t, e, url, who, v) }

			for _, v := range []approval.Verb{approval.Escalate, approval.Snooze} {
				require.Contains(t, press(olga, v), "Only an operator of the incident's team may "+string(v)+" it; user:olga is not in it.")
				require.Contains(t, press(vera, v), "user:vera is a viewer")
				require.Contains(t, press(stranger, v), "Vigil does not know your")
			}
			before := getIncident(t, g).Escalation
			require.Zero(t, before.Level, "a refusal changes nothing")
			require.Empty(t, before.SnoozedBy)
			require.True(t, before.SnoozedUntil.IsZero())

			require.Contains(t, press(alice, approval.Escalate), "Escalating: Vigil takes the incident's next escalation step now, as asked by user:alice.")
			require.Eventually(t, func() bool { return getIncident(t, g).Escalation.Level == 1 }, 10*time.Second, 10*time.Millisecond)

			asked := time.Now()
			require.Contains(t, press(alice, approval.Snooze), "Snoozed for 30m0s by user:alice: no escalation step until ")
			require.Eventually(t, func() bool { return getIncident(t, g).Escalation.SnoozedBy == "user:alice" }, 10*time.Second, 10*time.Millisecond)
			until := getIncident(t, g).Escalation.SnoozedUntil
			require.False(t, until.Before(asked.Add(snooze).Truncate(time.Second)), "snoozed for VIGIL_CHAT_SNOOZE: %s", until)
			require.False(t, until.After(time.Now().Add(snooze)), "snoozed for VIGIL_CHAT_SNOOZE: %s", until)

			e.incidents.mu.Lock()
			e.incidents.incident.Status, e.incidents.incident.AcknowledgedBy = typesv1.IncidentStatus_INCIDENT_STATUS_ACKNOWLEDGED, "user:bob"
			e.incidents.escalation.SnoozedBy = ""
			e.incidents.mu.Unlock()
			require.Equal(t, "Already acknowledged by user:bob: its escalation has stopped, there is nothing to snooze.", press(alice, approval.Snooze))
			require.Contains(t, press(alice, approval.Escalate), "Escalating")
			require.Eventually(t, func() bool { return getIncident(t, g).Escalation.Level == 2 }, 10*time.Second, 10*time.Millisecond)
			require.Empty(t, getIncident(t, g).Escalation.SnoozedBy, "the refused snooze changed nothing")

			target := " incident/" + incidentID
			refusals := []string{
				"user:olga" + target + " PermissionDenied", "user:vera" + target + " PermissionDenied",
				tc.stranger + target + " Unauthenticated",
			}
			escalate, snoozeM := "chat."+tc.provider+"/EscalateIncident", "chat."+tc.provider+"/SnoozeIncident"
			require.Eventually(t, func() bool {
				return len(e.audit(t, escalate)) == 5 && len(e.audit(t, snoozeM)) == 5
			}, 10*time.Second, 10*time.Millisecond)
			require.ElementsMatch(t, append(refusals, "user:alice"+target+" OK", "user:alice"+target+" OK"), e.audit(t, escalate))
			require.ElementsMatch(t, append(refusals, "user:alice"+target+" OK", "user:alice"+target+" FailedPrecondition"), e.audit(t, snoozeM))
			require.Empty(t, e.events(), "nothing on the bus: monitor is called")
		})
	}
}
