package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/testkit/fakewebhook"
	"github.com/vigil-ops/vigil/services/deploy"
	"github.com/vigil-ops/vigil/services/notify"
)

// `vigil serve notify` in its own process serves ChannelService behind
// the gateway of another (VIGIL_NOTIFY_ADDR), as the caller: the channel
// is tested, stored and named as the admin made it.
func TestServeNotifyApartServesChannels(t *testing.T) {
	dsn := testkit.Postgres(t)
	b := testkit.LockedNATS(t)
	keys := testKeys(t)
	base := app.Options{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminToken: adminToken, Streams: testkit.TestStreams}

	ncN, jsN := b.Conn(t, "notify")
	nOpts := base
	nOpts.Services = []string{"notify"}
	nOpts.Notify = notify.Options{EncryptionKey: testKey()}
	ntf := runApp(t, nOpts, app.Deps{DatabaseURL: dsn, NATS: ncN, JetStream: jsN, Logger: testkit.Logger(t), Keys: keys.Verifier()})

	ncM, jsM := b.Conn(t, "monitor")
	ncD, jsD := b.Conn(t, "deploy")
	ncG, jsG := b.Conn(t, "gateway")
	gwOpts := base
	gwOpts.Services = []string{"monitor", "deploy", "gateway"}
	gwOpts.Deploy = deploy.Options{EncryptionKey: testKey()}
	gwOpts.NotifyAddr = ntf.GRPCAddr()
	gw := runApp(t, gwOpts, app.Deps{
		DatabaseURL: dsn, Logger: testkit.Logger(t), Keys: keys,
		Bus: map[string]app.Conn{"monitor": {NATS: ncM, JetStream: jsM}, "deploy": {NATS: ncD, JetStream: jsD}, "gateway": {NATS: ncG, JetStream: jsG}},
	})

	conn, err := grpc.NewClient(gw.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken)
	channels := notifyv1.NewChannelServiceClient(conn)

	sink := fakewebhook.New(t, "serve-apart-secret")
	created, err := channels.CreateChannel(ctx, &notifyv1.CreateChannelRequest{
		Channel: &notifyv1.Channel{Name: "tickets", Kind: "webhook", Target: sink.URL}, Credential: "serve-apart-secret",
	})
	require.NoError(t, err)
	assert.Equal(t, "bootstrap:admin", created.GetChannel().GetCreatedBy())
	assert.Contains(t, sink.WaitFor(t, 1, 10*time.Second)[0].Body.Text, "tickets")

	list, err := channels.ListChannels(ctx, &notifyv1.ListChannelsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetChannels(), 1)
	assert.Equal(t, "tickets", list.GetChannels()[0].GetName())
	assert.NotContains(t, list.String(), "serve-apart-secret")

	// Over REST: a change, a test, and bad input answered 400 with the
	// fields to fix, nothing stored.
	rest := func(verb, path, body string) (int, map[string]any) {
		req, err := http.NewRequest(verb, "http://"+gw.HTTPAddr()+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		return resp.StatusCode, out
	}
	code, out := rest(http.MethodPatch, "/api/v1/channels/tickets", `{"channel":{"language":"zh-TW","time_zone":"Asia/Taipei"},"update_mask":"language,timeZone","no_test":true}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	assert.Equal(t, "zh-TW", out["channel"].(map[string]any)["language"])
	code, out = rest(http.MethodPost, "/api/v1/channels/tickets:test", `{}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	assert.Equal(t, true, out["delivered"])
	assert.Contains(t, sink.WaitFor(t, 2, 10*time.Second)[1].Body.Text, "測試訊息")
	code, out = rest(http.MethodPost, "/api/v1/channels", `{"channel":{"name":"Bad Name","kind":"pager","time_zone":"Mars/Base"}}`)
	require.Equal(t, http.StatusBadRequest, code, "%v", out)
	var fields []string
	for _, e := range out["errors"].([]any) {
		fields = append(fields, e.(map[string]any)["field"].(string))
	}
	assert.ElementsMatch(t, []string{"channel.name", "channel.kind", "channel.time_zone", "channel.target"}, fields)
	list, err = channels.ListChannels(ctx, &notifyv1.ListChannelsRequest{})
	require.NoError(t, err)
	assert.Len(t, list.GetChannels(), 1)
}
