package app_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/deploy"
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
	// Deploy maps the teams' namespaces: whose an alert is comes from
	// Vigil's projection of them, never from the sender's labels.
	ncD, jsD := b.Conn(t, "deploy")
	depOpts := base
	depOpts.Services = []string{"deploy"}
	depOpts.Deploy = deploy.Options{EncryptionKey: testKey()}
	dep := runApp(t, depOpts, app.Deps{DatabaseURL: dsn, NATS: ncD, JetStream: jsD, Logger: testkit.Logger(t), Keys: keys.Verifier()})
	gwOpts := base
	gwOpts.Services = []string{"gateway"}
	gwOpts.MonitorAddr, gwOpts.DeployAddr = mon.GRPCAddr(), dep.GRPCAddr()
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
	search, err := keyAPI.CreateKey(ctx, &gatewayv1.CreateKeyRequest{Key: &gatewayv1.Key{
		Name: "search-am", Team: "search", Scopes: []gatewayv1.Scope{gatewayv1.Scope_SCOPE_INGEST},
	}})
	require.NoError(t, err)
	clusters := deployv1.NewClusterServiceClient(conn)
	for ns, team := range map[string]string{"ledger": "payments", "search-prod": "search"} {
		_, err := clusters.MapNamespace(ctx, &deployv1.MapNamespaceRequest{Mapping: &deployv1.NamespaceMapping{Namespace: ns, Team: team}})
		require.NoError(t, err)
	}
	// As kube-state-metrics sends them: a namespace and a workload, no
	// app label.
	postAs := func(secret, namespace string, group int) int {
		body := fmt.Sprintf(`{"version":"4","status":"firing","receiver":"vigil","groupKey":"{}","alerts":[`+
			`{"status":"firing","labels":{"alertname":"Outage%d","namespace":"%s","deployment":"api","pod":"api-7d9f4-x2x","instance":"a"},"startsAt":"%s"}]}`,
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
	// Two teams: each may send about its own namespace, not the other's.
	// Until the gateway has the mappings the ledger is no one's, and the
	// probe (Outage12) is accepted: its incident is left out of the count.
	require.Eventually(t, func() bool {
		return postAs(search.GetSecret(), "ledger", 12) == http.StatusForbidden
	}, time.Minute, 200*time.Millisecond, "search may not send about payments' ledger")
	require.Equal(t, http.StatusAccepted, postAs(teams.GetSecret(), "ledger", 10), "payments sends about its own ledger")
	require.Equal(t, http.StatusAccepted, postAs(search.GetSecret(), "search-prod", 11), "search sends about its own namespace")

	pg.Stop()
	const groups = 5
	for g := 1; g < groups; g++ {
		require.Equal(t, http.StatusAccepted, post(g), "accepted into JetStream with Postgres down")
	}
	require.Equal(t, http.StatusAccepted, postAs(teams.GetSecret(), "checkout", 1), "owners as they were before the outage")
	require.Equal(t, http.StatusServiceUnavailable, postAs(teams.GetSecret(), "unseen", 1), "a namespace whose owner is not known: retry, not guessed")
	require.Equal(t, http.StatusAccepted, postAs(teams.GetSecret(), "ledger", 13), "payments' own namespace, as Vigil knew it before the outage")
	require.Equal(t, http.StatusForbidden, postAs(search.GetSecret(), "ledger", 14), "still not search's: the outage opens nothing")
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
		return err == nil && len(withoutProbe(resp.GetIncidents())) == groups+1+2+1+3
	}, 2*time.Minute, 200*time.Millisecond, "every alert accepted during the outage became an incident")
	resp, err := incidents.ListIncidents(ctx, &monitorv1.ListIncidentsRequest{})
	require.NoError(t, err)
	for _, inc := range resp.GetIncidents() {
		assert.Equal(t, int32(1), inc.GetAlertCount(), inc.GetTitle())
	}
	require.Eventually(t, func() bool { return ready(mon) == http.StatusOK }, time.Minute, 100*time.Millisecond)
}

// withoutProbe leaves out the incident of the probe that waited for the
// gateway to know the teams' namespaces, if one was accepted before.
func withoutProbe(incs []*typesv1.Incident) []*typesv1.Incident {
	var out []*typesv1.Incident
	for _, inc := range incs {
		if !strings.Contains(inc.GetTitle(), "Outage12") {
			out = append(out, inc)
		}
	}
	return out
}
