package grpcapi_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/vigil-ops/vigil/pkg/auth"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	"github.com/vigil-ops/vigil/services/gateway/internal/grpcapi"
)

// silenceMonitor is monitor's SilenceService as the forwarder sees it: it
// records who the call was made as and answers NotFound to Get.
type silenceMonitor struct {
	monitorv1.UnimplementedSilenceServiceServer
	callers []string
}

func (m *silenceMonitor) seen(ctx context.Context) {
	p, _ := auth.FromContext(ctx)
	m.callers = append(m.callers, p.String()+" "+strings.Join(p.Teams, ","))
}

func (m *silenceMonitor) CreateSilence(ctx context.Context, r *monitorv1.CreateSilenceRequest) (*monitorv1.CreateSilenceResponse, error) {
	m.seen(ctx)
	return &monitorv1.CreateSilenceResponse{Silence: &monitorv1.Silence{Id: "s1", Matchers: r.GetMatchers()}}, nil
}

func (m *silenceMonitor) GetSilence(ctx context.Context, _ *monitorv1.GetSilenceRequest) (*monitorv1.GetSilenceResponse, error) {
	m.seen(ctx)
	return nil, status.Error(codes.NotFound, "silence not found")
}

func (m *silenceMonitor) ListSilences(ctx context.Context, _ *monitorv1.ListSilencesRequest) (*monitorv1.ListSilencesResponse, error) {
	m.seen(ctx)
	return &monitorv1.ListSilencesResponse{NextPageToken: "next"}, nil
}

func (m *silenceMonitor) ExpireSilence(ctx context.Context, r *monitorv1.ExpireSilenceRequest) (*monitorv1.ExpireSilenceResponse, error) {
	m.seen(ctx)
	return &monitorv1.ExpireSilenceResponse{Silence: &monitorv1.Silence{Id: r.GetId()}}, nil
}

// TestSilenceForwarder checks every RPC reaches monitor as the original
// caller, asserted by the gateway's signature (never with the caller's own
// token), and monitor's status comes back as it was.
func TestSilenceForwarder(t *testing.T) {
	t.Parallel()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	keys := auth.NewKeySet(priv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	mon := &silenceMonitor{}
	guard := &auth.Guard{Authn: auth.ServiceAuthenticator{Keys: keys.Verifier(), Service: "monitor"}}
	srv := grpc.NewServer(grpc.UnaryInterceptor(guard.Unary()))
	monitorv1.RegisterSilenceServiceServer(srv, mon)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.ServiceCredentials{Keys: keys, Service: "monitor"}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })

	f := grpcapi.NewSilenceForwarder(conn)
	// What the gateway's own server hands the forwarder: the caller's
	// metadata, and the principal its guard authenticated.
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer caller-token"))
	ctx = auth.WithPrincipal(ctx, auth.Principal{Kind: auth.KindUser, Name: "alice", Role: auth.RoleOperator, Teams: []string{"payments"}})

	created, err := f.CreateSilence(ctx, &monitorv1.CreateSilenceRequest{Matchers: []string{`a="b"`}})
	require.NoError(t, err)
	require.Equal(t, []string{`a="b"`}, created.GetSilence().GetMatchers())
	list, err := f.ListSilences(ctx, &monitorv1.ListSilencesRequest{})
	require.NoError(t, err)
	require.Equal(t, "next", list.GetNextPageToken())
	expired, err := f.ExpireSilence(ctx, &monitorv1.ExpireSilenceRequest{Id: "s1"})
	require.NoError(t, err)
	require.Equal(t, "s1", expired.GetSilence().GetId())
	_, err = f.GetSilence(ctx, &monitorv1.GetSilenceRequest{Id: "s2"})
	require.Equal(t, codes.NotFound, status.Code(err))

	require.Equal(t, []string{"user:alice payments", "user:alice payments", "user:alice payments", "user:alice payments"}, mon.callers)

	// An assertion for another service is refused there.
	other, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.ServiceCredentials{Keys: keys, Service: "deploy"}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close() })
	_, err = grpcapi.NewSilenceForwarder(other).ListSilences(ctx, &monitorv1.ListSilencesRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
}
