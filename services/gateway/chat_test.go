package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/approval"
	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/testkit/fakeslack"
	"github.com/vigil-ops/vigil/services/gateway"
)

// requests counts the fake's requests of a Bot API method, and those of
// them that failed.
func (e *env) requests(method string) (all, failed int) {
	for _, r := range e.tg.Requests() {
		if r.Method == method {
			all++
			if r.StatusCode >= 300 {
				failed++
			}
		}
	}
	return all, failed
}

// A webhook secret that could be guessed stops the gateway at start,
// before it tells Telegram anything.
func TestTelegramShortWebhookSecretRefusedAtStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pool, err := db.Open(context.Background(), e.dsn, gateway.Schema)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	for _, secret := range []string{"x", "tg_webhook-Secret01", strings.Repeat("a", gateway.MinTelegramSecret-1)} {
		_, err := gateway.New(context.Background(), gateway.Options{
			TelegramBotToken: e.tg.Token(), TelegramAPIURL: e.tg.URL(),
			TelegramWebhookURL: "https://vigil.example.com/api/v1/webhooks/telegram", TelegramWebhookSecret: secret,
		}, gateway.Deps{Pool: pool, Keys: e.keys, Publisher: e.pub, Logger: testkit.Logger(t)})
		require.ErrorContains(t, err, "VIGIL_TELEGRAM_WEBHOOK_SECRET: is ", secret)
		require.ErrorContains(t, err, "must be at least 32", secret)
	}
	_, set := e.tg.Webhook()
	require.False(t, set, "no webhook was set")
	require.Empty(t, e.tg.Requests(), "Telegram was not called")
}

// Without a configured secret the gateway generates one, registers it
// with setWebhook, and every replica verifies the same one.
func TestTelegramWebhookSecretGeneratedWhenUnset(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	opts := gateway.Options{TelegramBotToken: e.tg.Token(), TelegramAPIURL: e.tg.URL(), TelegramWebhookURL: webhookURL}
	g1 := e.start(t, opts)
	require.Eventually(t, func() bool { _, ok := e.tg.Webhook(); return ok }, 10*time.Second, 10*time.Millisecond, "setWebhook")
	wh, _ := e.tg.Webhook()
	require.Regexp(t, `^[A-Za-z0-9_-]{32,256}$`, wh.SecretToken)
	g2 := e.start(t, opts)

	// Both replicas take the registered secret, and nothing else.
	for _, g := range []*gw{g1, g2} {
		for token, want := range map[string]int{wh.SecretToken: http.StatusOK, "": http.StatusUnauthorized, wh.SecretToken[:31]: http.StatusUnauthorized} {
			req, err := http.NewRequest(http.MethodPost, "http://"+g.addr+"/api/v1/webhooks/telegram",
				strings.NewReader(`{"update_id":5}`))
			require.NoError(t, err)
			if token != "" {
				req.Header.Set("X-Telegram-Bot-Api-Secret-Token", token)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			require.Equal(t, want, resp.StatusCode)
		}
	}

	// Presses come through it.
	_, a := e.tgPress(t, e.tgCard(t, rReject), approval.CallbackData(approval.Reject, rReject), tgAlice)
	require.Equal(t, "Rejected: the repair will not run.", a.Text)
	require.Equal(t, bus.SubjectRepairRejected, e.waitEvents(t, 1)[0].subject)
}

// A press Telegram did not make (a callback id it never issued, sent with
// the webhook's secret by whoever has it) fails answerCallbackQuery, and
// is not acted on: nothing is published.
func TestTelegramForgedPressNotActedOn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := e.start(t, gateway.Options{
		TelegramBotToken: e.tg.Token(), TelegramAPIURL: e.tg.URL(),
		TelegramWebhookURL: webhookURL, TelegramWebhookSecret: telegramSecret,
	})
	require.Eventually(t, func() bool { _, ok := e.tg.Webhook(); return ok }, 10*time.Second, 10*time.Millisecond, "setWebhook")

	forged := `{"update_id":777,"callback_query":{"id":"4000000000000000999","from":{"id":1001,"is_bot":false,"first_name":"Alice"},` +
		`"chat_instance":"1","data":"` + approval.CallbackData(approval.Approve, rApprove) + `"}}`
	req, err := http.NewRequest(http.MethodPost, "http://"+g.addr+"/api/v1/webhooks/telegram", strings.NewReader(forged))
	require.NoError(t, err)
	req.Header.Set("X-Telegram-Bot-Api-Secret-Token", telegramSecret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	all, failed := e.requests("answerCallbackQuery")
	require.Equal(t, 1, all)
	require.Equal(t, 1, failed, "Telegram refused to answer the forged query")
	require.Equal(t, []string{"user:alice repair/" + rApprove + " Aborted"}, e.audit(t, "chat.telegram/ApproveRepair"))

	// A real press after it is published, and is the only thing that is:
	// the bus keeps one publisher's order, so a forged approval would
	// have come first.
	_, a := e.tgPress(t, e.tgCard(t, rReject), approval.CallbackData(approval.Reject, rReject), tgAlice)
	require.Equal(t, "Rejected: the repair will not run.", a.Text)
	evs := e.waitEvents(t, 1)
	require.Len(t, evs, 1)
	require.Equal(t, bus.SubjectRepairRejected, evs[0].subject)
}

// An update Telegram brings again (its acknowledgement lost) is acted on
// once, even when it comes back another way: handled by polling, then
// delivered again to the webhook of a gateway started with one.
func TestTelegramRepeatedUpdateActedOnOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	poller := e.start(t, gateway.Options{TelegramBotToken: e.tg.Token(), TelegramAPIURL: e.tg.URL(), TelegramPollRetry: 100 * time.Millisecond})
	q, a := e.tgPress(t, e.tgCard(t, rApprove), approval.CallbackData(approval.Approve, rApprove), tgAlice)
	require.Contains(t, a.Text, "Approved")
	require.Equal(t, bus.SubjectRepairApproved, e.waitEvents(t, 1)[0].subject)
	poller.stop()

	e.start(t, gateway.Options{
		TelegramBotToken: e.tg.Token(), TelegramAPIURL: e.tg.URL(),
		TelegramWebhookURL: webhookURL, TelegramWebhookSecret: telegramSecret,
	})
	require.Eventually(t, func() bool { _, ok := e.tg.Webhook(); return ok }, 10*time.Second, 10*time.Millisecond, "setWebhook")
	for range 2 {
		e.tg.Redeliver(t, q.UpdateID)
		ds := e.tg.Deliveries()
		require.Equal(t, q.UpdateID, ds[len(ds)-1].UpdateID)
		require.Empty(t, ds[len(ds)-1].Err, "the repeat is acknowledged, so Telegram stops sending it")
	}

	all, failed := e.requests("answerCallbackQuery")
	require.Equal(t, 1, all, "the repeat was not answered again")
	require.Zero(t, failed)
	require.Equal(t, []string{"user:alice repair/" + rApprove + " OK"}, e.audit(t, "chat.telegram/ApproveRepair"))
	// A later press is published, and is the second event only.
	_, a = e.tgPress(t, e.tgCard(t, rReject), approval.CallbackData(approval.Reject, rReject), tgAlice)
	require.Contains(t, a.Text, "Rejected")
	evs := e.waitEvents(t, 2)
	require.Len(t, evs, 2)
	require.Equal(t, bus.SubjectRepairRejected, evs[1].subject)
}

// A signed interaction whose response_url is not Slack's is refused: the
// gateway posts nothing there, and decides nothing.
func TestSlackResponseURLNotSlacksNotCalled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var hits atomic.Int64
	elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(elsewhere.Close)
	g := e.start(t, gateway.Options{SlackSigningSecret: e.sl.SigningSecret(), SlackResponseURLBase: e.sl.ResponseURLBase()})
	e.sl.SetInteractivityURL("http://" + g.addr + "/api/v1/webhooks/slack/interactions")

	for _, base := range []string{elsewhere.URL + "/", "https://hooks.slack.com.attacker.example/", strings.Replace(e.sl.ResponseURLBase(), "http://", "http://user@", 1)} {
		in := e.sl.Press(t, e.slCard(t, rApprove), approval.SlackActionID(approval.Approve), slAlice, fakeslack.ResponseURLAt(base))
		require.Equal(t, http.StatusBadRequest, in.StatusCode, base)
		require.Contains(t, in.ResponseBody, "response_url is not Slack's", base)
	}
	require.Zero(t, hits.Load(), "nothing was posted elsewhere")
	require.Empty(t, e.sl.ResponsePosts())
	require.Empty(t, e.audit(t, "chat.slack/ApproveRepair"), "nothing was decided")

	// The same press with Slack's own response_url is decided.
	require.Contains(t, e.slPress(t, rApprove, approval.Approve, slAlice).Text, "Approved")
	evs := e.waitEvents(t, 1)
	require.Len(t, evs, 1)
	require.Equal(t, bus.SubjectRepairApproved, evs[0].subject)
	require.Zero(t, hits.Load())
}
