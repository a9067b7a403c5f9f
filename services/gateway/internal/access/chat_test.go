package access_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
)

var bothChats = access.Options{ChatProviders: []access.ChatProvider{access.Telegram, access.Slack}}

// linkCode creates a code for user as themselves.
func (e *env) linkCode(t *testing.T, user string, p access.ChatProvider) access.ChatLinkCode {
	t.Helper()
	c, err := e.svc.CreateChatLinkCode(context.Background(), e.principal(t, e.login(t, user).Access), p)
	require.NoError(t, err)
	return c
}

// identities returns user's linked accounts as "provider:id".
func (e *env) identities(t *testing.T, user string) []string {
	t.Helper()
	u, err := e.svc.User(context.Background(), user)
	require.NoError(t, err)
	var out []string
	for _, id := range u.ChatIdentities {
		out = append(out, string(id.Provider)+":"+id.ExternalID)
	}
	return out
}

func TestChatLinkCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bothChats)
	ctx := context.Background()
	e.createUser(t, "alice", auth.RoleOperator, "payments")
	e.createUser(t, "bob", auth.RoleViewer)

	c := e.linkCode(t, "alice", access.Telegram)
	require.Regexp(t, `^[0-9A-HJKMNP-TV-Z]{8}$`, c.Code, "8 characters of Crockford's base32")
	require.True(t, c.Expires.Equal(t0.Add(access.ChatLinkCodeTTL)), "expires %v", c.Expires)
	require.Contains(t, c.Instruction(), "/link "+c.Code)
	require.Contains(t, access.ChatLinkCode{Code: "ABCD2345", Provider: access.Slack}.Instruction(), "/vigil link ABCD2345")

	var stored int
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT count(*) FROM chat_link_codes WHERE hash = sha256($1::bytea)`, []byte(c.Code)).Scan(&stored))
	require.Zero(t, stored, "the code itself is not what is kept")

	// A code of another provider is not this one's, and is not used up.
	_, err := e.svc.RedeemChatLinkCode(ctx, access.Slack, c.Code, "T1:U1")
	require.ErrorIs(t, err, access.ErrLinkCode)

	// Typed sloppily: lower case, a dash, a space.
	typed := strings.ToLower(c.Code[:4]) + "- " + c.Code[4:]
	u, err := e.svc.RedeemChatLinkCode(ctx, access.Telegram, typed, "42")
	require.NoError(t, err)
	require.Equal(t, "alice", u.Name)
	require.Equal(t, []string{"telegram:42"}, e.identities(t, "alice"))
	require.Equal(t, "user:alice", u.ChatIdentities[0].LinkedBy)
	require.True(t, u.ChatIdentities[0].Linked.Equal(t0))

	// Single use.
	_, err = e.svc.RedeemChatLinkCode(ctx, access.Telegram, c.Code, "43")
	require.ErrorIs(t, err, access.ErrLinkCode)
	require.Equal(t, []string{"telegram:42"}, e.identities(t, "alice"))

	// Expired: 10 minutes is the limit.
	c = e.linkCode(t, "bob", access.Telegram)
	e.clock.Advance(access.ChatLinkCodeTTL)
	_, err = e.svc.RedeemChatLinkCode(ctx, access.Telegram, c.Code, "77")
	require.ErrorIs(t, err, access.ErrLinkCode)
	c = e.linkCode(t, "bob", access.Telegram)
	e.clock.Advance(access.ChatLinkCodeTTL - time.Second)
	_, err = e.svc.RedeemChatLinkCode(ctx, access.Telegram, c.Code, "77")
	require.NoError(t, err)
	require.Equal(t, []string{"telegram:77"}, e.identities(t, "bob"))

	// Not codes at all.
	for _, bad := range []string{"", "ABC", "ABCDEFGHJ", "ABCD234U", "ÄBCD2345"} {
		_, err = e.svc.RedeemChatLinkCode(ctx, access.Telegram, bad, "42")
		require.ErrorIs(t, err, access.ErrLinkCode, bad)
	}
	_, err = e.svc.RedeemChatLinkCode(ctx, access.Telegram, e.linkCode(t, "bob", access.Telegram).Code, "-1")
	require.Equal(t, []string{"external_id"}, invalidFields(err))
}

func TestChatLinkCodeKeepsAFewPerUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bothChats)
	ctx := context.Background()
	e.createUser(t, "alice", auth.RoleViewer)
	var codes []access.ChatLinkCode
	for range 5 {
		codes = append(codes, e.linkCode(t, "alice", access.Slack))
		e.clock.Advance(time.Second)
	}
	var n int
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT count(*) FROM chat_link_codes WHERE user_name = 'alice'`).Scan(&n))
	require.Equal(t, 3, n)
	_, err := e.svc.RedeemChatLinkCode(ctx, access.Slack, codes[1].Code, "T1:U1")
	require.ErrorIs(t, err, access.ErrLinkCode, "an older code is dropped")
	_, err = e.svc.RedeemChatLinkCode(ctx, access.Slack, codes[2].Code, "T1:U1")
	require.NoError(t, err, "the newest three work")
}

func TestChatLinkCodeRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{ChatProviders: []access.ChatProvider{access.Telegram}})
	ctx := context.Background()
	e.createUser(t, "alice", auth.RoleAdmin)
	alice := e.principal(t, e.login(t, "alice").Access)

	_, err := e.svc.CreateChatLinkCode(ctx, alice, access.Slack)
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "Slack is not set up: %v", err)
	require.ErrorContains(t, err, "VIGIL_SLACK_SIGNING_SECRET")
	_, err = e.svc.CreateChatLinkCode(ctx, bootstrap(t), access.Telegram)
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "the bootstrap token is nobody: %v", err)
	_, err = e.svc.CreateChatLinkCode(ctx, auth.Principal{Kind: auth.KindKey, Name: "ci", Scopes: []auth.Scope{auth.ScopeAdmin}}, access.Telegram)
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "a key is nobody: %v", err)
	_, err = e.svc.CreateChatLinkCode(ctx, alice, "irc")
	require.Equal(t, []string{"provider"}, invalidFields(err))

	// A disabled user's code links nothing.
	e.createUser(t, "dora", auth.RoleViewer)
	c := e.linkCode(t, "dora", access.Telegram)
	_, err = e.svc.UpdateUser(ctx, "dora", func(u *access.User) error { u.Disabled = true; return nil })
	require.NoError(t, err)
	_, err = e.svc.RedeemChatLinkCode(ctx, access.Telegram, c.Code, "42")
	require.ErrorIs(t, err, access.ErrLinkCode)
	require.Empty(t, e.identities(t, "dora"))
}

func TestChatIdentityAdminMapping(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{})
	ctx := context.Background()
	e.createUser(t, "alice", auth.RoleOperator, "payments")
	e.createUser(t, "bob", auth.RoleViewer)
	admin := bootstrap(t)

	u, err := e.svc.LinkChatIdentity(ctx, admin, "alice", access.Slack, "T01:U01")
	require.NoError(t, err)
	require.Len(t, u.ChatIdentities, 1)
	id := u.ChatIdentities[0]
	require.True(t, id.Linked.Equal(t0), "linked %v", id.Linked)
	id.Linked = t0
	require.Equal(t, access.ChatIdentity{Provider: access.Slack, ExternalID: "T01:U01", User: "alice", Linked: t0, LinkedBy: "bootstrap:admin"}, id)
	_, err = e.svc.LinkChatIdentity(ctx, admin, "alice", access.Telegram, "1001")
	require.NoError(t, err)
	require.Equal(t, []string{"slack:T01:U01", "telegram:1001"}, e.identities(t, "alice"))

	// Relinking replaces, either way: alice's new Telegram account...
	_, err = e.svc.LinkChatIdentity(ctx, admin, "alice", access.Telegram, "1002")
	require.NoError(t, err)
	require.Equal(t, []string{"slack:T01:U01", "telegram:1002"}, e.identities(t, "alice"))
	// ...and alice's Slack account now bob's.
	_, err = e.svc.LinkChatIdentity(ctx, admin, "bob", access.Slack, "T01:U01")
	require.NoError(t, err)
	require.Equal(t, []string{"telegram:1002"}, e.identities(t, "alice"))
	require.Equal(t, []string{"slack:T01:U01"}, e.identities(t, "bob"))
	us, err := e.svc.Users(ctx)
	require.NoError(t, err)
	require.Len(t, us, 2)
	require.Len(t, us[0].ChatIdentities, 1, "lists carry the accounts too")

	_, err = e.svc.LinkChatIdentity(ctx, admin, "nobody", access.Telegram, "5")
	require.ErrorIs(t, err, access.ErrNotFound)
	for _, tt := range []struct {
		p     access.ChatProvider
		id    string
		field string
	}{
		{access.Telegram, "abc", "external_id"},
		{access.Telegram, "0", "external_id"},
		{access.Slack, "U01", "external_id"},
		{access.Slack, "t01:u01", "external_id"},
		{"irc", "x", "provider"},
	} {
		_, err = e.svc.LinkChatIdentity(ctx, admin, "alice", tt.p, tt.id)
		require.Equal(t, []string{tt.field}, invalidFields(err), "%s %s", tt.p, tt.id)
	}

	// Unlink: an admin for anyone, a user for themselves only.
	bob := e.principal(t, e.login(t, "bob").Access)
	_, err = e.svc.UnlinkChatIdentity(ctx, bob, "alice", access.Telegram)
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	require.Equal(t, []string{"telegram:1002"}, e.identities(t, "alice"))
	u, err = e.svc.UnlinkChatIdentity(ctx, bob, "bob", access.Slack)
	require.NoError(t, err)
	require.Empty(t, u.ChatIdentities)
	_, err = e.svc.UnlinkChatIdentity(ctx, bob, "bob", access.Slack)
	require.ErrorIs(t, err, access.ErrNotFound, "nothing left to unlink")
	_, err = e.svc.UnlinkChatIdentity(ctx, admin, "alice", access.Telegram)
	require.NoError(t, err)
	require.Empty(t, e.identities(t, "alice"))
}

func TestChatPrincipal(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{DefaultTeam: "ops"})
	ctx := context.Background()
	e.createUser(t, "olga", auth.RoleOperator, "payments", "ops")
	e.createUser(t, "ada", auth.RoleAdmin)
	admin := bootstrap(t)
	_, err := e.svc.LinkChatIdentity(ctx, admin, "olga", access.Telegram, "1001")
	require.NoError(t, err)
	_, err = e.svc.LinkChatIdentity(ctx, admin, "ada", access.Slack, "T01:U02")
	require.NoError(t, err)

	p, err := e.svc.ChatPrincipal(ctx, access.Telegram, "1001")
	require.NoError(t, err)
	require.Equal(t, auth.Principal{Kind: auth.KindUser, Name: "olga", Role: auth.RoleOperator, Teams: []string{"payments", "ops"}, Unowned: true}, p)
	p, err = e.svc.ChatPrincipal(ctx, access.Slack, "T01:U02")
	require.NoError(t, err)
	require.Equal(t, auth.Principal{Kind: auth.KindUser, Name: "ada", Role: auth.RoleAdmin, Teams: []string{}, AllTeams: true, Unowned: true}, p)

	// Unlinked: another account, another provider's namespace.
	_, err = e.svc.ChatPrincipal(ctx, access.Telegram, "1002")
	require.ErrorIs(t, err, auth.ErrUnauthenticated)
	_, err = e.svc.ChatPrincipal(ctx, access.Slack, "1001")
	require.ErrorIs(t, err, auth.ErrUnauthenticated)

	// A role change counts at once; a disabled user acts as nobody.
	_, err = e.svc.UpdateUser(ctx, "olga", func(u *access.User) error { u.Role = auth.RoleViewer; return nil })
	require.NoError(t, err)
	p, err = e.svc.ChatPrincipal(ctx, access.Telegram, "1001")
	require.NoError(t, err)
	require.Equal(t, auth.RoleViewer, p.Role)
	_, err = e.svc.UpdateUser(ctx, "olga", func(u *access.User) error { u.Disabled = true; return nil })
	require.NoError(t, err)
	_, err = e.svc.ChatPrincipal(ctx, access.Telegram, "1001")
	require.ErrorIs(t, err, auth.ErrUnauthenticated)

	_, err = e.svc.UnlinkChatIdentity(ctx, admin, "ada", access.Slack)
	require.NoError(t, err)
	_, err = e.svc.ChatPrincipal(ctx, access.Slack, "T01:U02")
	require.ErrorIs(t, err, auth.ErrUnauthenticated, "unlinked")
}
