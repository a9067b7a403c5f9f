package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
)

// testPassword is the only password fakeGateway accepts.
const testPassword = "correct horse battery"

// gatewayCall is one call fakeGateway answered.
type gatewayCall struct {
	method string // e.g. "Refresh"
	token  string // the authorization header, "" when none
	req    proto.Message
}

// fakeGateway is the access side of the gateway: it records every call
// with the token it carried, and issues sessions whose refresh tokens work
// once.
type fakeGateway struct {
	gatewayv1.UnimplementedAuthServiceServer
	gatewayv1.UnimplementedUserServiceServer
	gatewayv1.UnimplementedKeyServiceServer
	gatewayv1.UnimplementedAuditServiceServer

	mu        sync.Mutex
	calls     []gatewayCall
	issued    int
	tokens    *gatewayv1.Tokens // the last issued
	refresh   string            // the refresh token that works now
	accessTTL time.Duration     // of the access tokens issued
	refused   string            // an access token answered Unauthenticated
	logoutErr error
	principal *gatewayv1.Principal
	prefix    string // of the tokens issued, to tell fakes apart
}

// startGateway serves a fakeGateway on loopback, with the user's config
// directory in a temporary directory and VIGIL_TOKEN unset. Tests using it
// are not parallel: they set the environment.
func startGateway(t *testing.T) (*fakeGateway, string) {
	t.Helper()
	useConfigDir(t, t.TempDir())
	t.Setenv("VIGIL_TOKEN", "")
	f := &fakeGateway{
		accessTTL: time.Hour,
		principal: &gatewayv1.Principal{Kind: "user", Name: "alice", Role: gatewayv1.Role_ROLE_OPERATOR, Teams: []string{"shop"}},
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(grpc.UnaryInterceptor(f.intercept))
	gatewayv1.RegisterAuthServiceServer(srv, f)
	gatewayv1.RegisterUserServiceServer(srv, f)
	gatewayv1.RegisterKeyServiceServer(srv, f)
	gatewayv1.RegisterAuditServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return f, lis.Addr().String()
}

// useConfigDir points os.UserConfigDir at dir.
func useConfigDir(t *testing.T, dir string) {
	t.Helper()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("HOME", dir)
}

func (f *fakeGateway) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	c := gatewayCall{method: path.Base(info.FullMethod), req: proto.Clone(req.(proto.Message))}
	if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) > 0 {
		c.token = v[0]
	}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	refused := f.refused != "" && c.token == "Bearer "+f.refused
	f.mu.Unlock()
	if refused && c.method != "Login" && c.method != "Refresh" {
		return nil, status.Error(codes.Unauthenticated, "token expired")
	}
	return handler(ctx, req)
}

// takeCalls returns the calls answered since the last takeCalls.
func (f *fakeGateway) takeCalls() []gatewayCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// last is the request of the last call, which must be of method.
func (f *fakeGateway) last(t *testing.T, method string) proto.Message {
	t.Helper()
	calls := f.takeCalls()
	require.NotEmpty(t, calls)
	c := calls[len(calls)-1]
	require.Equal(t, method, c.method)
	return c.req
}

func (f *fakeGateway) issue() *gatewayv1.Tokens {
	f.issued++
	n := strconv.Itoa(f.issued)
	now := time.Now().UTC().Truncate(time.Second)
	f.tokens = &gatewayv1.Tokens{
		AccessToken: f.prefix + "access-" + n, AccessExpireTime: timestamppb.New(now.Add(f.accessTTL)),
		RefreshToken: f.prefix + "refresh-" + n, RefreshExpireTime: timestamppb.New(now.Add(24 * time.Hour)),
	}
	f.refresh = f.tokens.GetRefreshToken()
	return f.tokens
}

func (f *fakeGateway) Login(_ context.Context, r *gatewayv1.LoginRequest) (*gatewayv1.LoginResponse, error) {
	if r.GetPassword() != testPassword {
		return nil, status.Error(codes.Unauthenticated, "wrong user name or password")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return &gatewayv1.LoginResponse{Tokens: f.issue(), User: &gatewayv1.User{Name: r.GetUsername(), Role: gatewayv1.Role_ROLE_OPERATOR}}, nil
}

func (f *fakeGateway) Refresh(_ context.Context, r *gatewayv1.RefreshRequest) (*gatewayv1.RefreshResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refresh == "" || r.GetRefreshToken() != f.refresh {
		return nil, status.Error(codes.Unauthenticated, "refresh token used or revoked")
	}
	return &gatewayv1.RefreshResponse{Tokens: f.issue(), User: &gatewayv1.User{Name: "alice"}}, nil
}

func (f *fakeGateway) Logout(context.Context, *gatewayv1.LogoutRequest) (*gatewayv1.LogoutResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refresh = ""
	return &gatewayv1.LogoutResponse{}, f.logoutErr
}

func (f *fakeGateway) WhoAmI(context.Context, *gatewayv1.WhoAmIRequest) (*gatewayv1.WhoAmIResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &gatewayv1.WhoAmIResponse{Principal: f.principal}, nil
}

func (f *fakeGateway) CreateUser(_ context.Context, r *gatewayv1.CreateUserRequest) (*gatewayv1.CreateUserResponse, error) {
	return &gatewayv1.CreateUserResponse{User: r.GetUser()}, nil
}

func (f *fakeGateway) GetUser(_ context.Context, r *gatewayv1.GetUserRequest) (*gatewayv1.GetUserResponse, error) {
	return &gatewayv1.GetUserResponse{User: &gatewayv1.User{Name: r.GetName()}}, nil
}

func (f *fakeGateway) ListUsers(context.Context, *gatewayv1.ListUsersRequest) (*gatewayv1.ListUsersResponse, error) {
	return &gatewayv1.ListUsersResponse{Users: []*gatewayv1.User{{Name: "alice", Role: gatewayv1.Role_ROLE_ADMIN}}}, nil
}

func (f *fakeGateway) UpdateUser(_ context.Context, r *gatewayv1.UpdateUserRequest) (*gatewayv1.UpdateUserResponse, error) {
	return &gatewayv1.UpdateUserResponse{User: r.GetUser()}, nil
}

func (f *fakeGateway) SetPassword(context.Context, *gatewayv1.SetPasswordRequest) (*gatewayv1.SetPasswordResponse, error) {
	return &gatewayv1.SetPasswordResponse{}, nil
}

func (f *fakeGateway) LinkChatIdentity(_ context.Context, r *gatewayv1.LinkChatIdentityRequest) (*gatewayv1.LinkChatIdentityResponse, error) {
	return &gatewayv1.LinkChatIdentityResponse{User: &gatewayv1.User{Name: r.GetName(), ChatIdentities: []*gatewayv1.ChatIdentity{{
		Provider: r.GetProvider(), ExternalId: r.GetExternalId(), LinkTime: timestamppb.Now(),
	}}}}, nil
}

func (f *fakeGateway) UnlinkChatIdentity(_ context.Context, r *gatewayv1.UnlinkChatIdentityRequest) (*gatewayv1.UnlinkChatIdentityResponse, error) {
	return &gatewayv1.UnlinkChatIdentityResponse{User: &gatewayv1.User{Name: r.GetName()}}, nil
}

func (f *fakeGateway) CreateChatLinkCode(_ context.Context, r *gatewayv1.CreateChatLinkCodeRequest) (*gatewayv1.CreateChatLinkCodeResponse, error) {
	return &gatewayv1.CreateChatLinkCodeResponse{
		Code: "ABCD2345", ExpireTime: timestamppb.New(time.Now().Add(10 * time.Minute)),
		Instruction: "send /link ABCD2345 (" + r.GetProvider().String() + ")",
	}, nil
}

// testSecret is the secret of every key fakeGateway creates.
const testSecret = "vk_4f2a.9c1d7e0b3a5f4e2d8c6b"

func (f *fakeGateway) CreateKey(_ context.Context, r *gatewayv1.CreateKeyRequest) (*gatewayv1.CreateKeyResponse, error) {
	k := proto.Clone(r.GetKey()).(*gatewayv1.Key)
	k.Id, k.Prefix, k.CreatedBy, k.CreateTime = "k1", "vk_4f2a", "alice", timestamppb.Now()
	return &gatewayv1.CreateKeyResponse{Key: k, Secret: testSecret}, nil
}

func (f *fakeGateway) ListKeys(context.Context, *gatewayv1.ListKeysRequest) (*gatewayv1.ListKeysResponse, error) {
	return &gatewayv1.ListKeysResponse{Keys: []*gatewayv1.Key{{Id: "k1", Name: "ci", Prefix: "vk_4f2a"}}}, nil
}

func (f *fakeGateway) RevokeKey(_ context.Context, r *gatewayv1.RevokeKeyRequest) (*gatewayv1.RevokeKeyResponse, error) {
	return &gatewayv1.RevokeKeyResponse{Key: &gatewayv1.Key{Id: r.GetId(), RevokeTime: timestamppb.Now()}}, nil
}

func (f *fakeGateway) ListAuditEvents(context.Context, *gatewayv1.ListAuditEventsRequest) (*gatewayv1.ListAuditEventsResponse, error) {
	return &gatewayv1.ListAuditEventsResponse{
		Events: []*gatewayv1.AuditEvent{{
			Time: timestamppb.Now(), Actor: "user:alice", Method: "vigil.deploy.v1.AppService/DeployApp",
			Target: "app/shop", Code: "PermissionDenied", Message: "not your team",
		}},
		NextPageToken: "next-page",
	}, nil
}

// output is what a command printed.
type output struct{ stdout, stderr string }

// runAccess runs the command tree cmd makes with args, --addr addr and stdin,
// and returns what it printed.
func runAccess(t *testing.T, cmd func() *cobra.Command, addr, stdin string, args ...string) (output, error) {
	t.Helper()
	c := cmd()
	c.SetArgs(append(args, "--addr", addr))
	c.SetIn(strings.NewReader(stdin))
	var stderr bytes.Buffer
	c.SetErr(&stderr)
	var err error
	stdout := captureStdout(t, func() { err = c.ExecuteContext(context.Background()) })
	return output{stdout: stdout, stderr: stderr.String()}, err
}

// captureStdout returns what do writes to os.Stdout, where the commands
// print their results.
func captureStdout(t *testing.T, do func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	saved := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	defer func() { os.Stdout = saved }()
	do()
	require.NoError(t, w.Close())
	return <-done
}
