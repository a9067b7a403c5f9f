package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ops/vigil/pkg/apidocs"
	analysisv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/analysis/v1"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// calls records what reached the REST authoriser and the gRPC server.
type calls struct {
	mu         sync.Mutex
	authorized []string
	served     []string
	params     map[string]string
}

func (c *calls) authorize(deny error) server.Authorizer {
	return func(_ *http.Request, method string, params map[string]string) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.authorized = append(c.authorized, method)
		c.params = params
		return deny
	}
}

func (c *calls) serve(method string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.served = append(c.served, method)
}

func (c *calls) reset() (authorized, served []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	authorized, served = c.authorized, c.served
	c.authorized, c.served = nil, nil
	return authorized, served
}

// restServer runs a Server with every REST API of the contracts mapped to
// unimplemented gRPC services, recording what reaches them.
func restServer(t *testing.T, c *calls, deny error, limit int64) string {
	t.Helper()
	srv := server.New(server.Options{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Logger: testkit.Logger(t),
		UnaryInterceptors: []grpc.UnaryServerInterceptor{func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			c.serve(info.FullMethod)
			return h(ctx, req)
		}},
		StreamInterceptors: []grpc.StreamServerInterceptor{func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			c.serve(info.FullMethod)
			return h(srv, ss)
		}},
	})
	srv.AuthorizeREST(c.authorize(deny))
	srv.LimitREST(limit)
	require.NoError(t, srv.Listen())
	gatewayv1.RegisterAlertServiceServer(srv.GRPC, gatewayv1.UnimplementedAlertServiceServer{})
	gatewayv1.RegisterAuthServiceServer(srv.GRPC, gatewayv1.UnimplementedAuthServiceServer{})
	gatewayv1.RegisterUserServiceServer(srv.GRPC, gatewayv1.UnimplementedUserServiceServer{})
	gatewayv1.RegisterKeyServiceServer(srv.GRPC, gatewayv1.UnimplementedKeyServiceServer{})
	gatewayv1.RegisterAuditServiceServer(srv.GRPC, gatewayv1.UnimplementedAuditServiceServer{})
	gatewayv1.RegisterSourceServiceServer(srv.GRPC, gatewayv1.UnimplementedSourceServiceServer{})
	monitorv1.RegisterIncidentServiceServer(srv.GRPC, monitorv1.UnimplementedIncidentServiceServer{})
	monitorv1.RegisterSilenceServiceServer(srv.GRPC, monitorv1.UnimplementedSilenceServiceServer{})
	monitorv1.RegisterOnCallServiceServer(srv.GRPC, monitorv1.UnimplementedOnCallServiceServer{})
	monitorv1.RegisterEscalationServiceServer(srv.GRPC, monitorv1.UnimplementedEscalationServiceServer{})
	monitorv1.RegisterInhibitionServiceServer(srv.GRPC, monitorv1.UnimplementedInhibitionServiceServer{})
	deployv1.RegisterAppServiceServer(srv.GRPC, deployv1.UnimplementedAppServiceServer{})
	deployv1.RegisterClusterServiceServer(srv.GRPC, deployv1.UnimplementedClusterServiceServer{})
	repairv1.RegisterRepairServiceServer(srv.GRPC, repairv1.UnimplementedRepairServiceServer{})
	notifyv1.RegisterChannelServiceServer(srv.GRPC, notifyv1.UnimplementedChannelServiceServer{})
	notifyv1.RegisterRouteServiceServer(srv.GRPC, notifyv1.UnimplementedRouteServiceServer{})
	analysisv1.RegisterAnalysisServiceServer(srv.GRPC, analysisv1.UnimplementedAnalysisServiceServer{})
	conn, err := srv.SelfConn()
	require.NoError(t, err)
	for _, register := range []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		gatewayv1.RegisterAlertServiceHandler, gatewayv1.RegisterAuthServiceHandler, gatewayv1.RegisterUserServiceHandler,
		gatewayv1.RegisterKeyServiceHandler, gatewayv1.RegisterAuditServiceHandler, monitorv1.RegisterIncidentServiceHandler,
		monitorv1.RegisterSilenceServiceHandler, deployv1.RegisterAppServiceHandler, deployv1.RegisterClusterServiceHandler,
		repairv1.RegisterRepairServiceHandler, notifyv1.RegisterChannelServiceHandler, analysisv1.RegisterAnalysisServiceHandler,
		monitorv1.RegisterOnCallServiceHandler, monitorv1.RegisterEscalationServiceHandler, notifyv1.RegisterRouteServiceHandler,
		monitorv1.RegisterInhibitionServiceHandler, gatewayv1.RegisterSourceServiceHandler,
	} {
		require.NoError(t, register(t.Context(), srv.Gateway, conn))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return "http://" + srv.HTTPAddr()
}

func send(t *testing.T, method, url string, body io.Reader) (int, server.Problem) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var p server.Problem
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.Header.Get("Content-Type") == "application/problem+json" {
		require.NoError(t, json.Unmarshal(b, &p), "%s", b)
	}
	return resp.StatusCode, p
}

// TestRESTRoutesAuthorizeTheirRPC: the RPC each REST route is authorised
// for, before its body is read, is the one grpc-gateway then calls, for
// every route of the OpenAPI document.
func TestRESTRoutesAuthorizeTheirRPC(t *testing.T) {
	c := &calls{}
	base := restServer(t, c, nil, 0)
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(apidocs.OpenAPI, &doc))
	vars := regexp.MustCompile(`\{[^}]*\}`)
	n := 0
	for path, ops := range doc.Paths {
		for verb := range ops {
			verb = strings.ToUpper(verb)
			var body io.Reader
			if verb != http.MethodGet && verb != http.MethodDelete {
				body = strings.NewReader(`{}`)
			}
			code, p := send(t, verb, base+vars.ReplaceAllString(path, "x1"), body)
			authorized, served := c.reset()
			require.Len(t, served, 1, "%s %s reaches one RPC: %d %+v", verb, path, code, p)
			assert.Equal(t, served, authorized, "%s %s is authorised for the RPC it calls", verb, path)
			assert.Equal(t, http.StatusNotImplemented, code, "%s %s: %+v", verb, path, p)
			n++
		}
	}
	require.Greater(t, n, 40, "the OpenAPI document's routes")
}

// TestRESTRefusesBeforeReadingTheBody: a caller the authoriser refuses
// gets its refusal, not a 400 for a malformed body nor a 413 for a large
// one, and nothing reaches the RPC.
func TestRESTRefusesBeforeReadingTheBody(t *testing.T) {
	c := &calls{}
	base := restServer(t, c, status.Error(codes.PermissionDenied, "admins only"), 0)
	for name, body := range map[string]string{
		"malformed": `{"user": nope`,
		"too large": `{"user":{"name":"` + strings.Repeat("a", 2<<20) + `"}}`,
	} {
		code, p := send(t, http.MethodPost, base+"/api/v1/users", strings.NewReader(body))
		require.Equal(t, http.StatusForbidden, code, "%s: %+v", name, p)
		require.Equal(t, "admins only", p.Detail)
		authorized, served := c.reset()
		require.Equal(t, []string{"/vigil.gateway.v1.UserService/CreateUser"}, authorized)
		require.Empty(t, served, "%s: nothing reaches the RPC", name)
	}
	// The path parameters come along, for the audit log.
	code, _ := send(t, http.MethodPost, base+"/api/v1/apps/shop:deploy", strings.NewReader(`{`))
	require.Equal(t, http.StatusForbidden, code)
	c.mu.Lock()
	require.Equal(t, map[string]string{"name": "shop"}, c.params)
	c.mu.Unlock()
}

// TestRESTBodyLimit: a body over the limit is 413 with problem JSON
// whether its length is declared or found while reading, and nothing
// reaches the RPC; one within it is decoded as usual.
func TestRESTBodyLimit(t *testing.T) {
	c := &calls{}
	const limit = 64 << 10
	base := restServer(t, c, nil, limit)
	big := `{"app":{"name":"shop","display_name":"` + strings.Repeat("a", 2*limit) + `"}}`
	for name, body := range map[string]io.Reader{
		"declared": strings.NewReader(big),
		// An io.Reader of unknown length is sent chunked.
		"chunked": io.MultiReader(strings.NewReader(big)),
	} {
		code, p := send(t, http.MethodPost, base+"/api/v1/apps", body)
		require.Equal(t, http.StatusRequestEntityTooLarge, code, "%s: %+v", name, p)
		require.Equal(t, http.StatusRequestEntityTooLarge, p.Status)
		require.Contains(t, p.Detail, "65536 bytes")
		_, served := c.reset()
		require.Empty(t, served, "%s: nothing reaches the RPC", name)
	}
	small := `{"app":{"name":"shop","display_name":"` + strings.Repeat("a", limit/2) + `"}}`
	code, p := send(t, http.MethodPost, base+"/api/v1/apps", io.MultiReader(strings.NewReader(small)))
	require.Equal(t, http.StatusNotImplemented, code, "%+v", p)
	_, served := c.reset()
	require.Equal(t, []string{"/vigil.deploy.v1.AppService/CreateApp"}, served)
	// A malformed body within the limit is still the caller's 400.
	code, p = send(t, http.MethodPost, base+"/api/v1/apps", strings.NewReader(`{"app":`))
	require.Equal(t, http.StatusBadRequest, code, "%+v", p)
}
