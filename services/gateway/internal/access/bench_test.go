package access_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
)

// BenchmarkAuthenticate is what authentication adds to each call (every
// webhook of a storm): an API key or a session token remembered from an
// earlier call, against the bootstrap token's constant-time compare as the
// yardstick. A miss costs a Postgres lookup once per CacheTTL (5 s) per
// secret and replica.
func BenchmarkAuthenticate(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b, access.Options{})
	admin := auth.Principal{Kind: auth.KindBootstrap, Name: "admin", Role: auth.RoleAdmin, AllTeams: true}
	_, key, err := e.svc.CreateKey(ctx, admin, access.Key{Name: "am", Scopes: []auth.Scope{auth.ScopeIngest}, Team: "payments"})
	require.NoError(b, err)
	_, err = e.svc.CreateUser(ctx, access.User{Name: "olga", Role: auth.RoleOperator, Teams: []string{"payments"}}, password)
	require.NoError(b, err)
	tokens, _, err := e.svc.Login(ctx, "olga", password, "")
	require.NoError(b, err)
	for _, bc := range []struct{ name, secret string }{
		{"bootstrap-token", adminToken},
		{"api-key", key},
		{"session-token", tokens.Access},
	} {
		b.Run(bc.name, func(b *testing.B) {
			_, err := e.svc.Authenticate(ctx, bc.secret) // fill the cache
			require.NoError(b, err)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := e.svc.Authenticate(ctx, bc.secret); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
