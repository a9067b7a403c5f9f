package telegram_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/approval"
	botapi "github.com/vigil-ops/vigil/pkg/chat/telegram"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
	"github.com/vigil-ops/vigil/services/gateway/internal/chat"
	"github.com/vigil-ops/vigil/services/gateway/internal/chat/telegram"
)

// answering answers every press with its verb and records it.
type answering struct {
	mu  sync.Mutex
	got []chat.Press
}

func (a *answering) Handle(ctx context.Context, p chat.Press, r chat.Responder) {
	a.mu.Lock()
	a.got = append(a.got, p)
	a.mu.Unlock()
	_ = r.Answer(ctx, "got "+string(p.Verb), false)
}

func (a *answering) presses() []chat.Press {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]chat.Press(nil), a.got...)
}

// card sends a message with the four buttons of repair id.
func card(t *testing.T, tg *faketelegram.Server, api *botapi.Client, chatID, id string) faketelegram.Message {
	t.Helper()
	var row []botapi.Button
	for _, v := range approval.Verbs {
		row = append(row, botapi.Button{Text: string(v), CallbackData: approval.CallbackData(v, id)})
	}
	sent, err := api.SendMessage(context.Background(), botapi.Message{
		ChatID: chatID, Text: "Repair " + id, ReplyMarkup: botapi.InlineKeyboard{row},
	})
	require.NoError(t, err)
	m, ok := tg.Message(chatID, sent.MessageID)
	require.True(t, ok)
	return m
}

// TestPoller: the poller removes a webhook, honours a 429, hands presses
// to the bot, confirms what it handled, and stops at once mid-poll.
func TestPoller(t *testing.T) {
	t.Parallel()
	tg := faketelegram.New(t, faketelegram.Options{ChatIDs: []string{"-1001234567890"}})
	api, err := botapi.New(botapi.Options{BaseURL: tg.URL(), Token: tg.Token()})
	require.NoError(t, err)
	id := uuid.NewString()
	m := card(t, tg, api, "-1001234567890", id)
	require.NoError(t, api.SetWebhook(context.Background(), "https://vigil.example.com/api/v1/webhooks/telegram", "s3cret", nil))
	approvals := &answering{}
	p := &telegram.Poller{
		API: api, Bot: &telegram.Bot{ID: "123456789", Updates: newStore(t), Approvals: approvals, API: api, Log: testkit.Logger(t)},
		Log: testkit.Logger(t), Timeout: 5 * time.Second,
	}
	tg.RateLimitNext(1, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	require.Eventually(t, func() bool { _, ok := tg.Webhook(); return !ok }, 10*time.Second, 5*time.Millisecond,
		"the webhook is deleted to poll")
	q := tg.Press(t, m, approval.CallbackData(approval.Reject, id), faketelegram.User{ID: 7, FirstName: "Alice"})
	require.Equal(t, "got reject", tg.WaitForAnswer(t, q.ID, 10*time.Second).Text)
	require.Equal(t, []chat.Press{{Provider: "telegram", Account: "7", Verb: approval.Reject, RepairID: id}}, approvals.presses())

	// The next poll is held; stopping ends it at once.
	require.Eventually(t, func() bool {
		reqs := tg.Requests()
		return len(reqs) > 0 && reqs[len(reqs)-1].Method == "answerCallbackQuery"
	}, 5*time.Second, 5*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	cancel()
	require.NoError(t, <-done)
	require.Less(t, time.Since(start), time.Second)
	done <- nil // for the cleanup

	info, err := api.WebhookInfo(context.Background())
	require.NoError(t, err)
	require.Zero(t, info.PendingUpdateCount, "the update handled is confirmed")
	var sawRateLimit bool
	for _, r := range tg.Requests() {
		if r.StatusCode == http.StatusTooManyRequests {
			sawRateLimit = true
		} else {
			require.Less(t, r.StatusCode, 300, "%s: %s", r.Method, r.Description)
		}
	}
	require.True(t, sawRateLimit)
}
