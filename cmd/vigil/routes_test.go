package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
)

// fakeRoutes is RouteService as the CLI sees it: it records each request
// and answers with what the test set.
type fakeRoutes struct {
	notifyv1.UnimplementedRouteServiceServer

	mu      sync.Mutex
	got     []proto.Message
	current *notifyv1.RoutingVersion
	test    *notifyv1.TestRoutesResponse
}

func (f *fakeRoutes) record(m proto.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, m)
}

func (f *fakeRoutes) take() []proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	got := f.got
	f.got = nil
	return got
}

func (f *fakeRoutes) GetRoutes(_ context.Context, r *notifyv1.GetRoutesRequest) (*notifyv1.GetRoutesResponse, error) {
	f.record(r)
	return &notifyv1.GetRoutesResponse{Current: f.current}, nil
}

func (f *fakeRoutes) ApplyRoutes(_ context.Context, r *notifyv1.ApplyRoutesRequest) (*notifyv1.ApplyRoutesResponse, error) {
	f.record(r)
	return &notifyv1.ApplyRoutesResponse{Applied: &notifyv1.RoutingVersion{Version: r.GetVersion() + 1, Config: r.GetConfig()}}, nil
}

func (f *fakeRoutes) TestRoutes(_ context.Context, r *notifyv1.TestRoutesRequest) (*notifyv1.TestRoutesResponse, error) {
	f.record(r)
	return f.test, nil
}

func startRoutes(t *testing.T) (*fakeRoutes, string) {
	t.Helper()
	t.Setenv("VIGIL_TOKEN", "test-token")
	t.Setenv("VIGIL_TOKEN_FILE", "")
	f := &fakeRoutes{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	notifyv1.RegisterRouteServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return f, lis.Addr().String()
}

func TestRoutesTest(t *testing.T) {
	f, addr := startRoutes(t)
	f.test = &notifyv1.TestRoutesResponse{Version: 3, Channels: []string{"payments-slack", "pager"}, Matches: []*notifyv1.RouteMatch{
		{Path: "route.routes[0]", Name: "payments", Receivers: []string{"payments-slack"}, RepeatInterval: "4h0m0s", Why: []string{"team is payments", `labels match alertname=~"Kube.*"`}},
		{Path: "route.routes[1].routes[0]", Receivers: []string{"pager"}, Why: []string{"priority is P1"}},
	}}
	out, err := runAccess(t, routesCommand, addr, "", "test",
		"--labels", "alertname=KubePodCrashLooping, namespace=payments", "--team", "payments", "--priority", "p1")
	require.NoError(t, err)
	requireProto(t, &notifyv1.TestRoutesRequest{
		Labels: map[string]string{"alertname": "KubePodCrashLooping", "namespace": "payments"},
		Team:   "payments", Priority: "P1", Kind: "incident.opened",
	}, f.take()[0])
	require.Contains(t, out.stdout, "Routes version 3\n")
	require.Regexp(t, `ROUTE\s+NAME\s+CHANNELS\s+REPEAT\s+WHY\n`, out.stdout)
	require.Regexp(t, `route\.routes\[0\]\s+payments\s+payments-slack\s+4h0m0s\s+team is payments; labels match alertname=~"Kube\.\*"\n`, out.stdout)
	require.Regexp(t, `route\.routes\[1\]\.routes\[0\]\s+-\s+pager\s+-\s+priority is P1\n`, out.stdout)
	require.Contains(t, out.stdout, "Channels: payments-slack, pager\n")

	f.test = &notifyv1.TestRoutesResponse{Channels: []string{"telegram"}}
	out, err = runAccess(t, routesCommand, addr, "", "test", "--kind", "deploy.failed", "--app", "shop")
	require.NoError(t, err)
	requireProto(t, &notifyv1.TestRoutesRequest{Labels: map[string]string{}, App: "shop", Kind: "deploy.failed"}, f.take()[0])
	require.Equal(t, "No routes applied: every channel hears about everything.\nChannels: telegram\n", out.stdout)

	_, err = runAccess(t, routesCommand, addr, "", "test", "--labels", "alertname")
	require.ErrorContains(t, err, `--labels: "alertname": want NAME=VALUE`)
	require.Empty(t, f.take(), "nothing asked")
}

func TestRoutesApplyAndGet(t *testing.T) {
	f, addr := startRoutes(t)
	file := filepath.Join(t.TempDir(), "routes.yaml")
	require.NoError(t, os.WriteFile(file, []byte("route:\n  receivers: [telegram]\n  routes:\n    - teams: [payments]\n      receivers: [slack]\n"), 0o600))
	want := &notifyv1.RoutingConfig{Route: &notifyv1.Route{Receivers: []string{"telegram"}, Routes: []*notifyv1.Route{
		{Teams: []string{"payments"}, Receivers: []string{"slack"}},
	}}}

	// Over the version in force unless told.
	f.current = &notifyv1.RoutingVersion{Version: 2}
	out, err := runAccess(t, routesCommand, addr, "", "apply", "-f", file)
	require.NoError(t, err)
	got := f.take()
	require.Len(t, got, 2)
	requireProto(t, &notifyv1.ApplyRoutesRequest{Config: want, Version: 2}, got[1])
	require.Equal(t, "Applied routes version 3.\n", out.stdout)
	_, err = runAccess(t, routesCommand, addr, "route:\n  receivers: [telegram]\n", "apply", "-f", "-", "--version", "7")
	require.NoError(t, err)
	got = f.take()
	require.Len(t, got, 1)
	require.Equal(t, int64(7), got[0].(*notifyv1.ApplyRoutesRequest).GetVersion())

	// A bad document is refused before anything is sent, field by field.
	require.NoError(t, os.WriteFile(file, []byte("route:\n  receiver: telegram\n"), 0o600))
	_, err = runAccess(t, routesCommand, addr, "", "apply", "-f", file)
	require.ErrorContains(t, err, "invalid routes\n  route.receiver: unknown field")
	require.Empty(t, f.take())

	// get prints YAML that apply takes back.
	f.current = &notifyv1.RoutingVersion{Version: 3, Config: want, AppliedBy: "alice", AppliedAt: timestamppb.New(time.Now())}
	out, err = runAccess(t, routesCommand, addr, "", "get")
	require.NoError(t, err)
	require.Contains(t, out.stdout, "# Version 3, applied by alice at ")
	require.NoError(t, os.WriteFile(file, []byte(out.stdout), 0o600))
	f.current = &notifyv1.RoutingVersion{Version: 3}
	f.take()
	_, err = runAccess(t, routesCommand, addr, "", "apply", "-f", file)
	require.NoError(t, err)
	requireProto(t, &notifyv1.ApplyRoutesRequest{Config: want, Version: 3}, f.take()[1])

	f.current = nil
	out, err = runAccess(t, routesCommand, addr, "", "get")
	require.NoError(t, err)
	require.Equal(t, "# No routes applied: every channel hears about everything.\n", out.stdout)
	_, err = runAccess(t, routesCommand, addr, "", "get", "-o", "xml")
	require.ErrorContains(t, err, `--output "xml": want yaml or json`)
}
