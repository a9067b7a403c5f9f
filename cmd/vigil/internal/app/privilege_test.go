package app_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/db"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// `vigil serve monitor`, as compose runs it: the bootstrap admin token is
// the gateway's, so monitor refuses it unless told to accept it; and an
// assertion of the gateway's is accepted once, so a captured one cannot
// be played again.
func TestServeMonitorRefusesAdminTokenAndReplayedAssertions(t *testing.T) {
	dsn := testkit.Postgres(t)
	logins, err := db.Bootstrap(t.Context(), dsn, app.Services, nil)
	require.NoError(t, err)
	b := testkit.LockedNATS(t)
	keys := testKeys(t)
	nc, js := b.Conn(t, "monitor")
	serveMonitor := func(acceptAdminToken bool) monitorv1.SilenceServiceClient {
		a := runApp(t, app.Options{
			Services: []string{"monitor"}, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
			AdminToken: adminToken, AcceptAdminToken: acceptAdminToken,
		}, app.Deps{DatabaseURL: dsn, DatabaseLogins: logins, NATS: nc, JetStream: js, Logger: testkit.Logger(t), Keys: keys.Verifier()})
		conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		return monitorv1.NewSilenceServiceClient(conn)
	}
	silences := serveMonitor(false)
	count := func() int {
		// As the superuser: what monitor holds, whatever its API says.
		conn, err := pgx.Connect(t.Context(), dsn)
		require.NoError(t, err)
		defer conn.Close(context.Background())
		var n int
		require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*) FROM monitor.silences").Scan(&n))
		return n
	}
	create := &monitorv1.CreateSilenceRequest{Matchers: []string{`alertname="Watchdog"`}, Duration: durationpb.New(3600e9), Comment: "test"}

	withToken := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken)
	_, err = silences.CreateSilence(withToken, create)
	require.Equal(t, codes.Unauthenticated, status.Code(err), "the admin token at monitor: %v", err)
	require.Zero(t, count())

	// The gateway's assertion of an admin: once, not twice.
	admin := auth.WithPrincipal(context.Background(), auth.Principal{Kind: auth.KindUser, Name: "root", Role: auth.RoleAdmin, AllTeams: true, Unowned: true})
	md, err := auth.ServiceCredentials{Keys: keys, Service: "monitor"}.GetRequestMetadata(admin)
	require.NoError(t, err)
	asserted := metadata.NewOutgoingContext(context.Background(), metadata.New(md))
	_, err = silences.CreateSilence(asserted, create)
	require.NoError(t, err)
	require.Equal(t, 1, count())
	_, err = silences.CreateSilence(asserted, create)
	require.Equal(t, codes.Unauthenticated, status.Code(err), "the same assertion again: %v", err)
	require.Equal(t, 1, count(), "the replay changed nothing")

	// Told to, monitor takes the admin token (recovery without the gateway).
	_, err = serveMonitor(true).CreateSilence(withToken, create)
	require.NoError(t, err)
	require.Equal(t, 2, count())
}

// `vigil up`'s services log in as their own roles, none a superuser, each
// confined to its own schema.
func TestUpServicesLogInAsTheirOwnRoles(t *testing.T) {
	v := startVigil(t)
	conn, err := pgx.Connect(t.Context(), v.dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	rows, err := conn.Query(t.Context(), `SELECT DISTINCT a.usename::text, r.rolsuper FROM pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid
		WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()`)
	require.NoError(t, err)
	type login struct {
		Role  string
		Super bool
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[login])
	require.NoError(t, err)
	var want []login
	for _, s := range app.Services {
		want = append(want, login{Role: v.logins[s].Role})
	}
	require.ElementsMatch(t, want, got, "every service's pool, and nothing else, is connected")

	// monitor's role may not read the gateway's users.
	pool, err := db.Open(t.Context(), v.dsn, "monitor", db.As(v.logins["monitor"]))
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(t.Context(), "SELECT * FROM gateway.users")
	require.ErrorContains(t, err, "permission denied for schema gateway")
}
