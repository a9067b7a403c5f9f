package app_test

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/pkg/bus"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/deploy"
)

func runApp(t *testing.T, opts app.Options, deps app.Deps) *app.App {
	t.Helper()
	if opts.Streams == (bus.StreamOptions{}) {
		opts.Streams = testkit.TestStreams
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, opts, deps)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return a
}

// `vigil serve gateway` and `vigil serve monitor` as two processes: alerts
// ingested over gRPC at the gateway become incidents in monitor, and the
// gateway answers incident calls by forwarding them, as the caller.
func TestServeGatewayAndMonitorApart(t *testing.T) {
	dsn := testkit.Postgres(t)
	// Each process logs in to the locked bus as its service's own user.
	b := testkit.LockedNATS(t)
	ncM, jsM := b.Conn(t, "monitor")
	ncG, jsG := b.Conn(t, "gateway")
	keys := testKeys(t)
	base := app.Options{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminToken: adminToken, Streams: testkit.TestStreams}

	monOpts := base
	monOpts.Services = []string{"monitor"}
	mon := runApp(t, monOpts, app.Deps{DatabaseURL: dsn, NATS: ncM, JetStream: jsM, Logger: testkit.Logger(t), Keys: keys.Verifier()})

	ncD, jsD := b.Conn(t, "deploy")
	depOpts := base
	depOpts.Services = []string{"deploy"}
	depOpts.Deploy = deploy.Options{EncryptionKey: testKey()}
	dep := runApp(t, depOpts, app.Deps{DatabaseURL: dsn, NATS: ncD, JetStream: jsD, Logger: testkit.Logger(t), Keys: keys.Verifier()})

	gwOpts := base
	gwOpts.Services = []string{"gateway"}
	gwOpts.MonitorAddr = mon.GRPCAddr()
	gwOpts.DeployAddr = dep.GRPCAddr()
	gw := runApp(t, gwOpts, app.Deps{DatabaseURL: dsn, NATS: ncG, JetStream: jsG, Logger: testkit.Logger(t), Keys: keys})

	conn, err := grpc.NewClient(gw.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken)

	alerts := gatewayv1.NewAlertServiceClient(conn)
	_, err = alerts.IngestAlerts(ctx, &gatewayv1.IngestAlertsRequest{Alerts: []*typesv1.Alert{
		{Labels: map[string]string{"alertname": "PodCrashLooping", "namespace": "shop"}, StartsAt: timestamppb.Now()},
	}})
	require.NoError(t, err)

	incidents := monitorv1.NewIncidentServiceClient(conn)
	require.Eventually(t, func() bool {
		resp, err := incidents.ListIncidents(ctx, &monitorv1.ListIncidentsRequest{})
		require.NoError(t, err)
		return len(resp.GetIncidents()) == 1 && resp.GetIncidents()[0].GetTitle() == "PodCrashLooping in shop"
	}, 30*time.Second, 100*time.Millisecond)

	// Without credentials the gateway refuses; so does monitor itself.
	_, err = incidents.ListIncidents(context.Background(), &monitorv1.ListIncidentsRequest{})
	assert.Equal(t, codes.Unauthenticated, status.Code(err))
	monConn, err := grpc.NewClient(mon.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = monConn.Close() })
	_, err = monitorv1.NewIncidentServiceClient(monConn).ListIncidents(context.Background(), &monitorv1.ListIncidentsRequest{})
	assert.Equal(t, codes.Unauthenticated, status.Code(err))

	// Bad input: InvalidArgument naming each field.
	_, err = alerts.IngestAlerts(ctx, &gatewayv1.IngestAlertsRequest{Alerts: []*typesv1.Alert{{}}})
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code())
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	assert.ElementsMatch(t, []string{"alerts[0].labels", "alerts[0].starts_at"}, fields)

	// An unknown incident is NotFound through the forwarder, not Internal.
	_, err = incidents.GetIncident(ctx, &monitorv1.GetIncidentRequest{Id: "01a20236-f568-7af1-9546-d3f52f62c45a"})
	assert.Equal(t, codes.NotFound, status.Code(err))

	// The deploy API through the gateway, streams included: register the
	// test control plane, onboard an app, follow its deployment.
	k := testkit.SharedKube(t)
	kubeconfig, err := os.ReadFile(k.Kubeconfig)
	require.NoError(t, err)
	_, err = deployv1.NewClusterServiceClient(conn).AddCluster(ctx, &deployv1.AddClusterRequest{Name: "main", Kubeconfig: kubeconfig})
	require.NoError(t, err)
	apps := deployv1.NewAppServiceClient(conn)
	_, err = apps.CreateApp(ctx, &deployv1.CreateAppRequest{App: &deployv1.App{Name: "apart", Framework: "go", Plan: "basic"}})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "no image: refused, through the forwarder")
	_, err = apps.CreateApp(ctx, &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: "apart", Framework: "go", Plan: "basic", Image: "registry.example.com/apart:1",
	}})
	require.NoError(t, err)
	stream, err := apps.DeployApp(ctx, &deployv1.DeployAppRequest{Name: "apart"})
	require.NoError(t, err)
	var last *deployv1.Deployment
	updates := 0
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		last, updates = m.GetDeployment(), updates+1
	}
	require.NotNil(t, last)
	assert.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, last.GetStatus(), last.GetReason())
	assert.Greater(t, updates, 1, "the steps streamed as they happened")
}
