package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/deploy"
	"github.com/vigil-ops/vigil/services/monitor"
)

// stallProxy forwards TCP to a server until stalled: from then on what
// clients send is held back (read and kept, never forwarded), as if the
// server had stopped answering, while their connections stay up.
type stallProxy struct {
	ln      net.Listener
	to      string
	stalled atomic.Bool
	held    atomic.Int64 // bytes held back since stalled
}

func newStallProxy(t *testing.T, to string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &stallProxy{ln: ln, to: to}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", to)
			if err != nil {
				_ = c.Close()
				continue
			}
			wg.Go(func() { _, _ = io.Copy(c, s); _ = c.Close() })
			wg.Go(func() { p.forward(s, c); _ = s.Close() })
		}
	})
	return p
}

func (p *stallProxy) forward(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if p.stalled.Load() {
			p.held.Add(int64(n))
		} else if _, werr := dst.Write(buf[:n]); werr != nil {
			return
		}
		if err != nil {
			return
		}
	}
}

// webhookOne is an Alertmanager webhook of one alert, told apart by its
// instance label.
func webhookOne(instance string) []byte {
	return fmt.Appendf(nil, `{"version":"4","status":"firing","receiver":"vigil","groupKey":"{}:{alertname=\"Stop\"}","alerts":[`+
		`{"status":"firing","labels":{"alertname":"Stop","namespace":"stop","instance":%q},"startsAt":"2026-11-22T07:00:00Z"}]}`, instance)
}

// TestStopWithWebhooksInFlight: SIGTERM while webhooks wait on a
// JetStream that stopped answering the gateway. Run returns once its
// shutdown budget is spent -- a deadline every step shares, not a sum of
// timeouts -- and every webhook was answered 202, whose alert is stored
// when Vigil starts again, or 503 with Retry-After (or, sent as the
// listener closed, refused): none accepted and lost.
func TestStopWithWebhooksInFlight(t *testing.T) {
	t.Parallel()
	dsn := testkit.Postgres(t)
	logins, err := db.Bootstrap(context.Background(), dsn, app.Services, nil)
	require.NoError(t, err)
	b := testkit.LockedNATS(t)
	_, admin := b.Conn(t, bus.UserAdmin)
	keys := testKeys(t)
	encryption := testKey()
	const budget = 4 * time.Second
	start := func(ctx context.Context, gatewayURL string) *app.App {
		conns := map[string]app.Conn{}
		for _, s := range app.Services {
			if s == "gateway" {
				nc, js, err := bus.Connect(ctx, gatewayURL, t.Name()+"-gateway", b.Credentials(s), testkit.Logger(t))
				require.NoError(t, err)
				t.Cleanup(nc.Close)
				conns[s] = app.Conn{NATS: nc, JetStream: js}
				continue
			}
			nc, js := b.Conn(t, s)
			conns[s] = app.Conn{NATS: nc, JetStream: js}
		}
		a, err := app.New(ctx, app.Options{
			Streams: testkit.TestStreams, Services: app.Services,
			GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminToken: adminToken,
			ShutdownTimeout: budget,
			Monitor:         monitor.Options{GroupBy: []string{"alertname", "namespace"}},
			Deploy:          deploy.Options{EncryptionKey: encryption},
		}, app.Deps{DatabaseURL: dsn, DatabaseLogins: logins, Bus: conns, Admin: admin, Logger: testkit.Logger(t), Keys: keys})
		require.NoError(t, err)
		return a
	}

	proxy := newStallProxy(t, strings.TrimPrefix(b.URL, "nats://"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := start(ctx, "nats://"+proxy.ln.Addr().String())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	url := "http://" + a.HTTPAddr() + "/api/v1/webhooks/alertmanager"
	client := &http.Client{Timeout: time.Minute}
	post := func(instance string) (int, string, error) {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(webhookOne(instance)))
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("Authorization", "Bearer "+adminToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After"), nil
	}
	var accepted []string
	for i := range 5 {
		instance := fmt.Sprint("before-", i)
		code, _, err := post(instance)
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, code)
		accepted = append(accepted, instance)
	}

	// JetStream stops answering the gateway; 16 webhooks come in.
	proxy.stalled.Store(true)
	type result struct {
		instance   string
		code       int
		retryAfter string
		err        error
	}
	results := make(chan result, 16)
	for i := range 16 {
		go func() {
			instance := fmt.Sprint("stalled-", i)
			code, retry, err := post(instance)
			results <- result{instance, code, retry, err}
		}()
	}
	// Their alerts are on their way to JetStream when the signal comes.
	require.Eventually(t, func() bool { return proxy.held.Load() > 0 }, 30*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(budget + 10*time.Second):
		t.Fatalf("Run did not return within its %s budget", budget)
	}

	unavailable := 0
	for range 16 {
		r := <-results
		switch {
		case r.err != nil:
			// Sent as the listener closed: refused, not accepted.
		case r.code == http.StatusAccepted:
			accepted = append(accepted, r.instance)
		case r.code == http.StatusServiceUnavailable:
			assert.NotEmpty(t, r.retryAfter, "503 without Retry-After")
			unavailable++
		default:
			t.Errorf("webhook %s answered %d: want 202 or 503", r.instance, r.code)
		}
	}
	assert.Positive(t, unavailable, "the webhooks JetStream did not acknowledge are answered 503")

	// Started again, straight to NATS: every accepted alert is stored.
	ctx2, cancel2 := context.WithCancel(context.Background())
	a2 := start(ctx2, b.URL)
	done2 := make(chan error, 1)
	go func() { done2 <- a2.Run(ctx2) }()
	t.Cleanup(func() { cancel2(); require.NoError(t, <-done2) })
	conn, err := pgx.Connect(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	stored := func() []string {
		rows, err := conn.Query(context.Background(), `SELECT labels->>'instance' FROM monitor.alerts WHERE labels->>'alertname' = 'Stop'`)
		require.NoError(t, err)
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return got
	}
	require.Eventually(t, func() bool {
		got := stored()
		return !slices.ContainsFunc(accepted, func(instance string) bool { return !slices.Contains(got, instance) })
	}, time.Minute, 100*time.Millisecond, "accepted: %v", accepted)
}
