package main

import (
	"context"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// fakeSources records what the CLI asks of SourceService.
type fakeSources struct {
	gatewayv1.UnimplementedSourceServiceServer
	fakeChannels // its record and last
}

func (f *fakeSources) CreateSource(_ context.Context, r *gatewayv1.CreateSourceRequest) (*gatewayv1.CreateSourceResponse, error) {
	f.record(r)
	s := proto.Clone(r.GetSource()).(*gatewayv1.Source)
	s.HasSecret, s.Path = r.GetSecret() != "", "/api/v1/webhooks/sources/"+s.GetName()
	return &gatewayv1.CreateSourceResponse{Source: s}, nil
}

func (f *fakeSources) UpdateSource(_ context.Context, r *gatewayv1.UpdateSourceRequest) (*gatewayv1.UpdateSourceResponse, error) {
	f.record(r)
	return &gatewayv1.UpdateSourceResponse{Source: r.GetSource()}, nil
}

func (f *fakeSources) TestSource(_ context.Context, r *gatewayv1.TestSourceRequest) (*gatewayv1.TestSourceResponse, error) {
	f.record(r)
	return &gatewayv1.TestSourceResponse{Alerts: []*typesv1.Alert{{
		Labels: map[string]string{"alertname": "MonitorDown", "monitor": "shop API"}, Fingerprint: "0123456789abcdef",
		Status: typesv1.AlertStatus_ALERT_STATUS_RESOLVED, StartsAt: timestamppb.Now(),
	}}}, nil
}

// `vigil sources`: the mapping file (the shipped YAML) reaches the API
// as a mapping, the secret comes from stdin or the environment and is
// never printed, update sends the mask of the flags given.
func TestSourcesCommands(t *testing.T) {
	t.Setenv("VIGIL_TOKEN", "test-token")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	fake := &fakeSources{}
	gatewayv1.RegisterSourceServiceServer(srv, fake)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	addr := lis.Addr().String()
	kuma := "../../docs/sources/examples/uptime-kuma/mapping.yaml"

	out, err := runAccess(t, sourcesCommand, addr, "kuma-secret-0123456789abcdef\n",
		"create", "kuma", "--team", "payments", "--mapping", kuma, "--hmac-secret-from-stdin")
	require.NoError(t, err)
	create := fake.last().(*gatewayv1.CreateSourceRequest)
	require.Equal(t, "kuma-secret-0123456789abcdef", create.GetSecret())
	src := create.GetSource()
	require.Equal(t, []string{"kuma", "generic", "payments", "hmac"}, []string{src.GetName(), src.GetType(), src.GetTeam(), src.GetAuth()})
	m := src.GetGeneric().GetMapping()
	require.Equal(t, `body.heartbeat == null ? [] : [body]`, m.GetAlerts())
	require.Equal(t, "item.monitor.name", m.GetLabels()["monitor"])
	require.Contains(t, m.GetStartsAt(), "timestamp(")
	require.Contains(t, out.stdout, "set (never shown)")
	require.Contains(t, out.stdout, "POST /api/v1/webhooks/sources/kuma")
	require.NotContains(t, out.stdout, "kuma-secret")

	_, err = runAccess(t, sourcesCommand, addr, "", "create", "dog", "--mapping", "../../docs/sources/examples/datadog/mapping.yaml")
	require.NoError(t, err)
	require.Equal(t, "key", fake.last().(*gatewayv1.CreateSourceRequest).GetSource().GetAuth(), "no secret: a key source")
	_, err = runAccess(t, sourcesCommand, addr, "", "create", "x")
	require.ErrorContains(t, err, "--mapping")

	t.Setenv("ROTATED", "kuma-rotated-secret-0123456789")
	_, err = runAccess(t, sourcesCommand, addr, "", "update", "kuma", "--team", "web", "--mapping", kuma, "--hmac-secret-from-env", "ROTATED")
	require.NoError(t, err)
	update := fake.last().(*gatewayv1.UpdateSourceRequest)
	require.Equal(t, "kuma-rotated-secret-0123456789", update.GetSecret())
	require.Equal(t, []string{"generic", "team"}, update.GetUpdateMask().GetPaths())
	_, err = runAccess(t, sourcesCommand, addr, "", "update", "kuma")
	require.ErrorContains(t, err, "nothing to change")

	out, err = runAccess(t, sourcesCommand, addr, "", "test", "kuma", "--body", "../../docs/sources/examples/uptime-kuma/up.json", "--header", "X-Event=up")
	require.NoError(t, err)
	tested := fake.last().(*gatewayv1.TestSourceRequest)
	require.Equal(t, "kuma", tested.GetName())
	require.Contains(t, tested.GetBody(), `"status": 1`)
	require.Equal(t, map[string]string{"X-Event": "up"}, tested.GetHeaders())
	require.Contains(t, out.stdout, "Alert 0: resolved, fingerprint 0123456789abcdef")
	require.Contains(t, out.stdout, `label monitor="shop API"`)
}
