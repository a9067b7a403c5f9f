package auth_test

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/auth"
)

// assert returns the secret ServiceCredentials send to service for p.
func assert(t *testing.T, ks *auth.KeySet, service string, p auth.Principal) string {
	t.Helper()
	md, err := auth.ServiceCredentials{Keys: ks, Service: service}.GetRequestMetadata(auth.WithPrincipal(context.Background(), p))
	require.NoError(t, err)
	h := md["authorization"]
	require.True(t, strings.HasPrefix(h, "Bearer "), "authorization %q", h)
	return strings.TrimPrefix(h, "Bearer ")
}

// TestServiceAssertionRoundTrip: the service in another process sees the
// caller the gateway authenticated, with everything authorisation needs.
func TestServiceAssertionRoundTrip(t *testing.T) {
	t.Parallel()
	_, priv := newKey(t)
	ks := auth.NewKeySet(priv)
	monitor := auth.ServiceAuthenticator{Keys: ks.Verifier(), Service: "monitor"}
	tests := []struct {
		name string
		p    auth.Principal
	}{
		{name: "user", p: auth.Principal{Kind: auth.KindUser, Name: "alice", Role: auth.RoleOperator, Teams: []string{"payments", "search"}, Unowned: true, SessionID: "0190-s"}},
		{name: "key", p: auth.Principal{Kind: auth.KindKey, Name: "ci", Scopes: []auth.Scope{auth.ScopeRead, auth.ScopeOperate}, Teams: []string{"payments"}, KeyID: "0190-k"}},
		{name: "team-less admin key", p: auth.Principal{Kind: auth.KindKey, Name: "ops", Scopes: []auth.Scope{auth.ScopeAdmin}, AllTeams: true, Unowned: true, KeyID: "0190-a"}},
		{name: "bootstrap", p: auth.Principal{Kind: auth.KindBootstrap, Name: "admin", Role: auth.RoleAdmin, AllTeams: true, Unowned: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			secret := assert(t, ks, "monitor", tt.p)
			got, err := monitor.Authenticate(context.Background(), secret)
			require.NoError(t, err)
			require.Equal(t, tt.p, got)

			c, err := ks.Verify(secret, auth.ServiceAudience("monitor"), time.Now())
			require.NoError(t, err)
			require.Equal(t, tt.p.Name, c.Subject)
			require.WithinDuration(t, c.IssuedAt.Add(time.Minute), c.ExpiresAt.Time, 0, "an assertion lives a minute")
		})
	}
}

func TestServiceAuthenticatorRefuses(t *testing.T) {
	t.Parallel()
	_, priv := newKey(t)
	ks := auth.NewKeySet(priv)
	_, otherPriv := newKey(t)
	alice := auth.Principal{Kind: auth.KindUser, Name: "alice", Role: auth.RoleAdmin}
	monitor := auth.ServiceAuthenticator{Keys: ks.Verifier(), Service: "monitor"}

	// A session token is signed by the same key, but is no assertion.
	session, err := ks.Sign(auth.Claims{})
	require.NoError(t, err)
	noKind, err := ks.Sign(claims(auth.ServiceAudience("monitor"), time.Now().Add(time.Minute)))
	require.NoError(t, err)

	for name, secret := range map[string]string{
		"assertion for another service": assert(t, ks, "deploy", alice),
		"assertion by another key":      assert(t, auth.NewKeySet(otherPriv), "monitor", alice),
		"session token":                 session,
		"token that asserts no one":     noKind,
		"not a JWT, no fallback":        "s3cret",
	} {
		_, err := monitor.Authenticate(context.Background(), secret)
		require.ErrorIs(t, err, auth.ErrUnauthenticated, name)
	}
}

func TestServiceAuthenticatorFallback(t *testing.T) {
	t.Parallel()
	_, priv := newKey(t)
	ks := auth.NewKeySet(priv)
	a := auth.ServiceAuthenticator{Keys: ks.Verifier(), Service: "monitor", Fallback: auth.AdminToken("s3cret-admin")}
	p, err := a.Authenticate(context.Background(), "s3cret-admin")
	require.NoError(t, err)
	require.Equal(t, auth.KindBootstrap, p.Kind)
	_, err = a.Authenticate(context.Background(), "s3cret-guess")
	require.ErrorIs(t, err, auth.ErrUnauthenticated)
	// A JWT is never handed to the fallback.
	_, err = a.Authenticate(context.Background(), assert(t, ks, "deploy", auth.Principal{Kind: auth.KindUser, Name: "alice"}))
	require.ErrorIs(t, err, auth.ErrUnauthenticated)
}

func TestServiceCredentialsNeedACallerAndAKey(t *testing.T) {
	t.Parallel()
	_, priv := newKey(t)
	ks := auth.NewKeySet(priv)
	_, err := auth.ServiceCredentials{Keys: ks, Service: "monitor"}.GetRequestMetadata(context.Background())
	require.ErrorContains(t, err, "no caller")
	ctx := auth.WithPrincipal(context.Background(), auth.Principal{Kind: auth.KindUser, Name: "alice"})
	_, err = auth.ServiceCredentials{Keys: ks.Verifier(), Service: "monitor"}.GetRequestMetadata(ctx)
	require.ErrorContains(t, err, "no signing key")
	_, err = auth.ServiceCredentials{Service: "monitor"}.GetRequestMetadata(ctx)
	require.ErrorContains(t, err, "no signing key")
	require.False(t, auth.ServiceCredentials{}.RequireTransportSecurity())
}

// identity returns the secret ServiceIdentity sends as name to audience.
func identity(t *testing.T, name string, key ed25519.PrivateKey, audience string) string {
	t.Helper()
	md, err := auth.ServiceIdentity{Name: name, Key: key, Audience: audience}.GetRequestMetadata(context.Background())
	require.NoError(t, err)
	return strings.TrimPrefix(md["authorization"], "Bearer ")
}

// TestServiceIdentity: a service calling on its own behalf is who its own
// key says, and nobody else can be.
func TestServiceIdentity(t *testing.T) {
	t.Parallel()
	_, gatewayKey := newKey(t)
	gateway := auth.NewKeySet(gatewayKey)
	analysisPub, analysisKey := newKey(t)
	repairPub, repairKey := newKey(t)
	deploy := auth.ServiceAuthenticator{
		Keys: gateway.Verifier(), Service: "deploy",
		Peers: map[string]ed25519.PublicKey{"analysis": analysisPub, "repair": repairPub},
	}

	p, err := deploy.Authenticate(context.Background(), identity(t, "analysis", analysisKey, "deploy"))
	require.NoError(t, err)
	require.Equal(t, auth.Principal{Kind: auth.KindService, Name: "analysis"}, p)
	p, err = deploy.Authenticate(context.Background(), identity(t, "repair", repairKey, "deploy"))
	require.NoError(t, err)
	require.Equal(t, "service:repair", p.String())

	// The gateway's assertions still work beside the peers'.
	p, err = deploy.Authenticate(context.Background(), assert(t, gateway, "deploy", auth.Principal{Kind: auth.KindUser, Name: "alice", Role: auth.RoleViewer}))
	require.NoError(t, err)
	require.Equal(t, "user:alice", p.String())

	_, strangerKey := newKey(t)
	for name, secret := range map[string]string{
		"analysis's key claiming repair": identity(t, "repair", analysisKey, "deploy"),
		"an unknown key":                 identity(t, "analysis", strangerKey, "deploy"),
		"for another service":            identity(t, "analysis", analysisKey, "monitor"),
		// The gateway vouches for its callers, never for a service.
		"the gateway asserting a service": assert(t, gateway, "deploy", auth.Principal{Kind: auth.KindService, Name: "analysis"}),
		// A peer's key makes service identities, not users.
		"a peer's key asserting a user": assert(t, auth.NewKeySet(analysisKey), "deploy", auth.Principal{Kind: auth.KindUser, Name: "analysis", Role: auth.RoleAdmin}),
	} {
		_, err := deploy.Authenticate(context.Background(), secret)
		require.ErrorIs(t, err, auth.ErrUnauthenticated, name)
	}

	_, err = auth.ServiceIdentity{Name: "analysis", Audience: "deploy"}.GetRequestMetadata(context.Background())
	require.ErrorContains(t, err, "no service identity key")
}
