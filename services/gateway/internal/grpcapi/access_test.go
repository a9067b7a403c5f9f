package grpcapi_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/db"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
	"github.com/vigil-ops/vigil/services/gateway/internal/grpcapi"
	"github.com/vigil-ops/vigil/services/gateway/internal/postgres"
)

func TestMain(m *testing.M) { testkit.Main(m) }

const adminToken = "s3cret-bootstrap-token"

type accessEnv struct {
	srv   *grpcapi.AccessServer
	svc   *access.Service
	store *postgres.Store
	pool  *pgxpool.Pool
}

// newAccessServer returns the access API over a fresh gateway schema,
// with cheap password hashing.
func newAccessServer(t *testing.T) accessEnv {
	t.Helper()
	ctx := context.Background()
	pool, err := db.Open(ctx, testkit.Postgres(t), "gateway")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, db.Migrate(ctx, pool, "gateway", db.Sub(postgres.Migrations, "migrations")))
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	store := postgres.New(pool)
	hasher := access.NewHasher(access.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 2)
	svc := access.New(access.Options{}, store, auth.NewKeySet(priv), hasher, auth.AdminToken(adminToken), testkit.Logger(t))
	return accessEnv{srv: grpcapi.NewAccessServer(svc, store, testkit.Logger(t)), svc: svc, store: store, pool: pool}
}

func violations(err error) []string {
	var out []string
	for _, v := range server.Violations(status.Convert(err)) {
		out = append(out, v.Field)
	}
	return out
}

// TestListAuditEventsPages walks the audit log a page at a time, across
// events written at the same microsecond, and checks the pages add up to
// the whole, in order, with nothing twice.
func TestListAuditEventsPages(t *testing.T) {
	t.Parallel()
	env := newAccessServer(t)
	srv, store := env.srv, env.store
	ctx := context.Background()
	base := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	// Oldest first: 0m, 1m, 2m, 3m, 3m, 3m, 4m; alice did the even ones.
	at := []time.Duration{0, time.Minute, 2 * time.Minute, 3 * time.Minute, 3 * time.Minute, 3 * time.Minute, 4 * time.Minute}
	for i, d := range at {
		actor := "user:alice"
		if i%2 == 1 {
			actor = "user:bob"
		}
		require.NoError(t, store.Audit(ctx, auth.AuditEntry{
			Time: base.Add(d), Actor: actor, Method: "vigil.deploy.v1.AppService/DeployApp", Target: "app/shop", Code: codes.OK,
		}))
	}
	ids := func(evs []*gatewayv1.AuditEvent) []string {
		var out []string
		for _, e := range evs {
			out = append(out, e.GetId())
		}
		return out
	}
	whole, err := srv.ListAuditEvents(ctx, &gatewayv1.ListAuditEventsRequest{})
	require.NoError(t, err)
	require.Len(t, whole.GetEvents(), 7)
	require.Empty(t, whole.GetNextPageToken())
	for i := 1; i < len(whole.GetEvents()); i++ {
		require.False(t, whole.GetEvents()[i].GetTime().AsTime().After(whole.GetEvents()[i-1].GetTime().AsTime()), "newest first")
	}

	walk := func(req *gatewayv1.ListAuditEventsRequest) (pages [][]string) {
		t.Helper()
		for {
			resp, err := srv.ListAuditEvents(ctx, req)
			require.NoError(t, err)
			pages = append(pages, ids(resp.GetEvents()))
			if resp.GetNextPageToken() == "" {
				return pages
			}
			require.Less(t, len(pages), 10, "the pages never end")
			req.PageToken = resp.GetNextPageToken()
		}
	}
	all := ids(whole.GetEvents())
	tests := []struct {
		name  string
		size  int32
		sizes []int
	}{
		{name: "ties across a page boundary", size: 3, sizes: []int{3, 3, 1}},
		{name: "pages of one", size: 1, sizes: []int{1, 1, 1, 1, 1, 1, 1}},
		{name: "one short of everything", size: 6, sizes: []int{6, 1}},
		{name: "exactly everything", size: 7, sizes: []int{7}},
		{name: "more than everything", size: 8, sizes: []int{7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pages := walk(&gatewayv1.ListAuditEventsRequest{PageSize: tt.size})
			var got []string
			var sizes []int
			for _, p := range pages {
				got = append(got, p...)
				sizes = append(sizes, len(p))
			}
			require.Equal(t, tt.sizes, sizes)
			require.Equal(t, all, got)
		})
	}

	t.Run("filtered", func(t *testing.T) {
		t.Parallel()
		pages := walk(&gatewayv1.ListAuditEventsRequest{Actor: "user:alice", PageSize: 2})
		require.Equal(t, [][]string{{all[0], all[2]}, {all[4], all[6]}}, pages)
		pages = walk(&gatewayv1.ListAuditEventsRequest{
			Method: "DeployApp", Since: timestamppb.New(base.Add(time.Minute)), Until: timestamppb.New(base.Add(4 * time.Minute)), PageSize: 2,
		})
		require.Equal(t, [][]string{{all[1], all[2]}, {all[3], all[4]}, {all[5]}}, pages)
		// Every event here succeeded.
		for result, want := range map[string][]string{"ok": all, "OK": all, "failed": nil, "PermissionDenied": nil} {
			resp, err := srv.ListAuditEvents(ctx, &gatewayv1.ListAuditEventsRequest{Result: result})
			require.NoError(t, err)
			require.Equal(t, want, ids(resp.GetEvents()), result)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		t.Parallel()
		token := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
		for name, req := range map[string]*gatewayv1.ListAuditEventsRequest{
			"negative page":        {PageSize: -1},
			"token not base64":     {PageToken: "!!!"},
			"token without id":     {PageToken: token("2031-01-01T00:00:00Z")},
			"token with bad time":  {PageToken: token("yesterday/" + all[0])},
			"token with bad id":    {PageToken: token("2031-01-01T00:00:00Z/not-an-id")},
			"token with empty id":  {PageToken: token("2031-01-01T00:00:00Z/")},
			"token of another API": {PageToken: "eyJvZmZzZXQiOjEwfQ"},
			"result not a code":    {Result: "refused"},
		} {
			_, err := srv.ListAuditEvents(ctx, req)
			require.Equal(t, codes.InvalidArgument, status.Code(err), "%s: %v", name, err)
			require.Len(t, violations(err), 1, name)
		}
		// A size over the most is lowered to it, as every list does
		// (server.PageSize).
		for _, size := range []int32{500, 501} {
			resp, err := srv.ListAuditEvents(ctx, &gatewayv1.ListAuditEventsRequest{PageSize: size})
			require.NoError(t, err)
			require.Len(t, resp.GetEvents(), 7)
		}
	})
}

// TestAccessAPI runs the access API as the gateway serves it: behind the
// Guard, on loopback, with the audit log in the database.
func TestAccessAPI(t *testing.T) {
	t.Parallel()
	env := newAccessServer(t)
	guard := &auth.Guard{Authn: env.svc, Audit: func(ctx context.Context, e auth.AuditEntry) {
		e.Time = e.Time.Truncate(time.Microsecond)
		require.NoError(t, env.store.Audit(ctx, e))
	}}
	srv := grpc.NewServer(grpc.UnaryInterceptor(guard.Unary()))
	gatewayv1.RegisterAuthServiceServer(srv, env.srv)
	gatewayv1.RegisterUserServiceServer(srv, env.srv)
	gatewayv1.RegisterKeyServiceServer(srv, env.srv)
	gatewayv1.RegisterAuditServiceServer(srv, env.srv)
	conn := dial(t, srv)
	authc, users, keys, audit := gatewayv1.NewAuthServiceClient(conn), gatewayv1.NewUserServiceClient(conn),
		gatewayv1.NewKeyServiceClient(conn), gatewayv1.NewAuditServiceClient(conn)
	as := func(token string) context.Context {
		return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+token)
	}
	admin := as(adminToken)
	const pw = "correct horse battery"

	_, err := users.CreateUser(t.Context(), &gatewayv1.CreateUserRequest{User: &gatewayv1.User{Name: "olga"}, Password: pw})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	created, err := users.CreateUser(admin, &gatewayv1.CreateUserRequest{
		User: &gatewayv1.User{Name: "olga", Role: gatewayv1.Role_ROLE_OPERATOR, Teams: []string{"payments"}}, Password: pw,
	})
	require.NoError(t, err)
	require.Equal(t, gatewayv1.Role_ROLE_OPERATOR, created.GetUser().GetRole())
	_, err = users.CreateUser(admin, &gatewayv1.CreateUserRequest{User: &gatewayv1.User{Name: "olga", Role: gatewayv1.Role_ROLE_VIEWER}, Password: pw})
	require.Equal(t, codes.AlreadyExists, status.Code(err))
	_, err = users.CreateUser(admin, &gatewayv1.CreateUserRequest{User: &gatewayv1.User{Name: "Bad Name"}, Password: "short"})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.ElementsMatch(t, []string{"user.name", "user.role", "password"}, violations(err))
	_, err = users.GetUser(admin, &gatewayv1.GetUserRequest{Name: "nobody"})
	require.Equal(t, codes.NotFound, status.Code(err))

	_, err = authc.Login(t.Context(), &gatewayv1.LoginRequest{Username: "olga", Password: "wrong password!"})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	login, err := authc.Login(t.Context(), &gatewayv1.LoginRequest{Username: "olga", Password: pw})
	require.NoError(t, err)
	require.NotNil(t, login.GetUser().GetLastLoginTime())
	olga := as(login.GetTokens().GetAccessToken())

	who, err := authc.WhoAmI(olga, &gatewayv1.WhoAmIRequest{})
	require.NoError(t, err)
	require.Equal(t, "user", who.GetPrincipal().GetKind())
	require.Equal(t, "olga", who.GetPrincipal().GetName())
	require.Equal(t, []string{"payments"}, who.GetPrincipal().GetTeams())

	_, err = users.ListUsers(olga, &gatewayv1.ListUsersRequest{})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	_, err = keys.CreateKey(olga, &gatewayv1.CreateKeyRequest{Key: &gatewayv1.Key{Name: "root", Scopes: []gatewayv1.Scope{gatewayv1.Scope_SCOPE_ADMIN}, Team: "payments"}})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	_, err = keys.CreateKey(olga, &gatewayv1.CreateKeyRequest{Key: &gatewayv1.Key{Name: "am", Scopes: []gatewayv1.Scope{gatewayv1.Scope_SCOPE_INGEST}}})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Equal(t, []string{"key.team"}, violations(err))
	key, err := keys.CreateKey(olga, &gatewayv1.CreateKeyRequest{Key: &gatewayv1.Key{Name: "am", Scopes: []gatewayv1.Scope{gatewayv1.Scope_SCOPE_INGEST}, Team: "payments"}})
	require.NoError(t, err)
	secret := key.GetSecret()
	require.NotEmpty(t, secret)
	require.Equal(t, []gatewayv1.Scope{gatewayv1.Scope_SCOPE_INGEST}, key.GetKey().GetScopes())

	listed, err := keys.ListKeys(olga, &gatewayv1.ListKeysRequest{IncludeInactive: true})
	require.NoError(t, err)
	require.Len(t, listed.GetKeys(), 1)
	require.Equal(t, key.GetKey().GetPrefix(), listed.GetKeys()[0].GetPrefix())
	require.NotContains(t, prototext.Format(listed), secret[len(key.GetKey().GetPrefix()):], "a list never shows a secret")

	// The key is an ingest key: it may not even list keys.
	_, err = keys.ListKeys(as(secret), &gatewayv1.ListKeysRequest{})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	revoked, err := keys.RevokeKey(olga, &gatewayv1.RevokeKeyRequest{Id: key.GetKey().GetId()})
	require.NoError(t, err)
	require.NotNil(t, revoked.GetKey().GetRevokeTime())
	_, err = keys.ListKeys(as(secret), &gatewayv1.ListKeysRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "a revoked key")

	// Disabling olga ends her session at once.
	_, err = users.UpdateUser(admin, &gatewayv1.UpdateUserRequest{
		User: &gatewayv1.User{Name: "olga", Disabled: true}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"disabled"}},
	})
	require.NoError(t, err)
	_, err = authc.WhoAmI(olga, &gatewayv1.WhoAmIRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	_, err = users.UpdateUser(admin, &gatewayv1.UpdateUserRequest{
		User: &gatewayv1.User{Name: "olga"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"password_hash"}},
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Equal(t, []string{"update_mask"}, violations(err))

	// What was done is in the audit log, newest first; reads are not.
	events, err := audit.ListAuditEvents(admin, &gatewayv1.ListAuditEventsRequest{})
	require.NoError(t, err)
	type row struct{ Actor, Method, Target, Code string }
	var got []row
	for _, e := range events.GetEvents() {
		got = append(got, row{e.GetActor(), e.GetMethod(), e.GetTarget(), e.GetCode()})
		require.NotEmpty(t, e.GetPeer())
	}
	const (
		createUser = "vigil.gateway.v1.UserService/CreateUser"
		createKey  = "vigil.gateway.v1.KeyService/CreateKey"
		loginRPC   = "vigil.gateway.v1.AuthService/Login"
	)
	keyTarget := "key/" + key.GetKey().GetId()
	require.Equal(t, []row{
		{"bootstrap:admin", "vigil.gateway.v1.UserService/UpdateUser", "user/olga", "InvalidArgument"},
		{"bootstrap:admin", "vigil.gateway.v1.UserService/UpdateUser", "user/olga", "OK"},
		{"user:olga", "vigil.gateway.v1.KeyService/RevokeKey", keyTarget, "OK"},
		{"user:olga", createKey, "key/am", "OK"},
		{"user:olga", createKey, "key/am", "InvalidArgument"},
		{"user:olga", createKey, "key/root", "PermissionDenied"},
		{"user:olga", loginRPC, "user/olga", "OK"},
		{"anonymous", loginRPC, "user/olga", "Unauthenticated"},
		{"bootstrap:admin", createUser, "user/Bad Name", "InvalidArgument"},
		{"bootstrap:admin", createUser, "user/olga", "AlreadyExists"},
		{"bootstrap:admin", createUser, "user/olga", "OK"},
	}, got)
	_, err = audit.ListAuditEvents(as(secret), &gatewayv1.ListAuditEventsRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
}

func dial(t *testing.T, srv *grpc.Server) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}
