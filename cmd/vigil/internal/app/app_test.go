package app_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
	"github.com/vigil-ops/vigil/services/deploy"
	"github.com/vigil-ops/vigil/services/monitor"
	"github.com/vigil-ops/vigil/services/notify"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/channel/telegram"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// testKey is a fresh encryption key for the deploy service.
// testKeys is a fresh signing key for session tokens and assertions.
func testKeys(t testing.TB) *auth.KeySet {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return auth.NewKeySet(priv)
}

func testKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

const (
	adminToken = "test-admin-token-0123456789"
	chatID     = "-1001234567890"
)

// vigil is one running `vigil up`-shaped process for a test.
type vigil struct {
	*app.App
	telegram *faketelegram.Server
	// dsn is the database's, as its superuser; logins are the services'
	// own roles, which they log in as.
	dsn    string
	logins map[string]db.Login
}

// lockedBus is the bus locked as `vigil up` locks it: a connection per
// service, each as its own NATS user, and admin's, which provisions the
// streams.
func lockedBus(t testing.TB) (map[string]app.Conn, jetstream.JetStream) {
	t.Helper()
	b := testkit.LockedNATS(t)
	conns := map[string]app.Conn{}
	for _, s := range app.Services {
		nc, js := b.Conn(t, s)
		conns[s] = app.Conn{NATS: nc, JetStream: js}
	}
	_, admin := b.Conn(t, bus.UserAdmin)
	return conns, admin
}

// startVigil starts Vigil; tune, when given, changes its options first.
func startVigil(t *testing.T, tune ...func(*app.Options)) *vigil {
	t.Helper()
	dsn := testkit.Postgres(t)
	// As `vigil up` does: each service logs in as its own role.
	logins, err := db.Bootstrap(context.Background(), dsn, app.Services, nil)
	require.NoError(t, err)
	conns, admin := lockedBus(t)
	tg := faketelegram.New(t, faketelegram.Options{ChatIDs: []string{chatID}})
	ctx, cancel := context.WithCancel(context.Background())
	opts := app.Options{
		Streams:    testkit.TestStreams,
		Services:   app.Services,
		GRPCAddr:   "127.0.0.1:0",
		HTTPAddr:   "127.0.0.1:0",
		AdminToken: adminToken,
		Monitor:    monitor.Options{GroupBy: []string{"alertname", "namespace"}},
		Deploy:     deploy.Options{EncryptionKey: testKey()},
		Notify: notify.Options{Channels: []channel.Config{telegram.Options{
			BotToken: tg.Token(), ChatID: chatID, APIURL: tg.URL(),
		}}},
	}
	for _, f := range tune {
		f(&opts)
	}
	a, err := app.New(ctx, opts, app.Deps{DatabaseURL: dsn, DatabaseLogins: logins, Bus: conns, Admin: admin, Logger: testkit.Logger(t), Keys: testKeys(t)})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("vigil did not shut down within 30s")
		}
	})
	return &vigil{App: a, telegram: tg, dsn: dsn, logins: logins}
}

type incidentJSON struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	Title       string `json:"title"`
	AlertCount  int    `json:"alert_count"`
	FiringCount int    `json:"firing_count"`
	Alerts      []struct {
		Alert struct {
			Fingerprint string            `json:"fingerprint"`
			Labels      map[string]string `json:"labels"`
			Status      string            `json:"status"`
		} `json:"alert"`
	} `json:"alerts"`
}

func (v *vigil) get(t *testing.T, path, token string, out any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+v.HTTPAddr()+path, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil && resp.StatusCode == http.StatusOK {
		require.NoError(t, json.Unmarshal(body, out), string(body))
	}
	return resp.StatusCode
}

func (v *vigil) incidents(t *testing.T) []incidentJSON {
	t.Helper()
	var list struct {
		Incidents []incidentJSON `json:"incidents"`
	}
	require.Equal(t, http.StatusOK, v.get(t, "/api/v1/incidents", adminToken, &list))
	return list.Incidents
}

// TestAlertmanagerToTelegram is the first path end to end: a stock
// Alertmanager whose webhook_configs points at Vigil, two alerts of one
// group posted to Alertmanager's own API, one incident in Vigil's API, a
// Telegram message (through one rate limit), and resolution of both.
func TestAlertmanagerToTelegram(t *testing.T) {
	v := startVigil(t)
	am := testkit.Alertmanager(t, fmt.Sprintf(`
route:
  receiver: vigil
  group_by: [alertname, namespace]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: vigil
    webhook_configs:
      - url: http://%s/api/v1/webhooks/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: %s
`, v.HTTPAddr(), adminToken))

	// Telegram's first answer is a rate limit: notify must honour it and
	// deliver anyway.
	v.telegram.RateLimitNext(1, 1)

	ctx := context.Background()
	start := time.Now().Add(-time.Minute)
	alert := func(instance string) testkit.PostableAlert {
		return testkit.PostableAlert{
			Labels: map[string]string{
				"alertname": "HighLatency", "namespace": "shop", "severity": "critical", "instance": instance,
			},
			Annotations: map[string]string{"summary": "p99 latency <b>above</b> 500ms & rising"},
			StartsAt:    start,
		}
	}
	require.NoError(t, am.PostAlerts(ctx, alert("checkout-1"), alert("checkout-2")))

	var inc incidentJSON
	require.Eventually(t, func() bool {
		incs := v.incidents(t)
		if len(incs) != 1 {
			return false
		}
		inc = incs[0]
		return inc.AlertCount == 2
	}, 30*time.Second, 200*time.Millisecond, "want one incident with both alerts")
	assert.Equal(t, "INCIDENT_STATUS_OPEN", inc.Status)
	assert.Equal(t, "HighLatency in shop", inc.Title)

	var got struct {
		Incident incidentJSON `json:"incident"`
	}
	require.Equal(t, http.StatusOK, v.get(t, "/api/v1/incidents/"+inc.ID, adminToken, &got))
	require.Len(t, got.Incident.Alerts, 2)
	assert.Equal(t, http.StatusUnauthorized, v.get(t, "/api/v1/incidents/"+inc.ID, "", nil))
	assert.Equal(t, http.StatusUnauthorized, v.get(t, "/api/v1/incidents", "wrong-token-0123456789", nil))

	msgs := v.telegram.WaitForMessages(t, 1, 30*time.Second)
	assert.Equal(t, chatID, msgs[0].ChatID)
	assert.Equal(t, "HTML", msgs[0].ParseMode)
	assert.Contains(t, msgs[0].PlainText, "Incident opened: HighLatency in shop")
	// Alert text is data: the <b> from the annotation is shown, not applied.
	assert.Contains(t, msgs[0].PlainText, "p99 latency <b>above</b> 500ms & rising")
	assert.Contains(t, msgs[0].PlainText, inc.ID)
	rateLimited := 0
	for _, r := range v.telegram.Requests() {
		if r.StatusCode == http.StatusTooManyRequests {
			rateLimited++
		}
	}
	assert.Equal(t, 1, rateLimited, "the rate-limited attempt was made and retried")

	// Resolve both alerts in Alertmanager: the incident resolves.
	resolved := func(instance string) testkit.PostableAlert {
		a := alert(instance)
		a.EndsAt = time.Now()
		return a
	}
	require.NoError(t, am.PostAlerts(ctx, resolved("checkout-1"), resolved("checkout-2")))
	require.Eventually(t, func() bool {
		incs := v.incidents(t)
		return len(incs) == 1 && incs[0].Status == "INCIDENT_STATUS_RESOLVED" && incs[0].FiringCount == 0
	}, 30*time.Second, 200*time.Millisecond, "the incident resolves when its alerts do")

	// The incident's messages: opened, its analysis (a reply to it), and
	// resolved; the analysis may come before or after the resolution.
	msgs = v.telegram.WaitForMessages(t, 3, 30*time.Second)
	var resolvedMsg, analysisMsg *faketelegram.Message
	for i := range msgs[1:] {
		m := &msgs[1+i]
		switch {
		case strings.HasPrefix(m.PlainText, "✅ ") && strings.Contains(m.PlainText, "Incident resolved: HighLatency in shop"):
			resolvedMsg = m
		case strings.HasPrefix(m.PlainText, "🔎 Analysis:"):
			analysisMsg = m
		}
	}
	require.NotNil(t, resolvedMsg, "the resolution is told")
	require.NotNil(t, analysisMsg, "the analysis is told")
	assert.Equal(t, msgs[0].MessageID, analysisMsg.ReplyToMessageID, "the analysis replies to the incident's message")
	assert.Contains(t, analysisMsg.PlainText, inc.ID)
	assert.Len(t, v.telegram.Messages(), 3, "one message per incident event, no duplicates")
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
