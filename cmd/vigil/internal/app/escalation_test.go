package app_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/monitor"
)

// An alert through the gateway opens a P1 incident; with the escalation
// file's one-second response target, monitor asks whoever is on call in
// payments' schedule (incident.escalated on the bus), and an
// acknowledgement through the gateway stops the escalation.
func TestEscalationEndToEnd(t *testing.T) {
	file := filepath.Join(t.TempDir(), "escalation.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`
response_targets: {P0: 1s, P1: 1s, P2: 1h}
schedules:
  - name: payments
    team: payments
    zone: Asia/Taipei
    layers: [{participants: [olga], rotation_days: 7, handoff: "09:00", start: "2026-01-05"}]
policies:
  - name: everyone
    steps:
      - teams: [payments]
        channels: [ops]
      - delay: 30m
        users: [mei]
`), 0o600))
	conns, admin := lockedBus(t)
	a := runApp(t, app.Options{
		Services: []string{"monitor", "gateway"}, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminToken: adminToken,
		DeployAddr: "127.0.0.1:1",
		Monitor:    monitor.Options{GroupBy: []string{"alertname", "namespace"}, EscalationFile: file},
	}, app.Deps{DatabaseURL: testkit.Postgres(t), Bus: conns, Admin: admin, Logger: testkit.Logger(t), Keys: testKeys(t)})
	conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken)

	_, err = gatewayv1.NewAlertServiceClient(conn).IngestAlerts(ctx, &gatewayv1.IngestAlertsRequest{Alerts: []*typesv1.Alert{{
		Labels: map[string]string{"alertname": "CheckoutDown", "namespace": "checkout", "severity": "critical"}, StartsAt: timestamppb.Now(),
	}}})
	require.NoError(t, err)
	incidents := monitorv1.NewIncidentServiceClient(conn)
	var inc *monitorv1.GetIncidentResponse
	require.Eventually(t, func() bool {
		r, err := incidents.ListIncidents(ctx, &monitorv1.ListIncidentsRequest{})
		require.NoError(t, err)
		if len(r.GetIncidents()) != 1 {
			return false
		}
		inc, err = incidents.GetIncident(ctx, &monitorv1.GetIncidentRequest{Id: r.GetIncidents()[0].GetId()})
		require.NoError(t, err)
		return inc.GetEscalation().GetLevel() == 1
	}, time.Minute, 100*time.Millisecond, "the incident escalated once")
	require.Equal(t, typesv1.Priority_PRIORITY_P1, inc.GetIncident().GetPriority())
	require.Equal(t, "everyone", inc.GetEscalation().GetPolicy())

	var escalated *eventsv1.IncidentEscalated
	s, err := admin.Stream(ctx, "INCIDENTS")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		m, err := s.GetLastMsgForSubject(ctx, bus.SubjectIncidentEscalated)
		if err != nil {
			return false
		}
		evs, err := bus.Decode(m.Subject, m.Data)
		require.NoError(t, err)
		escalated = evs[0].(*eventsv1.IncidentEscalated)
		return true
	}, 30*time.Second, 100*time.Millisecond, "incident.escalated relayed")
	require.Equal(t, inc.GetIncident().GetId(), escalated.GetIncident().GetId())
	require.Equal(t, []string{"olga"}, escalated.GetUsers())
	require.Equal(t, []string{"ops"}, escalated.GetChannels())
	require.Equal(t, int32(1), escalated.GetLevel())

	id := inc.GetIncident().GetId()
	_, err = incidents.AcknowledgeIncident(ctx, &monitorv1.AcknowledgeIncidentRequest{Id: id})
	require.NoError(t, err)
	inc, err = incidents.GetIncident(ctx, &monitorv1.GetIncidentRequest{Id: id})
	require.NoError(t, err)
	require.Equal(t, "acknowledged", inc.GetEscalation().GetStopped())
	require.Nil(t, inc.GetEscalation().GetNextStepAt(), "no step after the acknowledgement")

	// The file defines the policy: the API does not change it.
	_, err = monitorv1.NewEscalationServiceClient(conn).DeletePolicy(ctx, &monitorv1.DeletePolicyRequest{Name: "everyone"})
	require.Equal(t, codes.FailedPrecondition, status.Code(err))
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(bus.SubjectIncidentEscalated))
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.State.Subjects[bus.SubjectIncidentEscalated], "one step, published once")
}
