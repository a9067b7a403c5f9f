package app_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

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
	"github.com/vigil-ops/vigil/pkg/testkit/fakesmtp"
	"github.com/vigil-ops/vigil/services/gateway"
	"github.com/vigil-ops/vigil/services/monitor"
	"github.com/vigil-ops/vigil/services/notify"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/channel/email"
)

// An alert opens an incident; notify emails each address its own copy
// with links; olga's Acknowledge link, POSTed as her mail client's page
// would, acknowledges the incident as olga, and mei's copy is not olga's.
func TestEmailLinkAcknowledges(t *testing.T) {
	smtp := fakesmtp.Start(t, fakesmtp.Options{})
	httpAddr := freeAddr(t)
	key := testKey()
	conns, admin := lockedBus(t)
	a := runApp(t, app.Options{
		Services: []string{"monitor", "gateway", "notify"}, GRPCAddr: "127.0.0.1:0", HTTPAddr: httpAddr, AdminToken: adminToken,
		DeployAddr: "127.0.0.1:1",
		Monitor:    monitor.Options{GroupBy: []string{"alertname", "namespace"}},
		Gateway:    gateway.Options{DefaultTeam: "payments", EncryptionKey: key},
		Notify: notify.Options{
			EncryptionKey: key, PublicURL: "http://" + httpAddr,
			Channels: []channel.Config{email.Options{
				Host: smtp.Host, Port: smtp.Port, TLS: email.TLSStartTLS, CAFile: smtp.CAFile(t),
				Username: fakesmtp.User, Password: fakesmtp.Password,
				From: "Vigil <vigil@ops.example.com>", To: []string{"olga@example.com", "mei@example.com"},
			}},
		},
	}, app.Deps{DatabaseURL: testkit.Postgres(t), Bus: conns, Admin: admin, Logger: testkit.Logger(t), Keys: testKeys(t)})
	conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken)

	users := gatewayv1.NewUserServiceClient(conn)
	_, err = users.CreateUser(ctx, &gatewayv1.CreateUserRequest{
		User:     &gatewayv1.User{Name: "olga", Email: "olga@example.com", Role: gatewayv1.Role_ROLE_OPERATOR, Teams: []string{"payments"}},
		Password: "correct horse olga battery",
	})
	require.NoError(t, err)
	_, err = gatewayv1.NewAlertServiceClient(conn).IngestAlerts(ctx, &gatewayv1.IngestAlertsRequest{Alerts: []*typesv1.Alert{{
		Labels: map[string]string{"alertname": "CheckoutDown", "namespace": "checkout", "severity": "critical"}, StartsAt: timestamppb.Now(),
	}}})
	require.NoError(t, err)

	msgs := smtp.WaitForMessages(t, 2, time.Minute)
	byTo := map[string]fakesmtp.Message{}
	for _, m := range msgs[:2] {
		require.Len(t, m.RcptTo, 1)
		byTo[m.RcptTo[0]] = m
	}
	link := regexp.MustCompile(`(?m)^Acknowledge: (http://\S+)$`)
	olga := link.FindStringSubmatch(byTo["olga@example.com"].Text)
	require.NotNil(t, olga, byTo["olga@example.com"].Text)
	mei := link.FindStringSubmatch(byTo["mei@example.com"].Text)
	require.NotNil(t, mei, byTo["mei@example.com"].Text)
	require.True(t, strings.HasPrefix(olga[1], "http://"+httpAddr+"/api/v1/actions/"), olga[1])

	post := func(u string) int {
		res, err := http.PostForm(u, url.Values{"confirm": {"acknowledge"}}) //nolint:gosec,noctx // the test's own server
		require.NoError(t, err)
		require.NoError(t, res.Body.Close())
		return res.StatusCode
	}
	incidents := monitorv1.NewIncidentServiceClient(conn)
	list, err := incidents.ListIncidents(ctx, &monitorv1.ListIncidentsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetIncidents(), 1)
	id := list.GetIncidents()[0].GetId()

	require.Equal(t, http.StatusForbidden, post(mei[1]), "mei's address is no user's")
	inc, err := incidents.GetIncident(ctx, &monitorv1.GetIncidentRequest{Id: id})
	require.NoError(t, err)
	require.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_OPEN, inc.GetIncident().GetStatus())

	require.Equal(t, http.StatusOK, post(olga[1]))
	inc, err = incidents.GetIncident(ctx, &monitorv1.GetIncidentRequest{Id: id})
	require.NoError(t, err)
	require.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_ACKNOWLEDGED, inc.GetIncident().GetStatus())
	require.Equal(t, "olga", inc.GetIncident().GetAcknowledgedBy())
}
