package auth_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/auth"
)

var allPermissions = []auth.Permission{auth.Public, auth.Authenticated, auth.Ingest, auth.Read, auth.Operate, auth.Admin}

func key(scopes ...auth.Scope) auth.Principal {
	return auth.Principal{Kind: auth.KindKey, Name: "k", Scopes: scopes, Teams: []string{"payments"}}
}

func user(role auth.Role) auth.Principal {
	return auth.Principal{Kind: auth.KindUser, Name: "u", Role: role, Teams: []string{"payments"}}
}

func TestPrincipalHas(t *testing.T) {
	t.Parallel()
	bootstrap, err := auth.AdminToken("s3cret-admin-token").Authenticate(context.Background(), "s3cret-admin-token")
	require.NoError(t, err)
	tests := []struct {
		name string
		p    auth.Principal
		has  []auth.Permission
	}{
		{name: "unauthenticated", p: auth.Principal{}, has: []auth.Permission{auth.Public}},
		{name: "ingest key", p: key(auth.ScopeIngest), has: []auth.Permission{auth.Public, auth.Authenticated, auth.Ingest}},
		{name: "read key", p: key(auth.ScopeRead), has: []auth.Permission{auth.Public, auth.Authenticated, auth.Read}},
		{name: "operate key", p: key(auth.ScopeOperate), has: []auth.Permission{auth.Public, auth.Authenticated, auth.Read, auth.Operate}},
		{name: "admin key", p: key(auth.ScopeAdmin), has: allPermissions},
		{name: "ingest and read key", p: key(auth.ScopeIngest, auth.ScopeRead), has: []auth.Permission{auth.Public, auth.Authenticated, auth.Ingest, auth.Read}},
		{name: "key without scopes", p: key(), has: []auth.Permission{auth.Public, auth.Authenticated}},
		{name: "key with an unknown scope", p: key("superuser"), has: []auth.Permission{auth.Public, auth.Authenticated}},
		{name: "key with a role", p: auth.Principal{Kind: auth.KindKey, Name: "k", Role: auth.RoleAdmin}, has: []auth.Permission{auth.Public, auth.Authenticated}},
		{name: "viewer", p: user(auth.RoleViewer), has: []auth.Permission{auth.Public, auth.Authenticated, auth.Read}},
		{name: "operator", p: user(auth.RoleOperator), has: []auth.Permission{auth.Public, auth.Authenticated, auth.Read, auth.Operate}},
		{name: "admin", p: user(auth.RoleAdmin), has: allPermissions},
		{name: "user without a role", p: user(""), has: []auth.Permission{auth.Public, auth.Authenticated}},
		{name: "user with scopes", p: auth.Principal{Kind: auth.KindUser, Name: "u", Scopes: []auth.Scope{auth.ScopeAdmin}}, has: []auth.Permission{auth.Public, auth.Authenticated}},
		{name: "bootstrap admin token", p: bootstrap, has: allPermissions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, perm := range allPermissions {
				want := false
				for _, h := range tt.has {
					want = want || h == perm
				}
				require.Equal(t, want, tt.p.Has(perm), "%s has %s", tt.p, perm)
			}
		})
	}
}

func TestPrincipalReaches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		p       auth.Principal
		team    string
		reaches bool
	}{
		{name: "own team", p: auth.Principal{Teams: []string{"payments", "search"}}, team: "search", reaches: true},
		{name: "other team", p: auth.Principal{Teams: []string{"payments"}}, team: "search"},
		{name: "no teams", p: auth.Principal{}, team: "payments"},
		{name: "all teams", p: auth.Principal{AllTeams: true}, team: "search", reaches: true},
		{name: "unowned without the right", p: auth.Principal{Teams: []string{"payments"}}, team: ""},
		{name: "unowned with the right", p: auth.Principal{Teams: []string{"payments"}, Unowned: true}, team: "", reaches: true},
		{name: "unowned through all teams", p: auth.Principal{AllTeams: true}, team: "", reaches: true},
		{name: "unowned does not reach teams", p: auth.Principal{Unowned: true}, team: "payments"},
		{name: "team names are exact", p: auth.Principal{Teams: []string{"payments"}}, team: "Payments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.reaches, tt.p.Reaches(tt.team))
		})
	}
}

func TestAdminToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, err := auth.AdminToken("s3cret").Authenticate(ctx, "s3cret")
	require.NoError(t, err)
	require.Equal(t, auth.Principal{Kind: auth.KindBootstrap, Name: "admin", Role: auth.RoleAdmin, AllTeams: true, Unowned: true}, p)
	require.Equal(t, "bootstrap:admin", p.String())

	for _, tt := range []struct{ token, secret string }{
		{"s3cret", "s3cre"},
		{"s3cret", "s3cret "},
		{"s3cret", ""},
		{"", ""}, // no bootstrap token configured: nothing matches it
		{"", "anything"},
	} {
		_, err := auth.AdminToken(tt.token).Authenticate(ctx, tt.secret)
		require.ErrorIs(t, err, auth.ErrUnauthenticated, "token %q, secret %q", tt.token, tt.secret)
	}
}

func TestPrincipalStringAndActor(t *testing.T) {
	t.Parallel()
	require.Equal(t, "anonymous", auth.Principal{}.String())
	require.Equal(t, "key:ci", auth.Principal{Kind: auth.KindKey, Name: "ci"}.String())
	require.Equal(t, "unknown", auth.Actor(context.Background()))
	ctx := auth.WithPrincipal(context.Background(), auth.Principal{Kind: auth.KindUser, Name: "alice"})
	require.Equal(t, "alice", auth.Actor(ctx))
	p, ok := auth.FromContext(ctx)
	require.True(t, ok)
	require.Equal(t, "user:alice", p.String())
}

func TestHTTPSecret(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		set    func(*http.Request)
		secret string
	}{
		{name: "none", set: func(*http.Request) {}},
		{name: "bearer", set: func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc") }, secret: "abc"},
		{name: "bearer in any case", set: func(r *http.Request) { r.Header.Set("Authorization", "bearer  abc ") }, secret: "abc"},
		{name: "basic auth password", set: func(r *http.Request) { r.SetBasicAuth("alertmanager", "abc") }, secret: "abc"},
		{name: "other scheme", set: func(r *http.Request) { r.Header.Set("Authorization", "Token abc") }},
		{name: "scheme only", set: func(r *http.Request) { r.Header.Set("Authorization", "Bearer") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://vigil/api", http.NoBody)
			require.NoError(t, err)
			tt.set(r)
			require.Equal(t, tt.secret, auth.HTTPSecret(r))
		})
	}
}
