package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// A call the gateway forwards to monitor in another process continues the
// caller's trace: monitor's server span is a child of the gateway's
// outgoing call, in the same trace. (Not parallel: it sets the global
// tracer provider, as telemetry.SetupTracing does.)
func TestTracesContinueAcrossServices(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTracerProvider(prevTP); otel.SetTextMapPropagator(prevProp) })

	dsn := testkit.Postgres(t)
	conns, admin := lockedBus(t)
	keys := testKeys(t)
	base := app.Options{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminToken: adminToken, Streams: testkit.TestStreams}
	monOpts := base
	monOpts.Services = []string{"monitor"}
	mon := runApp(t, monOpts, app.Deps{DatabaseURL: dsn, NATS: conns["monitor"].NATS, JetStream: conns["monitor"].JetStream, Admin: admin, Logger: testkit.Logger(t), Keys: keys.Verifier()})
	gwOpts := base
	gwOpts.Services = []string{"gateway"}
	gwOpts.MonitorAddr, gwOpts.DeployAddr = mon.GRPCAddr(), "127.0.0.1:1"
	gw := runApp(t, gwOpts, app.Deps{DatabaseURL: dsn, NATS: conns["gateway"].NATS, JetStream: conns["gateway"].JetStream, Logger: testkit.Logger(t), Keys: keys})

	conn, err := grpc.NewClient(gw.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ctx, span := tp.Tracer("test").Start(context.Background(), "operator")
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+adminToken)
	_, err = monitorv1.NewIncidentServiceClient(conn).ListIncidents(ctx, &monitorv1.ListIncidentsRequest{})
	require.NoError(t, err)
	span.End()

	const method = "vigil.monitor.v1.IncidentService/ListIncidents"
	var servers, clients []sdktrace.ReadOnlySpan
	// Server spans end once their answer is written, a moment after the
	// client has it.
	require.Eventually(t, func() bool {
		servers, clients = nil, nil
		for _, s := range rec.Ended() {
			if s.Name() != method || s.SpanContext().TraceID() != span.SpanContext().TraceID() {
				continue
			}
			switch s.SpanKind() {
			case trace.SpanKindServer:
				servers = append(servers, s)
			case trace.SpanKindClient:
				clients = append(clients, s)
			}
		}
		// The test's call and the gateway's call to monitor; a server
		// span in the gateway and one in monitor: one trace.
		return len(servers) == 2 && len(clients) == 2
	}, 10*time.Second, 20*time.Millisecond, "spans of the call in the caller's trace")
	var linked int
	for _, s := range servers {
		for _, c := range clients {
			if s.Parent().SpanID() == c.SpanContext().SpanID() {
				linked++
			}
		}
	}
	require.Equal(t, 2, linked, "each server span is the child of the call that reached it: the test's, then the gateway's")
}
