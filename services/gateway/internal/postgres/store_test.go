package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
	"github.com/vigil-ops/vigil/services/gateway/internal/postgres"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func newStore(t *testing.T) (*postgres.Store, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	pool, err := db.Open(ctx, testkit.Postgres(t), "gateway")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, db.Migrate(ctx, pool, "gateway", db.Sub(postgres.Migrations, "migrations")))
	return postgres.New(pool), pool
}

var base = time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)

// auditFixture is written in this order; ids are UUIDv7s, so two entries
// at the same time are told apart by which was written last.
var auditFixture = []auth.AuditEntry{
	{Time: base, Actor: "user:alice", Method: "vigil.deploy.v1.AppService/DeployApp", Target: "app/shop", Code: codes.OK},
	{Time: base.Add(time.Minute), Actor: "user:bob", Method: "vigil.deploy.v1.AppService/DeleteApp", Target: "app/shop", Code: codes.PermissionDenied, Message: "needs the operate permission"},
	{Time: base.Add(2 * time.Minute), Actor: "anonymous", Method: "vigil.gateway.v1.AuthService/Login", Target: "user/alice", Code: codes.Unauthenticated, Message: "wrong user name or password", Peer: "192.0.2.7:4242"},
	{Time: base.Add(3 * time.Minute), Actor: "user:alice", Method: "vigil.gateway.v1.UserService/CreateUser", Target: "user/carol", Code: codes.OK, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"},
	{Time: base.Add(3 * time.Minute), Actor: "user:alice", Method: "vigil.gateway.v1.KeyService/CreateKey", Target: "key/ci", Code: codes.OK},
}

func TestAuditEvents(t *testing.T) {
	t.Parallel()
	store, _ := newStore(t)
	ctx := context.Background()
	for _, e := range auditFixture {
		require.NoError(t, store.Audit(ctx, e))
	}

	all, err := store.AuditEvents(ctx, postgres.AuditQuery{Limit: 50})
	require.NoError(t, err)
	require.Len(t, all, 5)
	// Everything written comes back, newest first.
	for i, ev := range all {
		want := auditFixture[len(auditFixture)-1-i]
		require.NotEmpty(t, ev.ID)
		require.True(t, ev.Time.Equal(want.Time), "event %d at %v", i, ev.Time)
		require.Equal(t, postgres.AuditEvent{
			ID: ev.ID, Time: ev.Time, Actor: want.Actor, Method: want.Method, Target: want.Target,
			Code: want.Code.String(), Message: want.Message, TraceID: want.TraceID, Peer: want.Peer,
		}, ev)
	}

	targets := func(q postgres.AuditQuery) []string {
		t.Helper()
		if q.Limit == 0 {
			q.Limit = 50
		}
		evs, err := store.AuditEvents(ctx, q)
		require.NoError(t, err)
		out := []string{}
		for _, e := range evs {
			out = append(out, e.Target)
		}
		return out
	}
	tests := []struct {
		name string
		q    postgres.AuditQuery
		want []string
	}{
		{name: "everything", q: postgres.AuditQuery{}, want: []string{"key/ci", "user/carol", "user/alice", "app/shop", "app/shop"}},
		{name: "actor", q: postgres.AuditQuery{Actor: "user:alice"}, want: []string{"key/ci", "user/carol", "app/shop"}},
		{name: "actor is exact", q: postgres.AuditQuery{Actor: "alice"}, want: []string{}},
		{name: "method by name", q: postgres.AuditQuery{Method: "DeployApp"}, want: []string{"app/shop"}},
		{name: "method by full name", q: postgres.AuditQuery{Method: "vigil.gateway.v1.AuthService/Login"}, want: []string{"user/alice"}},
		{name: "method suffix", q: postgres.AuditQuery{Method: "App"}, want: []string{"app/shop", "app/shop"}},
		{name: "method is a suffix, not a substring", q: postgres.AuditQuery{Method: "AppService"}, want: []string{}},
		{name: "method is no pattern: _", q: postgres.AuditQuery{Method: "_eployApp"}, want: []string{}},
		{name: "method is no pattern: %", q: postgres.AuditQuery{Method: "%"}, want: []string{}},
		{name: "target", q: postgres.AuditQuery{Target: "app/shop"}, want: []string{"app/shop", "app/shop"}},
		{name: "target is exact", q: postgres.AuditQuery{Target: "app/"}, want: []string{}},
		{name: "since is inclusive", q: postgres.AuditQuery{Since: base.Add(2 * time.Minute)}, want: []string{"key/ci", "user/carol", "user/alice"}},
		{name: "until is exclusive", q: postgres.AuditQuery{Until: base.Add(2 * time.Minute)}, want: []string{"app/shop", "app/shop"}},
		{name: "since and until", q: postgres.AuditQuery{Since: base.Add(time.Minute), Until: base.Add(3 * time.Minute)}, want: []string{"user/alice", "app/shop"}},
		{name: "filters combine", q: postgres.AuditQuery{Actor: "user:alice", Method: "App"}, want: []string{"app/shop"}},
		{name: "code", q: postgres.AuditQuery{Code: "PermissionDenied"}, want: []string{"app/shop"}},
		{name: "code OK", q: postgres.AuditQuery{Code: "OK"}, want: []string{"key/ci", "user/carol", "app/shop"}},
		{name: "failed", q: postgres.AuditQuery{Failed: true}, want: []string{"user/alice", "app/shop"}},
		{name: "failed after an event", q: postgres.AuditQuery{Failed: true, AfterTime: all[2].Time, AfterID: all[2].ID}, want: []string{"app/shop"}},
		{name: "limit answers one more", q: postgres.AuditQuery{Limit: 2}, want: []string{"key/ci", "user/carol", "user/alice"}},
		{
			name: "after an event", q: postgres.AuditQuery{AfterTime: all[1].Time, AfterID: all[1].ID},
			want: []string{"user/alice", "app/shop", "app/shop"},
		},
		{
			name: "after the first of two at one time", q: postgres.AuditQuery{AfterTime: all[0].Time, AfterID: all[0].ID},
			want: []string{"user/carol", "user/alice", "app/shop", "app/shop"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, targets(tt.q))
		})
	}
}

func TestPrune(t *testing.T) {
	t.Parallel()
	store, pool := newStore(t)
	ctx := context.Background()
	for _, e := range auditFixture {
		require.NoError(t, store.Audit(ctx, e))
	}
	require.NoError(t, store.CreateUser(ctx, access.User{Name: "alice", Role: auth.RoleViewer, Teams: []string{}, PasswordHash: "x", Created: base, Updated: base}))
	sessions := []access.Session{
		{ID: "01900000-0000-7000-8000-000000000001", User: "alice", Created: base, Expires: base.Add(time.Minute)},                 // expired long ago
		{ID: "01900000-0000-7000-8000-000000000002", User: "alice", Created: base, Expires: base.Add(time.Hour)},                   // revoked long ago
		{ID: "01900000-0000-7000-8000-000000000003", User: "alice", Created: base, Expires: base.Add(30 * 24 * time.Hour)},         // alive
		{ID: "01900000-0000-7000-8000-000000000004", User: "alice", Created: base, Expires: base.Add(3*time.Minute + time.Second)}, // expires after the cutoff
	}
	for i, s := range sessions {
		require.NoError(t, store.CreateSession(ctx, s, []byte{byte(i)}))
	}
	require.NoError(t, store.RevokeSession(ctx, "alice", sessions[1].ID, nil, base.Add(time.Minute)))

	cutoff := base.Add(3 * time.Minute)
	n, err := store.Prune(ctx, base.Add(2*time.Minute), cutoff)
	require.NoError(t, err)
	require.Equal(t, int64(2+2), n, "two audit events and two sessions")
	evs, err := store.AuditEvents(ctx, postgres.AuditQuery{Limit: 50})
	require.NoError(t, err)
	require.Len(t, evs, 3)
	var left []string
	rows, err := pool.Query(ctx, `SELECT id::text FROM sessions ORDER BY id`)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		left = append(left, id)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{sessions[2].ID, sessions[3].ID}, left)
}

// TestRefreshReuseRevokesDurably: the revocation of a reused refresh
// token's session is committed, though the call answers ErrNotFound.
func TestRefreshReuseRevokesDurably(t *testing.T) {
	t.Parallel()
	store, pool := newStore(t)
	ctx := context.Background()
	require.NoError(t, store.CreateUser(ctx, access.User{Name: "alice", Role: auth.RoleViewer, Teams: []string{}, PasswordHash: "x", Created: base, Updated: base}))
	sess := access.Session{ID: "01900000-0000-7000-8000-000000000001", User: "alice", Created: base, Expires: base.Add(time.Hour)}
	require.NoError(t, store.CreateSession(ctx, sess, []byte("t1")))

	got, u, err := store.Refresh(ctx, []byte("t1"), []byte("t2"), base.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, sess.ID, got.ID)
	require.Equal(t, "alice", u.Name)
	_, _, err = store.Refresh(ctx, []byte("t2"), []byte("t3"), base.Add(2*time.Minute))
	require.NoError(t, err)

	// t1, replaced two refreshes ago, is presented again.
	_, _, err = store.Refresh(ctx, []byte("t1"), []byte("t4"), base.Add(5*time.Minute))
	require.ErrorIs(t, err, access.ErrNotFound)
	var revoked *time.Time
	require.NoError(t, pool.QueryRow(ctx, `SELECT revoked_at FROM sessions WHERE id = $1`, sess.ID).Scan(&revoked))
	require.NotNil(t, revoked, "the session is revoked")
	require.True(t, revoked.Equal(base.Add(5*time.Minute)))
	_, _, err = store.Refresh(ctx, []byte("t3"), []byte("t5"), base.Add(6*time.Minute))
	require.ErrorIs(t, err, access.ErrNotFound)
	_, err = store.SessionPrincipal(ctx, sess.ID, base.Add(6*time.Minute))
	require.ErrorIs(t, err, access.ErrNotFound)

	// A token never issued revokes nothing.
	other := access.Session{ID: "01900000-0000-7000-8000-000000000002", User: "alice", Created: base, Expires: base.Add(time.Hour)}
	require.NoError(t, store.CreateSession(ctx, other, []byte("o1")))
	_, _, err = store.Refresh(ctx, []byte("never"), []byte("o2"), base.Add(7*time.Minute))
	require.ErrorIs(t, err, access.ErrNotFound)
	_, err = store.SessionPrincipal(ctx, other.ID, base.Add(7*time.Minute))
	require.NoError(t, err)
}
