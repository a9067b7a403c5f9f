package app_test

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/cmd/vigil/internal/loadgen"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/testkit/fakeline"
	"github.com/vigil-ops/vigil/pkg/testkit/fakeslack"
	"github.com/vigil-ops/vigil/pkg/testkit/fakesmtp"
	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
	"github.com/vigil-ops/vigil/pkg/testkit/fakewebhook"
	"github.com/vigil-ops/vigil/services/monitor"
	"github.com/vigil-ops/vigil/services/notify"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/channel/email"
	"github.com/vigil-ops/vigil/services/notify/channel/line"
	"github.com/vigil-ops/vigil/services/notify/channel/slack"
	"github.com/vigil-ops/vigil/services/notify/channel/telegram"
	"github.com/vigil-ops/vigil/services/notify/channel/webhook"
)

const (
	benchSlackChannel = "C0ALERTS1"
	benchLineTo       = "C4af4980629a0b1c2d3e4f5a6b7c8d9e0"
	benchHookSecret   = "webhook-secret-for-benchmarks"
)

// channelKinds are the channel kinds, Telegram (the yardstick) first.
var channelKinds = []string{"telegram", "slack", "line", "webhook", "email"}

// chats are a fake of every channel kind, and how many messages each has
// accepted.
type chats struct {
	tg   *faketelegram.Server
	sl   *fakeslack.Server
	ln   *fakeline.Server
	sink *fakewebhook.Sink
	smtp *fakesmtp.Server
}

func newChats(b testing.TB) (*chats, notify.Options) {
	b.Helper()
	c := &chats{
		tg:   faketelegram.New(b, faketelegram.Options{ChatIDs: []string{chatID}}),
		sl:   fakeslack.New(b, fakeslack.Options{Channels: []fakeslack.Channel{{ID: benchSlackChannel, Name: "alerts"}}}),
		ln:   fakeline.New(b, fakeline.Options{To: []string{benchLineTo}}),
		sink: fakewebhook.New(b, benchHookSecret),
		smtp: fakesmtp.Start(b, fakesmtp.Options{}),
	}
	return c, notify.Options{Channels: []channel.Config{
		telegram.Options{BotToken: c.tg.Token(), ChatID: chatID, APIURL: c.tg.URL()},
		slack.Options{BotToken: c.sl.BotToken(), Channel: benchSlackChannel, APIURL: c.sl.APIURL()},
		line.Options{ChannelToken: c.ln.Token(), To: benchLineTo, APIURL: c.ln.URL()},
		webhook.Options{URL: c.sink.URL, Secret: benchHookSecret},
		email.Options{
			Host: c.smtp.Host, Port: c.smtp.Port, TLS: email.TLSStartTLS, CAFile: c.smtp.CAFile(b),
			Username: fakesmtp.User, Password: fakesmtp.Password,
			From: "Vigil <vigil@ops.example.com>", To: []string{"oncall@example.com"},
		},
	}}
}

// waitFor waits until the fake of kind has n messages.
func (c *chats) waitFor(b testing.TB, kind string, n int) {
	b.Helper()
	const timeout = time.Minute
	switch kind {
	case "telegram":
		c.tg.WaitForMessages(b, n, timeout)
	case "slack":
		c.sl.WaitForMessages(b, n, timeout)
	case "line":
		c.ln.WaitForMessages(b, n, timeout)
	case "webhook":
		c.sink.WaitFor(b, n, timeout)
	case "email":
		c.smtp.WaitForMessages(b, n, timeout)
	}
}

// counts are the messages each fake has accepted, by kind.
func (c *chats) counts() map[string]int {
	return map[string]int{
		"telegram": len(c.tg.Messages()), "slack": len(c.sl.Messages()), "line": len(c.ln.Messages()),
		"webhook": len(c.sink.Accepted()), "email": len(c.smtp.Messages()),
	}
}

// runNotifying runs gateway, monitor and, unless off, notify, writing to
// c's fakes, as one process.
func runNotifying(b testing.TB, opts notify.Options, withNotify bool) *app.App {
	b.Helper()
	services := []string{"monitor", "gateway"}
	if withNotify {
		services = append(services, "notify")
	}
	nc, js := testkit.JetStream(b, testkit.NATS(b))
	return runApp(b, app.Options{
		Services: services, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		AdminToken: adminToken, DeployAddr: "127.0.0.1:1",
		Monitor: monitor.Options{GroupBy: []string{"alertname", "namespace"}},
		Notify:  opts,
	}, app.Deps{DatabaseURL: testkit.Postgres(b), NATS: nc, JetStream: js, Logger: discardLogger(), Keys: testKeys(b)})
}

// BenchmarkAlertToFirstMessage measures, at low load (one alert at a
// time), an Alertmanager webhook POSTed to the gateway → a new incident
// in monitor → notify's message accepted by each channel kind's fake.
// Telegram's figure is the yardstick: the others are reported as ratios
// to it.
func BenchmarkAlertToFirstMessage(b *testing.B) {
	c, opts := newChats(b)
	a := runNotifying(b, opts, true)
	url := "http://" + a.HTTPAddr() + "/api/v1/webhooks/alertmanager"
	took := map[string][]time.Duration{}
	var mu sync.Mutex
	i := 0
	for b.Loop() {
		i++
		body := fmt.Sprintf(`{"version":"4","status":"firing","receiver":"vigil","groupKey":"{}:{alertname=\"First%[1]d\"}","groupLabels":{"alertname":"First%[1]d"},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am:9093","alerts":[{"status":"firing","labels":{"alertname":"First%[1]d","namespace":"shop","severity":"critical"},"annotations":{"summary":"first message"},"startsAt":"2026-11-22T07:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prom:9090/graph","fingerprint":"%016[1]x"}]}`, i)
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(body))
		require.NoError(b, err)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		require.NoError(b, err)
		_ = resp.Body.Close()
		require.Equal(b, http.StatusAccepted, resp.StatusCode)
		var wg sync.WaitGroup
		for _, kind := range channelKinds {
			wg.Go(func() {
				c.waitFor(b, kind, i)
				d := time.Since(start)
				mu.Lock()
				took[kind] = append(took[kind], d)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	p50 := func(kind string) float64 { return quantile(took[kind], 0.5) }
	for _, kind := range channelKinds {
		b.ReportMetric(p50(kind), kind+"-p50-ms")
		b.ReportMetric(quantile(took[kind], 0.99), kind+"-p99-ms")
		if kind != "telegram" {
			b.ReportMetric(p50(kind)/p50("telegram"), kind+"/telegram-p50")
		}
	}
}

// quantile is the q-quantile of ds, in milliseconds.
func quantile(ds []time.Duration, q float64) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(q*float64(len(s))))].Microseconds()) / 1000
}

// BenchmarkNotifyStorm sends `vigil bench ingest`'s storm (16 senders ×
// 100 alerts per webhook over 20 groups, 10 s flat out) to gateway,
// monitor and notify writing to every channel kind, and counts the
// messages each channel got once every alert is in its incident: one per
// incident, however many alerts. The yardstick, in the same run: the same
// storm into gateway and monitor without notify.
func BenchmarkNotifyStorm(b *testing.B) {
	for b.Loop() {
		for _, withNotify := range []bool{false, true} {
			c, opts := newChats(b)
			a := runNotifying(b, opts, withNotify)
			g, err := loadgen.New(loadgen.Options{
				HTTPURL: "http://" + a.HTTPAddr(), GRPCAddr: a.GRPCAddr(), Token: adminToken, Via: loadgen.ViaWebhook,
				Senders: 16, AlertsPerRequest: 100, Groups: 20, Duration: 10 * time.Second,
				PollInterval: 50 * time.Millisecond, WaitTimeout: 5 * time.Minute,
			}, loadgen.Deps{Logger: discardLogger()})
			require.NoError(b, err)
			r, err := g.Run(b.Context())
			require.NoError(b, err)
			require.True(b, r.Drained, "every accepted alert reached an incident")
			name := "without-notify"
			if withNotify {
				name = "with-notify"
				for _, kind := range channelKinds {
					c.waitFor(b, kind, r.Incidents)
				}
				// Anything more would come at once: the incidents are all
				// opened and announced.
				time.Sleep(2 * time.Second)
				for kind, n := range c.counts() {
					b.ReportMetric(float64(n), kind+"-messages")
				}
				b.ReportMetric(float64(r.Incidents), "incidents")
			}
			b.ReportMetric(r.AcceptedPerSecond, name+"-accepted/s")
			b.ReportMetric(r.PersistedPerSecond, name+"-in-incidents/s")
		}
	}
}
