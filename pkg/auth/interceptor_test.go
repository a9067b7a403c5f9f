package auth_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ops/vigil/pkg/auth"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
)

func TestTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		tmpl string
		m    proto.Message
		want string
	}{
		{name: "no fields", tmpl: "session", m: &gatewayv1.LogoutRequest{}, want: "session"},
		{name: "top-level field", tmpl: "app/{name}", m: &deployv1.DeleteAppRequest{Name: "shop"}, want: "app/shop"},
		{name: "nested field", tmpl: "user/{user.name}", m: &gatewayv1.CreateUserRequest{User: &gatewayv1.User{Name: "bob"}}, want: "user/bob"},
		{name: "empty field", tmpl: "app/{name}", m: &deployv1.DeleteAppRequest{}, want: "app/?"},
		{name: "unset parent", tmpl: "user/{user.name}", m: &gatewayv1.CreateUserRequest{}, want: "user/?"},
		{name: "unknown field", tmpl: "app/{nope}", m: &deployv1.DeleteAppRequest{Name: "shop"}, want: "app/?"},
		{name: "not a string", tmpl: "app/{delete_resources}", m: &deployv1.DeleteAppRequest{DeleteResources: true}, want: "app/?"},
		{name: "list field", tmpl: "teams/{user.teams}", m: &gatewayv1.CreateUserRequest{User: &gatewayv1.User{Teams: []string{"a"}}}, want: "teams/?"},
		{name: "path through a scalar", tmpl: "app/{name.x}", m: &deployv1.DeleteAppRequest{Name: "shop"}, want: "app/?"},
		{name: "no message", tmpl: "app/{name}", m: nil, want: "app/?"},
		{name: "two fields", tmpl: "{username}@{password}", m: &gatewayv1.LoginRequest{Username: "a", Password: "b"}, want: "a@b"},
		{name: "unclosed brace", tmpl: "app/{name", m: &deployv1.DeleteAppRequest{Name: "shop"}, want: "app/{name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, auth.Target(tt.tmpl, tt.m))
		})
	}
}

// secrets is an Authenticator over a fixed table; "broken" fails as a
// database that is down would.
type secrets map[string]auth.Principal

func (s secrets) Authenticate(_ context.Context, secret string) (auth.Principal, error) {
	switch secret {
	case "broken":
		return auth.Principal{}, errors.New("connection refused")
	case "throttled":
		return auth.Principal{}, status.Error(codes.ResourceExhausted, "slow down")
	}
	p, ok := s[secret]
	if !ok {
		return auth.Principal{}, auth.ErrUnauthenticated
	}
	return p, nil
}

var (
	alice    = auth.Principal{Kind: auth.KindUser, Name: "alice", Role: auth.RoleAdmin, AllTeams: true}
	victor   = auth.Principal{Kind: auth.KindUser, Name: "victor", Role: auth.RoleViewer, Teams: []string{"payments"}}
	ingester = auth.Principal{Kind: auth.KindKey, Name: "am", Scopes: []auth.Scope{auth.ScopeIngest}, Teams: []string{"payments"}}
	testAuth = secrets{
		"alice-token": alice, "victor-token": victor, "ingest-token": ingester,
		"analysis-service": {Kind: auth.KindService, Name: "analysis"},
		"notify-service":   {Kind: auth.KindService, Name: "notify"},
	}
)

// auditLog collects what a Guard audits.
type auditLog struct {
	mu      sync.Mutex
	entries []auth.AuditEntry
}

func (a *auditLog) record(_ context.Context, e auth.AuditEntry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, e)
}

func (a *auditLog) all() []auth.AuditEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]auth.AuditEntry(nil), a.entries...)
}

func withToken(token string) context.Context {
	ctx := context.Background()
	if token != "" {
		ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+token))
	}
	return peer.NewContext(ctx, &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 4242}})
}

// TestGuardUnary calls the interceptor directly with a handler that
// answers what it is told to, and checks the answer, whether the handler
// ran, as whom, and what was audited.
func TestGuardUnary(t *testing.T) {
	t.Parallel()
	const (
		createUser = "/vigil.gateway.v1.UserService/CreateUser"
		getUser    = "/vigil.gateway.v1.UserService/GetUser"
		login      = "/vigil.gateway.v1.AuthService/Login"
		setPw      = "/vigil.gateway.v1.UserService/SetPassword"
		ingest     = "/vigil.gateway.v1.AlertService/IngestAlerts"
		credential = "/vigil.deploy.v1.ClusterCredentialService/IssueClusterCredential"
	)
	createBob := &gatewayv1.CreateUserRequest{User: &gatewayv1.User{Name: "bob"}}
	tests := []struct {
		name       string
		method     string
		token      string
		req        any
		handlerErr error
		code       codes.Code
		msg        string // in the status message
		called     bool   // the handler ran
		audit      *auth.AuditEntry
	}{
		{
			name: "no credential", method: createUser, req: createBob,
			code: codes.Unauthenticated, msg: "missing credentials",
		},
		{
			name: "no credential for a method without a policy", method: "/vigil.gateway.v1.UserService/DeleteUser",
			code: codes.Unauthenticated, msg: "missing credentials",
		},
		{
			name: "invalid credential", method: createUser, token: "guessed", req: createBob,
			code: codes.Unauthenticated, msg: "invalid credentials",
		},
		{
			name: "authenticator down", method: getUser, token: "broken",
			code: codes.Unavailable,
		},
		{
			name: "authenticator answers a status", method: getUser, token: "throttled",
			code: codes.ResourceExhausted, msg: "slow down",
		},
		{
			name: "method without a policy", method: "/vigil.gateway.v1.UserService/DeleteUser", token: "alice-token",
			code: codes.PermissionDenied, msg: "has no access policy",
		},
		{
			name: "allowed and not audited", method: getUser, token: "alice-token", req: &gatewayv1.GetUserRequest{Name: "bob"},
			code: codes.OK, called: true,
		},
		{
			name: "allowed and audited", method: createUser, token: "alice-token", req: createBob,
			code: codes.OK, called: true,
			audit: &auth.AuditEntry{Actor: "user:alice", Method: createUser[1:], Target: "user/bob", Code: codes.OK},
		},
		{
			name: "audited with the handler's error", method: createUser, token: "alice-token", req: createBob,
			handlerErr: status.Error(codes.AlreadyExists, "user bob exists"),
			code:       codes.AlreadyExists, msg: "user bob exists", called: true,
			audit: &auth.AuditEntry{Actor: "user:alice", Method: createUser[1:], Target: "user/bob", Code: codes.AlreadyExists, Message: "user bob exists"},
		},
		{
			name: "insufficient permission is audited", method: createUser, token: "victor-token", req: createBob,
			code: codes.PermissionDenied, msg: "needs the admin permission",
			audit: &auth.AuditEntry{
				Actor: "user:victor", Method: createUser[1:], Target: "user/bob", Code: codes.PermissionDenied,
				Message: "vigil.gateway.v1.UserService/CreateUser needs the admin permission; user:victor has role viewer",
			},
		},
		{
			name: "insufficient permission, not audited", method: getUser, token: "ingest-token",
			code: codes.PermissionDenied, msg: "needs the admin permission; key:am has scopes ingest",
		},
		{
			name: "ingest key ingests", method: ingest, token: "ingest-token",
			code: codes.OK, called: true,
		},
		{
			name: "public and audited without a credential", method: login, req: &gatewayv1.LoginRequest{Username: "bob", Password: "x"},
			handlerErr: status.Error(codes.Unauthenticated, "wrong user name or password"),
			code:       codes.Unauthenticated, msg: "wrong user name or password", called: true,
			audit: &auth.AuditEntry{Actor: "anonymous", Method: login[1:], Target: "user/bob", Code: codes.Unauthenticated, Message: "wrong user name or password"},
		},
		{
			name: "public ignores a bad credential", method: login, token: "guessed", req: &gatewayv1.LoginRequest{Username: "bob"},
			code: codes.OK, called: true,
			audit: &auth.AuditEntry{Actor: "anonymous", Method: login[1:], Target: "user/bob", Code: codes.OK},
		},
		{
			name: "public with a valid credential names the caller", method: login, token: "victor-token", req: &gatewayv1.LoginRequest{Username: "bob"},
			code: codes.OK, called: true,
			audit: &auth.AuditEntry{Actor: "user:victor", Method: login[1:], Target: "user/bob", Code: codes.OK},
		},
		{
			name: "authenticated and audited", method: setPw, token: "victor-token", req: &gatewayv1.SetPasswordRequest{Name: "victor"},
			code: codes.OK, called: true,
			audit: &auth.AuditEntry{Actor: "user:victor", Method: setPw[1:], Target: "user/victor", Code: codes.OK},
		},
		{
			name: "an internal RPC admits the service its rule names", method: credential, token: "analysis-service",
			code: codes.OK, called: true,
		},
		{
			name: "an internal RPC refuses an admin", method: credential, token: "alice-token",
			code: codes.PermissionDenied, msg: "needs the internal permission; user:alice has role admin",
		},
		{
			name: "an internal RPC refuses another service", method: credential, token: "notify-service",
			code: codes.PermissionDenied, msg: "service:notify has only the internal calls made for it",
		},
		{
			name: "a service holds nothing else", method: getUser, token: "analysis-service",
			code: codes.PermissionDenied, msg: "needs the admin permission; service:analysis",
		},
		{
			name: "unauthenticated call of an audited method is not audited", method: setPw, token: "guessed",
			req:  &gatewayv1.SetPasswordRequest{Name: "victor"},
			code: codes.Unauthenticated,
		},
		{
			name: "missing credential for an audited method is not audited", method: createUser, req: createBob,
			code: codes.Unauthenticated,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			log := &auditLog{}
			g := &auth.Guard{Authn: testAuth, Audit: log.record}
			called := false
			var seen auth.Principal
			handler := func(ctx context.Context, _ any) (any, error) {
				called = true
				seen, _ = auth.FromContext(ctx)
				if tt.handlerErr != nil {
					return nil, tt.handlerErr
				}
				return "response", nil
			}
			resp, err := g.Unary()(withToken(tt.token), tt.req, &grpc.UnaryServerInfo{FullMethod: tt.method}, handler)
			require.Equal(t, tt.code, status.Code(err), "error: %v", err)
			require.Contains(t, status.Convert(err).Message(), tt.msg)
			require.Equal(t, tt.called, called, "handler called")
			if tt.code == codes.OK {
				require.Equal(t, "response", resp)
			}
			if called {
				require.Equal(t, testAuth[tt.token], seen, "the handler sees the caller (none without a valid credential)")
			}
			entries := log.all()
			if tt.audit == nil {
				require.Empty(t, entries)
				return
			}
			require.Len(t, entries, 1)
			e := entries[0]
			require.False(t, e.Time.IsZero())
			require.Equal(t, "192.0.2.7:4242", e.Peer)
			e.Time, e.Peer = tt.audit.Time, ""
			require.Equal(t, *tt.audit, e)
		})
	}
}

// TestDenied: PermissionDenied names the permission and what the caller
// holds, and carries it machine-readable in an ErrorInfo.
func TestDenied(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    auth.Principal
		perm auth.Permission
		msg  string
	}{
		{name: "user", p: victor, perm: auth.Operate, msg: "DeployApp needs the operate permission; user:victor has role viewer"},
		{
			name: "key", p: auth.Principal{Kind: auth.KindKey, Name: "ci", Scopes: []auth.Scope{auth.ScopeIngest, auth.ScopeRead}}, perm: auth.Admin,
			msg: "DeployApp needs the admin permission; key:ci has scopes ingest,read",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := status.Convert(auth.Denied(tt.p, tt.perm, "DeployApp"))
			require.Equal(t, codes.PermissionDenied, st.Code())
			require.Equal(t, tt.msg, st.Message())
			require.Len(t, st.Details(), 1)
			info, ok := st.Details()[0].(*errdetails.ErrorInfo)
			require.True(t, ok, "detail %T", st.Details()[0])
			require.Equal(t, "PERMISSION_MISSING", info.GetReason())
			require.Equal(t, "vigil", info.GetDomain())
			require.Equal(t, map[string]string{"permission": string(tt.perm), "principal": tt.p.String()}, info.GetMetadata())
		})
	}
}

func TestCheckTeamAndTeams(t *testing.T) {
	t.Parallel()
	internal := context.Background()
	require.NoError(t, auth.CheckTeam(internal, "payments", "app shop"), "an internal call reaches everything")
	teams, all, unowned := auth.Teams(internal)
	require.Nil(t, teams)
	require.True(t, all)
	require.True(t, unowned)

	ctx := auth.WithPrincipal(context.Background(), victor)
	require.NoError(t, auth.CheckTeam(ctx, "payments", "app shop"))
	err := auth.CheckTeam(ctx, "search", "app finder")
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	require.Equal(t, "app finder belongs to team search; user:victor reaches teams payments", status.Convert(err).Message())
	err = auth.CheckTeam(ctx, "", "incident 7")
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	require.Contains(t, status.Convert(err).Message(), "belongs to no team")
	teams, all, unowned = auth.Teams(ctx)
	require.Equal(t, []string{"payments"}, teams)
	require.False(t, all)
	require.False(t, unowned)

	require.NoError(t, auth.CheckTeam(auth.WithPrincipal(context.Background(), alice), "", "incident 7"))
}

// appServer deploys by sending one progress message.
type appServer struct {
	deployv1.UnimplementedAppServiceServer
}

func (appServer) DeployApp(r *deployv1.DeployAppRequest, s grpc.ServerStreamingServer[deployv1.DeployAppResponse]) error {
	switch r.GetName() {
	case "broken":
		return status.Error(codes.FailedPrecondition, "app broken has no image")
	case "flaky":
		// Accepted, then failed: its outcome is in its own history.
		if err := s.Send(&deployv1.DeployAppResponse{}); err != nil {
			return err
		}
		return status.Error(codes.Aborted, "rollout failed")
	}
	return s.Send(&deployv1.DeployAppResponse{})
}

// whoAmI answers who the guard says the caller is.
type whoAmI struct {
	gatewayv1.UnimplementedAuthServiceServer
}

func (whoAmI) WhoAmI(ctx context.Context, _ *gatewayv1.WhoAmIRequest) (*gatewayv1.WhoAmIResponse, error) {
	p, _ := auth.FromContext(ctx)
	return &gatewayv1.WhoAmIResponse{Principal: &gatewayv1.Principal{Kind: string(p.Kind), Name: p.Name}}, nil
}

// TestGuardOnAServer runs the guard in a real gRPC server on loopback:
// health checks need nothing, 401 comes before 501, streams are
// authorised and audited once, with the target of their request, when
// they first answer (or at their end if they fail before).
func TestGuardOnAServer(t *testing.T) {
	t.Parallel()
	log := &auditLog{}
	g := &auth.Guard{Authn: testAuth, Audit: log.record}
	srv := grpc.NewServer(grpc.UnaryInterceptor(g.Unary()), grpc.StreamInterceptor(g.Stream()))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	gatewayv1.RegisterAuthServiceServer(srv, whoAmI{})
	gatewayv1.RegisterUserServiceServer(srv, gatewayv1.UnimplementedUserServiceServer{})
	deployv1.RegisterAppServiceServer(srv, appServer{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	as := func(token string) context.Context {
		return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+token)
	}

	hc, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err, "health checks need no credential")
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, hc.GetStatus())

	authc := gatewayv1.NewAuthServiceClient(conn)
	_, err = authc.WhoAmI(t.Context(), &gatewayv1.WhoAmIRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	who, err := authc.WhoAmI(as("victor-token"), &gatewayv1.WhoAmIRequest{})
	require.NoError(t, err)
	require.Equal(t, "victor", who.GetPrincipal().GetName())

	// UserService is not implemented by this server: the caller learns
	// that only once authenticated.
	users := gatewayv1.NewUserServiceClient(conn)
	_, err = users.SetPassword(t.Context(), &gatewayv1.SetPasswordRequest{Name: "victor"})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	_, err = users.SetPassword(as("victor-token"), &gatewayv1.SetPasswordRequest{Name: "victor"})
	require.Equal(t, codes.Unimplemented, status.Code(err))

	apps := deployv1.NewAppServiceClient(conn)
	deploy := func(ctx context.Context, name string) error {
		s, err := apps.DeployApp(ctx, &deployv1.DeployAppRequest{Name: name})
		require.NoError(t, err)
		for {
			if _, err := s.Recv(); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
		}
	}
	require.Equal(t, codes.Unauthenticated, status.Code(deploy(t.Context(), "shop")))
	err = deploy(as("victor-token"), "shop")
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	require.Contains(t, status.Convert(err).Message(), "needs the operate permission")
	require.NoError(t, deploy(as("alice-token"), "shop"))
	require.Equal(t, codes.FailedPrecondition, status.Code(deploy(as("alice-token"), "broken")))
	require.Equal(t, codes.Aborted, status.Code(deploy(as("alice-token"), "flaky")))

	type row struct {
		Actor, Method, Target string
		Code                  codes.Code
	}
	var got []row
	for _, e := range log.all() {
		require.NotEmpty(t, e.Peer)
		got = append(got, row{e.Actor, e.Method, e.Target, e.Code})
	}
	const deployApp = "vigil.deploy.v1.AppService/DeployApp"
	require.Equal(t, []row{
		{"user:victor", "vigil.gateway.v1.UserService/SetPassword", "user/victor", codes.Unimplemented},
		// Refused before the request is read: no target.
		{"user:victor", deployApp, "app/?", codes.PermissionDenied},
		{"user:alice", deployApp, "app/shop", codes.OK},
		// Failed before answering: audited at its end.
		{"user:alice", deployApp, "app/broken", codes.FailedPrecondition},
		// Audited once, when accepted (its first answer).
		{"user:alice", deployApp, "app/flaky", codes.OK},
	}, got)
}

// TestAdmitHTTP: a REST call is refused as its gRPC call would be, by
// the same guard, before anything reads its body; refusals are audited
// with their target from the path, admitted calls are left to the
// interceptor to audit.
func TestAdmitHTTP(t *testing.T) {
	t.Parallel()
	log := &auditLog{}
	g := &auth.Guard{Authn: testAuth, Audit: log.record}
	req := func(token string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/apps/shop:deploy", strings.NewReader(`{not json`))
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		return r
	}
	params := map[string]string{"name": "shop"}
	const deployApp = "/vigil.deploy.v1.AppService/DeployApp"

	err := g.AdmitHTTP(req(""), deployApp, params)
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	err = g.AdmitHTTP(req("victor-token"), deployApp, params)
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "user:victor")
	err = g.AdmitHTTP(req("victor-token"), "/vigil.deploy.v1.AppService/Nope", nil)
	require.Equal(t, codes.PermissionDenied, status.Code(err), "a method without a policy is nobody's: %v", err)
	require.NoError(t, g.AdmitHTTP(req("alice-token"), deployApp, params))
	require.NoError(t, g.AdmitHTTP(req(""), "/vigil.gateway.v1.AuthService/Login", nil))

	entries := log.all()
	require.Len(t, entries, 1, "the refusal, not the anonymous call nor the admitted ones: %+v", entries)
	e := entries[0]
	require.Equal(t, "user:victor", e.Actor)
	require.Equal(t, "vigil.deploy.v1.AppService/DeployApp", e.Method)
	require.Equal(t, "app/shop", e.Target)
	require.Equal(t, codes.PermissionDenied, e.Code)
	require.Equal(t, "192.0.2.1:1234", e.Peer, "httptest's client address")
}
