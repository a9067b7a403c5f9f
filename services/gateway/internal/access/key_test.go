package access_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
)

var (
	operator = auth.Principal{Kind: auth.KindUser, Name: "olga", Role: auth.RoleOperator, Teams: []string{"payments", "search"}}
	viewer   = auth.Principal{Kind: auth.KindUser, Name: "vic", Role: auth.RoleViewer, Teams: []string{"payments"}}
	adminU   = auth.Principal{Kind: auth.KindUser, Name: "ada", Role: auth.RoleAdmin, AllTeams: true, Unowned: true}
)

// TestCreateKeyKeepsOnlyTheHash: the secret is handed out once and kept
// nowhere; the row holds its SHA-256 and a short prefix to recognise it.
func TestCreateKeyKeepsOnlyTheHash(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{})
	ctx := context.Background()
	k, secret, err := e.svc.CreateKey(ctx, operator, access.Key{Name: "alertmanager", Scopes: []auth.Scope{auth.ScopeIngest}, Team: "payments"})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(secret, access.KeyPrefix), secret)
	require.GreaterOrEqual(t, len(secret), len(access.KeyPrefix)+43, "256 random bits")
	require.Equal(t, secret[:len(access.KeyPrefix)+6], k.Prefix)
	require.NotEmpty(t, k.ID)
	require.Equal(t, "user:olga", k.CreatedBy)
	require.True(t, k.Created.Equal(t0))

	var (
		hash []byte
		row  string
	)
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT hash, row_to_json(k)::text FROM api_keys k WHERE id = $1`, k.ID).Scan(&hash, &row))
	sum := sha256.Sum256([]byte(secret))
	require.Equal(t, sum[:], hash)
	require.NotContains(t, row, secret)
	require.NotContains(t, row, secret[len(k.Prefix):], "not even the part after the display prefix")

	// Two keys, two secrets.
	_, secret2, err := e.svc.CreateKey(ctx, operator, access.Key{Name: "alertmanager", Scopes: []auth.Scope{auth.ScopeIngest}, Team: "payments"})
	require.NoError(t, err)
	require.NotEqual(t, secret, secret2)

	keys, err := e.svc.Keys(ctx, operator, true)
	require.NoError(t, err)
	require.Len(t, keys, 2)
	for _, listed := range keys {
		require.NotContains(t, fmt.Sprintf("%+v", listed), secret)
		require.NotContains(t, fmt.Sprintf("%+v", listed), secret2)
	}
}

func TestKeyAuthenticates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{})
	ctx := context.Background()
	// The user the keys act for.
	e.createUser(t, "olga", auth.RoleOperator, "payments", "search")
	e.createUser(t, "ada", auth.RoleAdmin)
	k, secret, err := e.svc.CreateKey(ctx, operator, access.Key{Name: "ci", Scopes: []auth.Scope{auth.ScopeRead, auth.ScopeOperate, auth.ScopeRead}, Team: "search"})
	require.NoError(t, err)
	require.Equal(t, []auth.Scope{auth.ScopeRead, auth.ScopeOperate}, k.Scopes, "scopes are kept once")

	var used *time.Time
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT last_used_at FROM api_keys WHERE id = $1`, k.ID).Scan(&used))
	require.Nil(t, used)

	e.clock.Advance(time.Minute)
	p := e.principal(t, secret)
	require.Equal(t, auth.Principal{
		Kind: auth.KindKey, Name: "ci", Scopes: []auth.Scope{auth.ScopeRead, auth.ScopeOperate}, Teams: []string{"search"}, KeyID: k.ID,
	}, p)
	require.True(t, p.Has(auth.Operate))
	require.False(t, p.Has(auth.Ingest))
	require.False(t, p.Reaches("payments"))
	require.False(t, p.Reaches(""))

	require.NoError(t, e.pool.QueryRow(ctx, `SELECT last_used_at FROM api_keys WHERE id = $1`, k.ID).Scan(&used))
	require.NotNil(t, used)
	require.True(t, used.Equal(t0.Add(time.Minute)), "last used %v", used)
	listed, err := e.svc.Keys(ctx, operator, false)
	require.NoError(t, err)
	require.Len(t, listed, 1)
	require.True(t, listed[0].LastUsed.Equal(t0.Add(time.Minute)))

	// Uses are recorded at most once a minute per key.
	e.clock.Advance(30 * time.Second)
	e.principal(t, secret)
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT last_used_at FROM api_keys WHERE id = $1`, k.ID).Scan(&used))
	require.True(t, used.Equal(t0.Add(time.Minute)))
	e.clock.Advance(time.Minute)
	e.principal(t, secret)
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT last_used_at FROM api_keys WHERE id = $1`, k.ID).Scan(&used))
	require.True(t, used.Equal(t0.Add(150*time.Second)))

	// An admin's key without a team reaches every team.
	_, all, err := e.svc.CreateKey(ctx, adminU, access.Key{Name: "ops", Scopes: []auth.Scope{auth.ScopeAdmin}})
	require.NoError(t, err)
	pa := e.principal(t, all)
	require.True(t, pa.AllTeams)
	require.True(t, pa.Unowned)
	require.True(t, pa.Has(auth.Admin))

	e.refused(t, secret[:len(secret)-1], "a key with a character missing")
	e.refused(t, secret+"x", "a key with a character more")
}

func TestRevokeKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{})
	ctx := context.Background()
	// The user the keys act for.
	e.createUser(t, "olga", auth.RoleOperator, "payments", "search")
	e.createUser(t, "ada", auth.RoleAdmin)
	k, secret, err := e.svc.CreateKey(ctx, operator, access.Key{Name: "ci", Scopes: []auth.Scope{auth.ScopeRead}, Team: "payments"})
	require.NoError(t, err)
	_, adminSecret, err := e.svc.CreateKey(ctx, adminU, access.Key{Name: "ops", Scopes: []auth.Scope{auth.ScopeRead}})
	require.NoError(t, err)
	adminKey := e.principal(t, adminSecret)
	e.principal(t, secret) // remembered now

	other := auth.Principal{Kind: auth.KindUser, Name: "sam", Role: auth.RoleOperator, Teams: []string{"search"}}
	_, err = e.svc.RevokeKey(ctx, other, k.ID)
	require.Equal(t, codes.PermissionDenied, status.Code(err), "another team's key")
	_, err = e.svc.RevokeKey(ctx, operator, adminKey.KeyID)
	require.Equal(t, codes.PermissionDenied, status.Code(err), "a key of every team")
	_, err = e.svc.RevokeKey(ctx, operator, "not-a-uuid")
	require.ErrorIs(t, err, access.ErrNotFound)
	_, err = e.svc.RevokeKey(ctx, operator, "01900000-0000-7000-8000-000000000000")
	require.ErrorIs(t, err, access.ErrNotFound)
	e.principal(t, secret)

	e.clock.Advance(time.Second)
	revoked, err := e.svc.RevokeKey(ctx, operator, k.ID)
	require.NoError(t, err)
	require.True(t, revoked.Revoked.Equal(t0.Add(time.Second)))
	e.refused(t, secret, "a revoked key, at once")

	e.clock.Advance(time.Second)
	again, err := e.svc.RevokeKey(ctx, adminU, k.ID)
	require.NoError(t, err)
	require.True(t, again.Revoked.Equal(t0.Add(time.Second)), "revoking again keeps the first time")

	active, err := e.svc.Keys(ctx, operator, false)
	require.NoError(t, err)
	require.Empty(t, active)
	all, err := e.svc.Keys(ctx, operator, true)
	require.NoError(t, err)
	require.Len(t, all, 1)
	require.Equal(t, k.ID, all[0].ID)
}

func TestExpiredKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{CacheTTL: 5 * time.Second})
	ctx := context.Background()
	// The user the keys act for.
	e.createUser(t, "olga", auth.RoleOperator, "payments", "search")
	e.createUser(t, "ada", auth.RoleAdmin)
	k, secret, err := e.svc.CreateKey(ctx, operator, access.Key{Name: "ci", Scopes: []auth.Scope{auth.ScopeRead}, Team: "payments", Expires: t0.Add(time.Hour)})
	require.NoError(t, err)
	require.True(t, k.Expires.Equal(t0.Add(time.Hour)))
	e.principal(t, secret)

	// Expired behind the service's back (another replica, an operator
	// with psql): refused once the cache has forgotten the key.
	_, err = e.pool.Exec(ctx, `UPDATE api_keys SET expires_at = $2 WHERE id = $1`, k.ID, t0.Add(-time.Second))
	require.NoError(t, err)
	e.clock.Advance(10 * time.Second)
	e.refused(t, secret, "a key past its expiry")
	listed, err := e.svc.Keys(ctx, operator, false)
	require.NoError(t, err)
	require.Empty(t, listed, "an expired key is not active")

	// And by the clock alone.
	_, secret2, err := e.svc.CreateKey(ctx, operator, access.Key{Name: "short", Scopes: []auth.Scope{auth.ScopeRead}, Team: "payments", Expires: e.clock.Now().Add(time.Minute)})
	require.NoError(t, err)
	e.principal(t, secret2)
	e.clock.Advance(2 * time.Minute)
	e.refused(t, secret2, "a key past its expiry")
}

func TestCreateKeyRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{})
	ctx := context.Background()
	scopes := func(s ...auth.Scope) []auth.Scope { return s }
	tests := []struct {
		name   string
		caller auth.Principal
		key    access.Key
		code   codes.Code // of a refusal; OK when allowed
		fields []string   // of an invalid request
	}{
		{name: "operator, own team", caller: operator, key: access.Key{Name: "a", Scopes: scopes(auth.ScopeRead, auth.ScopeOperate), Team: "payments"}},
		{name: "operator, ingest", caller: operator, key: access.Key{Name: "a", Scopes: scopes(auth.ScopeIngest), Team: "search"}},
		{name: "operator, admin scope", caller: operator, key: access.Key{Name: "a", Scopes: scopes(auth.ScopeAdmin), Team: "payments"}, code: codes.PermissionDenied},
		{name: "operator, admin among others", caller: operator, key: access.Key{Name: "a", Scopes: scopes(auth.ScopeRead, auth.ScopeAdmin), Team: "payments"}, code: codes.PermissionDenied},
		{name: "operator, another team", caller: operator, key: access.Key{Name: "a", Scopes: scopes(auth.ScopeRead), Team: "billing"}, code: codes.PermissionDenied},
		{name: "operator, no team", caller: operator, key: access.Key{Name: "a", Scopes: scopes(auth.ScopeRead)}, fields: []string{"key.team"}},
		{name: "viewer, read", caller: viewer, key: access.Key{Name: "a", Scopes: scopes(auth.ScopeRead), Team: "payments"}},
		{name: "viewer, operate", caller: viewer, key: access.Key{Name: "a", Scopes: scopes(auth.ScopeOperate), Team: "payments"}, code: codes.PermissionDenied},
		{name: "viewer, ingest", caller: viewer, key: access.Key{Name: "a", Scopes: scopes(auth.ScopeIngest), Team: "payments"}, code: codes.PermissionDenied},
		{name: "read key makes no keys", caller: auth.Principal{Kind: auth.KindKey, Name: "k", Scopes: scopes(auth.ScopeRead), Teams: []string{"payments"}}, key: access.Key{Name: "a", Scopes: scopes(auth.ScopeOperate), Team: "payments"}, code: codes.PermissionDenied},
		{name: "admin, no team", caller: adminU, key: access.Key{Name: "a", Scopes: scopes(auth.ScopeAdmin)}},
		{name: "admin, any team", caller: adminU, key: access.Key{Name: "a", Scopes: scopes(auth.ScopeIngest), Team: "billing"}},
		{name: "bootstrap, no team", caller: bootstrap(t), key: access.Key{Name: "a", Scopes: scopes(auth.ScopeOperate)}},
		{name: "no name, no scopes", caller: adminU, key: access.Key{}, fields: []string{"key.name", "key.scopes"}},
		{name: "long name", caller: adminU, key: access.Key{Name: strings.Repeat("n", 65), Scopes: scopes(auth.ScopeRead)}, fields: []string{"key.name"}},
		{name: "unknown scope", caller: adminU, key: access.Key{Name: "a", Scopes: scopes(auth.ScopeRead, "root")}, fields: []string{"key.scopes[1]"}},
		{name: "bad team", caller: adminU, key: access.Key{Name: "a", Scopes: scopes(auth.ScopeRead), Team: "Pay_ments"}, fields: []string{"key.team"}},
		{name: "expired already", caller: adminU, key: access.Key{Name: "a", Scopes: scopes(auth.ScopeRead), Expires: t0}, fields: []string{"key.expire_time"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, secret, err := e.svc.CreateKey(ctx, tt.caller, tt.key)
			switch {
			case tt.fields != nil:
				require.Equal(t, tt.fields, invalidFields(err), "error: %v", err)
			case tt.code != codes.OK:
				require.Equal(t, tt.code, status.Code(err), "error: %v", err)
			default:
				require.NoError(t, err)
				require.NotEmpty(t, secret)
				require.Equal(t, tt.key.Team, k.Team)
				return
			}
			require.Empty(t, secret)
		})
	}
}

// TestKeysList: a caller lists the keys of their teams; an admin, all.
func TestKeysList(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{})
	ctx := context.Background()
	mk := func(caller auth.Principal, name, team string) {
		t.Helper()
		e.clock.Advance(time.Second)
		_, _, err := e.svc.CreateKey(ctx, caller, access.Key{Name: name, Scopes: []auth.Scope{auth.ScopeRead}, Team: team})
		require.NoError(t, err)
	}
	mk(operator, "p1", "payments")
	mk(operator, "s1", "search")
	mk(adminU, "b1", "billing")
	mk(adminU, "all", "")
	names := func(caller auth.Principal) []string {
		t.Helper()
		ks, err := e.svc.Keys(ctx, caller, false)
		require.NoError(t, err)
		var out []string
		for _, k := range ks {
			out = append(out, k.Name)
		}
		return out
	}
	require.Equal(t, []string{"s1", "p1"}, names(operator), "newest first, own teams only")
	require.Equal(t, []string{"p1"}, names(viewer))
	require.Equal(t, []string{"all", "b1", "s1", "p1"}, names(adminU))
}

// A key works only while the user it acts for does: disabling its maker
// stops it at once on the replica that disabled, within the cache's
// bound on the others; a key made by that key stops with it. The keys
// are not revoked: enabling the user again brings them back.
func TestDisabledCreatorsKeyRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{CacheTTL: 5 * time.Second})
	ctx := context.Background()
	e.createUser(t, "olga", auth.RoleOperator, "payments", "search")
	e.createUser(t, "ada", auth.RoleAdmin)
	k, secret, err := e.svc.CreateKey(ctx, operator, access.Key{Name: "ci", Scopes: []auth.Scope{auth.ScopeRead, auth.ScopeOperate}, Team: "payments"})
	require.NoError(t, err)
	require.Equal(t, "olga", k.Owner)
	byKey := e.principal(t, secret)
	_, secret2, err := e.svc.CreateKey(ctx, byKey, access.Key{Name: "child", Scopes: []auth.Scope{auth.ScopeRead}, Team: "payments"})
	require.NoError(t, err)
	e.principal(t, secret2)

	// Another replica, which has both keys in its cache.
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	other := access.New(access.Options{CacheTTL: 5 * time.Second, Now: e.clock.Now}, e.store, auth.NewKeySet(priv),
		access.NewHasher(fastParams, 1), "", testkit.Logger(t))
	for _, s := range []string{secret, secret2} {
		_, err := other.Authenticate(ctx, s)
		require.NoError(t, err)
	}

	_, err = e.svc.UpdateUser(ctx, "olga", func(u *access.User) error { u.Disabled = true; return nil })
	require.NoError(t, err)
	e.refused(t, secret, "at once on the replica that disabled olga")
	e.refused(t, secret2, "a key made by olga's key")
	e.clock.Advance(6 * time.Second)
	for _, s := range []string{secret, secret2} {
		_, err := other.Authenticate(ctx, s)
		require.ErrorIs(t, err, auth.ErrUnauthenticated, "on another replica once its cache has forgotten")
	}

	// Nothing else changed: the keys are listed, not revoked.
	keys, err := e.svc.Keys(ctx, adminU, true)
	require.NoError(t, err)
	require.Len(t, keys, 2)
	for _, k := range keys {
		require.True(t, k.Revoked.IsZero(), k.Name)
	}
	_, err = e.svc.UpdateUser(ctx, "olga", func(u *access.User) error { u.Disabled = false; return nil })
	require.NoError(t, err)
	e.principal(t, secret)
	e.principal(t, secret2)

	// The bootstrap token's keys act for nobody, and keep working.
	k3, secret3, err := e.svc.CreateKey(ctx, bootstrap(t), access.Key{Name: "am", Scopes: []auth.Scope{auth.ScopeIngest}})
	require.NoError(t, err)
	require.Empty(t, k3.Owner)
	e.principal(t, secret3)
}

// Keys of anyone but an admin expire: by default after KeyDefaultTTL, and
// never later than KeyMaxTTL; asking for longer is refused, and no key is
// made. An admin's key may live longer, or forever.
func TestOperatorKeyLifetime(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{KeyDefaultTTL: 30 * 24 * time.Hour, KeyMaxTTL: 90 * 24 * time.Hour})
	ctx := context.Background()
	read := []auth.Scope{auth.ScopeRead}

	k, _, err := e.svc.CreateKey(ctx, operator, access.Key{Name: "default", Scopes: read, Team: "payments"})
	require.NoError(t, err)
	require.True(t, k.Expires.Equal(t0.Add(30*24*time.Hour)), "%s", k.Expires)
	k, _, err = e.svc.CreateKey(ctx, operator, access.Key{Name: "max", Scopes: read, Team: "payments", Expires: t0.Add(90 * 24 * time.Hour)})
	require.NoError(t, err)
	require.True(t, k.Expires.Equal(t0.Add(90*24*time.Hour)))

	for _, caller := range []auth.Principal{operator, viewer, {Kind: auth.KindKey, Name: "k", Scopes: []auth.Scope{auth.ScopeRead, auth.ScopeOperate}, Teams: []string{"payments"}}} {
		_, secret, err := e.svc.CreateKey(ctx, caller, access.Key{Name: "long", Scopes: read, Team: "payments", Expires: t0.Add(91 * 24 * time.Hour)})
		require.Equal(t, []string{"key.expire_time"}, invalidFields(err), "%s: %v", caller, err)
		require.ErrorContains(t, err, "only an admin's keys may live longer than 2160h0m0s")
		require.Empty(t, secret)
	}
	keys, err := e.svc.Keys(ctx, adminU, true)
	require.NoError(t, err)
	require.Len(t, keys, 2, "no key was made for the refusals")

	k, _, err = e.svc.CreateKey(ctx, adminU, access.Key{Name: "am", Scopes: []auth.Scope{auth.ScopeIngest}, Team: "payments"})
	require.NoError(t, err)
	require.True(t, k.Expires.IsZero(), "an admin's key may never expire")
	k, _, err = e.svc.CreateKey(ctx, bootstrap(t), access.Key{Name: "ci", Scopes: read, Expires: t0.Add(5 * 365 * 24 * time.Hour)})
	require.NoError(t, err)
	require.True(t, k.Expires.Equal(t0.Add(5*365*24*time.Hour)))
}
