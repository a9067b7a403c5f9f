package app_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// `vigil serve gateway` keeps accepting alerts while Postgres is down:
// a webhook with an ingest key it verified before is answered 202, its
// /readyz stays ready (a Service keeps sending it traffic), and monitor,
// in its own process, turns the alerts into incidents once Postgres is
// back.
func TestGatewayAcceptsAlertsWhilePostgresIsDown(t *testing.T) {
	pg := testkit.OwnPostgres(t)
	dsn := pg.DSN("postgres")
	b := testkit.LockedNATS(t)
	ncM, jsM := b.Conn(t, "monitor")
	ncG, jsG := b.Conn(t, "gateway")
	keys := testKeys(t)
	base := app.Options{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminToken: adminToken, Streams: testkit.TestStreams}
	monOpts := base
	monOpts.Services = []string{"monitor"}
	mon := runApp(t, monOpts, app.Deps{DatabaseURL: dsn, NATS: ncM, JetStream: jsM, Logger: testkit.Logger(t), Keys: keys.Verifier()})
	gwOpts := base
	gwOpts.Services = []string{"gateway"}
	gwOpts.MonitorAddr, gwOpts.DeployAddr = mon.GRPCAddr(), "127.0.0.1:1"
	gw := runApp(t, gwOpts, app.Deps{DatabaseURL: dsn, NATS: ncG, JetStream: jsG, Logger: testkit.Logger(t), Keys: keys})

	conn, err := grpc.NewClient(gw.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken)
	keyAPI := gatewayv1.NewKeyServiceClient(conn)
	// Alertmanager's key, of no team; and a team's, whose alerts' owners
	// are checked.
	made, err := keyAPI.CreateKey(ctx, &gatewayv1.CreateKeyRequest{Key: &gatewayv1.Key{
		Name: "alertmanager", Scopes: []gatewayv1.Scope{gatewayv1.Scope_SCOPE_INGEST},
	}})
	require.NoError(t, err)
	teams, err := keyAPI.CreateKey(ctx, &gatewayv1.CreateKeyRequest{Key: &gatewayv1.Key{
		Name: "payments-am", Team: "payments", Scopes: []gatewayv1.Scope{gatewayv1.Scope_SCOPE_INGEST},
	}})
	require.NoError(t, err)
	postAs := func(secret, namespace string, group int) int {
		body := fmt.Sprintf(`{"version":"4","status":"firing","receiver":"vigil","groupKey":"{}","alerts":[`+
			`{"status":"firing","labels":{"alertname":"Outage%d","namespace":"%s","instance":"a"},"startsAt":"%s"}]}`,
			group, namespace, time.Now().UTC().Format(time.RFC3339))
		req, err := http.NewRequest(http.MethodPost, "http://"+gw.HTTPAddr()+"/api/v1/webhooks/alertmanager", bytes.NewBufferString(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	post := func(group int) int { return postAs(made.GetSecret(), "shop", group) }
	ready := func(a *app.App) int {
		resp, err := http.Get("http://" + a.HTTPAddr() + "/readyz")
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusAccepted, post(0), "the key is verified once, with Postgres up")
	require.Equal(t, http.StatusAccepted, postAs(teams.GetSecret(), "checkout", 0), "the team's key, and who owns checkout, are checked once")

	pg.Stop()
	const groups = 5
	for g := 1; g < groups; g++ {
		require.Equal(t, http.StatusAccepted, post(g), "accepted into JetStream with Postgres down")
	}
	require.Equal(t, http.StatusAccepted, postAs(teams.GetSecret(), "checkout", 1), "owners as they were before the outage")
	require.Equal(t, http.StatusServiceUnavailable, postAs(teams.GetSecret(), "unseen", 1), "a namespace whose owner is not known: retry, not guessed")
	assert.Equal(t, http.StatusOK, ready(gw), "the gateway stays ready: it can accept")
	assert.Equal(t, http.StatusServiceUnavailable, ready(mon), "monitor, which cannot work, is not ready")
	// Longer than the credentials cache (5 s): the key stands on what was
	// verified before the outage.
	time.Sleep(6 * time.Second)
	require.Equal(t, http.StatusAccepted, post(groups), "still accepted after the cache's TTL")
	keyed := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+made.GetSecret())
	_, err = gatewayv1.NewAlertServiceClient(conn).IngestAlerts(keyed, &gatewayv1.IngestAlertsRequest{Alerts: []*typesv1.Alert{
		{Labels: map[string]string{"alertname": "OutageGRPC", "namespace": "shop"}, StartsAt: timestamppb.Now()},
	}})
	require.NoError(t, err, "gRPC ingest too")
	wrong := func() int {
		req, err := http.NewRequest(http.MethodPost, "http://"+gw.HTTPAddr()+"/api/v1/webhooks/alertmanager", bytes.NewBufferString(`{}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer vgk_never-issued")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusServiceUnavailable, wrong(), "a key never verified cannot be checked: retry, not accepted")
	pg.Start()

	incidents := monitorv1.NewIncidentServiceClient(conn)
	require.Eventually(t, func() bool {
		resp, err := incidents.ListIncidents(ctx, &monitorv1.ListIncidentsRequest{})
		return err == nil && len(resp.GetIncidents()) == groups+1+2+1
	}, 2*time.Minute, 200*time.Millisecond, "every alert accepted during the outage became an incident")
	resp, err := incidents.ListIncidents(ctx, &monitorv1.ListIncidentsRequest{})
	require.NoError(t, err)
	for _, inc := range resp.GetIncidents() {
		assert.Equal(t, int32(1), inc.GetAlertCount(), inc.GetTitle())
	}
	require.Eventually(t, func() bool { return ready(mon) == http.StatusOK }, time.Minute, 100*time.Millisecond)
}
