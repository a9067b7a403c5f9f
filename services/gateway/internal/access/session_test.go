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

func TestLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{AccessTTL: 10 * time.Minute, RefreshTTL: 24 * time.Hour, DefaultTeam: "ops"})
	ctx := context.Background()
	e.createUser(t, "olga", auth.RoleOperator, "payments", "search")
	e.createUser(t, "otto", auth.RoleOperator, "ops")
	e.createUser(t, "ada", auth.RoleAdmin)
	_, err := e.svc.CreateUser(ctx, access.User{Name: "dora", Role: auth.RoleAdmin, Disabled: true}, password)
	require.NoError(t, err)

	t.Run("refused", func(t *testing.T) {
		for _, tt := range []struct{ name, user, pw string }{
			{"wrong password", "olga", password + "!"},
			{"empty password", "olga", ""},
			{"unknown user", "nobody", password},
			{"disabled user", "dora", password},
			{"name in another case", "Olga", password},
		} {
			_, _, err := e.svc.Login(ctx, tt.user, tt.pw, "")
			require.ErrorIs(t, err, auth.ErrUnauthenticated, tt.name)
		}
	})

	e.clock.Advance(time.Hour)
	now := e.clock.Now()
	tok, u, err := e.svc.Login(ctx, "olga", password, "")
	require.NoError(t, err)
	require.Equal(t, "olga", u.Name)
	require.True(t, u.LastLogin.Equal(now))
	require.True(t, strings.HasPrefix(tok.Refresh, access.RefreshPrefix), tok.Refresh)
	require.True(t, auth.LooksLikeJWT(tok.Access))
	require.True(t, tok.AccessExpires.Equal(now.Add(10*time.Minute)), "access expires %v", tok.AccessExpires)
	require.True(t, tok.RefreshExpires.Equal(now.Add(24*time.Hour)), "refresh expires %v", tok.RefreshExpires)

	stored, err := e.svc.User(ctx, "olga")
	require.NoError(t, err)
	require.True(t, stored.LastLogin.Equal(now), "last login %v", stored.LastLogin)
	never, err := e.svc.User(ctx, "otto")
	require.NoError(t, err)
	require.True(t, never.LastLogin.IsZero())

	p := e.principal(t, tok.Access)
	require.NotEmpty(t, p.SessionID)
	require.Equal(t, auth.Principal{
		Kind: auth.KindUser, Name: "olga", Role: auth.RoleOperator, Teams: []string{"payments", "search"}, SessionID: p.SessionID,
	}, p)
	require.True(t, p.Has(auth.Operate))
	require.False(t, p.Has(auth.Admin))
	require.False(t, p.Reaches(""), "not in the default team")

	otto := e.principal(t, e.login(t, "otto").Access)
	require.True(t, otto.Unowned, "the default team reaches what no team owns")
	require.False(t, otto.AllTeams)
	ada := e.principal(t, e.login(t, "ada").Access)
	require.True(t, ada.AllTeams)
	require.True(t, ada.Unowned)

	// Each login is a session of its own.
	again := e.principal(t, e.login(t, "olga").Access)
	require.NotEqual(t, p.SessionID, again.SessionID)

	// The refresh token is not an access token.
	e.refused(t, tok.Refresh, "a refresh token")
}

// TestAccessTokenForOtherAudience: a token signed by the gateway's key for
// a service (an assertion) is not a session token.
func TestAccessTokenNeedsASession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{})
	e.createUser(t, "olga", auth.RoleOperator, "payments")
	tok := e.login(t, "olga")
	// Drop the session row: the token, validly signed, no longer names one.
	_, err := e.pool.Exec(context.Background(), `DELETE FROM sessions`)
	require.NoError(t, err)
	e.clock.Advance(time.Minute) // past the cache
	e.refused(t, tok.Access, "a token of a session that is gone")
}

func TestRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{AccessTTL: 10 * time.Minute, RefreshTTL: 24 * time.Hour})
	ctx := context.Background()
	e.createUser(t, "olga", auth.RoleOperator, "payments")
	first := e.login(t, "olga")
	session := e.principal(t, first.Access).SessionID

	e.clock.Advance(5 * time.Minute)
	second, u, err := e.svc.Refresh(ctx, first.Refresh)
	require.NoError(t, err)
	require.Equal(t, "olga", u.Name)
	require.NotEqual(t, first.Access, second.Access)
	require.NotEqual(t, first.Refresh, second.Refresh)
	require.True(t, second.AccessExpires.Equal(e.clock.Now().Add(10*time.Minute)))
	require.True(t, second.RefreshExpires.Equal(first.RefreshExpires), "a refresh does not extend the session")
	require.Equal(t, session, e.principal(t, second.Access).SessionID, "the same session")

	_, _, err = e.svc.Refresh(ctx, "vgr_never-issued")
	require.ErrorIs(t, err, auth.ErrUnauthenticated)

	// Presented again a while after it was replaced, a used token was
	// copied: the session ends, for the thief and the owner alike.
	e.clock.Advance(time.Minute)
	_, _, err = e.svc.Refresh(ctx, first.Refresh)
	require.ErrorIs(t, err, auth.ErrUnauthenticated, "a refresh token works once")
	_, _, err = e.svc.Refresh(ctx, second.Refresh)
	require.ErrorIs(t, err, auth.ErrUnauthenticated, "the session of a reused token is revoked")
	e.refused(t, second.Access, "the access token of a revoked session, at once")

	// Other sessions of the user are not touched.
	other := e.login(t, "olga")
	_, _, err = e.svc.Refresh(ctx, other.Refresh)
	require.NoError(t, err)
}

// TestRefreshReuseOfAnOlderToken: a thief who refreshed a stolen token
// more than once is still found out when the owner presents the token
// it stole.
func TestRefreshReuseOfAnOlderToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{})
	ctx := context.Background()
	e.createUser(t, "olga", auth.RoleOperator, "payments")
	stolen := e.login(t, "olga")
	latest := stolen
	for range 3 {
		e.clock.Advance(10 * time.Minute)
		next, _, err := e.svc.Refresh(ctx, latest.Refresh)
		require.NoError(t, err)
		latest = next
	}
	e.principal(t, latest.Access)
	e.clock.Advance(time.Minute)
	_, _, err := e.svc.Refresh(ctx, stolen.Refresh)
	require.ErrorIs(t, err, auth.ErrUnauthenticated)
	_, _, err = e.svc.Refresh(ctx, latest.Refresh)
	require.ErrorIs(t, err, auth.ErrUnauthenticated, "the session of a reused token is revoked, however old the token")
	e.refused(t, latest.Access, "the access token of a revoked session")
}

// TestRefreshRace: two clients of one session refreshing at the same
// moment is not theft; the loser is refused, the session lives on.
func TestRefreshRace(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{})
	ctx := context.Background()
	e.createUser(t, "olga", auth.RoleOperator, "payments")
	first := e.login(t, "olga")
	e.clock.Advance(time.Minute)
	winner, _, err := e.svc.Refresh(ctx, first.Refresh)
	require.NoError(t, err)
	_, _, err = e.svc.Refresh(ctx, first.Refresh)
	require.ErrorIs(t, err, auth.ErrUnauthenticated)
	_, _, err = e.svc.Refresh(ctx, winner.Refresh)
	require.NoError(t, err)
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{AccessTTL: time.Minute, RefreshTTL: time.Hour})
	ctx := context.Background()
	e.createUser(t, "olga", auth.RoleOperator, "payments")
	tok := e.login(t, "olga")
	e.principal(t, tok.Access)

	e.clock.Advance(2 * time.Minute)
	e.refused(t, tok.Access, "an access token past AccessTTL")
	next, _, err := e.svc.Refresh(ctx, tok.Refresh)
	require.NoError(t, err, "the session outlives its access tokens")
	e.principal(t, next.Access)

	e.clock.Advance(time.Hour)
	_, _, err = e.svc.Refresh(ctx, next.Refresh)
	require.ErrorIs(t, err, auth.ErrUnauthenticated, "a session past RefreshTTL")
	e.refused(t, next.Access, "expired long ago")

	// An access token never outlives its session.
	e2 := newEnv(t, access.Options{AccessTTL: 2 * time.Hour, RefreshTTL: time.Hour})
	e2.createUser(t, "olga", auth.RoleOperator, "payments")
	tok = e2.login(t, "olga")
	require.True(t, tok.AccessExpires.Equal(tok.RefreshExpires), "access %v, session %v", tok.AccessExpires, tok.RefreshExpires)
	e2.clock.Advance(time.Hour + time.Minute)
	e2.refused(t, tok.Access, "an access token of an expired session")
}

func TestLogout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{})
	ctx := context.Background()
	e.createUser(t, "olga", auth.RoleOperator, "payments")
	e.createUser(t, "otto", auth.RoleOperator, "payments")

	// With the access token: that session ends at once on this replica,
	// though the token was remembered.
	a := e.login(t, "olga")
	b := e.login(t, "olga")
	pa := e.principal(t, a.Access)
	e.principal(t, b.Access)
	require.NoError(t, e.svc.Logout(ctx, pa, ""))
	e.refused(t, a.Access, "the logged-out session's access token")
	_, _, err := e.svc.Refresh(ctx, a.Refresh)
	require.ErrorIs(t, err, auth.ErrUnauthenticated, "the logged-out session's refresh token")
	e.principal(t, b.Access)

	// With the refresh token alone (an expired access token, or none).
	require.NoError(t, e.svc.Logout(ctx, auth.Principal{}, b.Refresh))
	e.refused(t, b.Access, "the session of the refresh token")
	_, _, err = e.svc.Refresh(ctx, b.Refresh)
	require.ErrorIs(t, err, auth.ErrUnauthenticated)

	// A user logs out only their own session.
	c := e.login(t, "otto")
	require.ErrorIs(t, e.svc.Logout(ctx, auth.Principal{Kind: auth.KindUser, Name: "olga", SessionID: e.principal(t, c.Access).SessionID}, ""), access.ErrNotFound)
	e.principal(t, c.Access)

	// A key has no session to end.
	err = e.svc.Logout(ctx, auth.Principal{Kind: auth.KindKey, Name: "ci"}, "")
	require.Equal(t, codes.FailedPrecondition, status.Code(err))
}

func TestDisableUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{})
	ctx := context.Background()
	e.createUser(t, "olga", auth.RoleOperator, "payments")
	a, b := e.login(t, "olga"), e.login(t, "olga")
	e.principal(t, a.Access)
	e.principal(t, b.Access)

	u, err := e.svc.UpdateUser(ctx, "olga", func(u *access.User) error { u.Disabled = true; return nil })
	require.NoError(t, err)
	require.True(t, u.Disabled)
	for _, tok := range []access.Tokens{a, b} {
		e.refused(t, tok.Access, "a disabled user's token, at once")
		_, _, err = e.svc.Refresh(ctx, tok.Refresh)
		require.ErrorIs(t, err, auth.ErrUnauthenticated)
	}
	_, _, err = e.svc.Login(ctx, "olga", password, "")
	require.ErrorIs(t, err, auth.ErrUnauthenticated)

	// Enabled again, the user logs in anew: the old sessions stay ended.
	_, err = e.svc.UpdateUser(ctx, "olga", func(u *access.User) error { u.Disabled = false; return nil })
	require.NoError(t, err)
	e.refused(t, a.Access, "a session ended by disabling")
	e.principal(t, e.login(t, "olga").Access)
}

// TestUpdateUserCountsAtOnce: what a user may do is read from their row,
// not from the token, so a change counts at the next call.
func TestUpdateUserCountsAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{})
	ctx := context.Background()
	e.createUser(t, "olga", auth.RoleViewer, "payments")
	tok := e.login(t, "olga")
	require.False(t, e.principal(t, tok.Access).Has(auth.Operate))

	_, err := e.svc.UpdateUser(ctx, "olga", func(u *access.User) error {
		u.Role, u.Teams = auth.RoleOperator, []string{"search", "search"}
		return nil
	})
	require.NoError(t, err)
	p := e.principal(t, tok.Access)
	require.True(t, p.Has(auth.Operate))
	require.Equal(t, []string{"search"}, p.Teams)

	_, err = e.svc.UpdateUser(ctx, "olga", func(u *access.User) error { u.Role = "root"; return nil })
	require.Equal(t, []string{"user.role"}, invalidFields(err))
	_, err = e.svc.UpdateUser(ctx, "nobody", func(*access.User) error { return nil })
	require.ErrorIs(t, err, access.ErrNotFound)
	require.Equal(t, auth.RoleOperator, e.principal(t, tok.Access).Role, "a refused update changes nothing")
}

func TestSetPassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{})
	ctx := context.Background()
	e.createUser(t, "olga", auth.RoleOperator, "payments")
	e.createUser(t, "otto", auth.RoleOperator, "payments")
	const newPassword = "a much better passphrase"

	mine, other := e.login(t, "olga"), e.login(t, "olga")
	caller := e.principal(t, mine.Access)
	e.principal(t, other.Access)

	err := e.svc.SetPassword(ctx, caller, "olga", newPassword, "not my password")
	require.Equal(t, []string{"current_password"}, invalidFields(err))
	err = e.svc.SetPassword(ctx, caller, "olga", "short", password)
	require.Equal(t, []string{"password"}, invalidFields(err))
	err = e.svc.SetPassword(ctx, caller, "otto", newPassword, password)
	require.Equal(t, codes.PermissionDenied, status.Code(err), "an operator sets only their own password")
	e.principal(t, other.Access)

	require.NoError(t, e.svc.SetPassword(ctx, caller, "olga", newPassword, password))
	e.principal(t, mine.Access)
	e.refused(t, other.Access, "the user's other sessions end")
	_, _, err = e.svc.Refresh(ctx, other.Refresh)
	require.ErrorIs(t, err, auth.ErrUnauthenticated)
	_, _, err = e.svc.Refresh(ctx, mine.Refresh)
	require.NoError(t, err, "the caller's own session lives on")
	_, _, err = e.svc.Login(ctx, "olga", password, "")
	require.ErrorIs(t, err, auth.ErrUnauthenticated, "the old password")
	_, _, err = e.svc.Login(ctx, "olga", newPassword, "")
	require.NoError(t, err)

	// An admin sets anyone's, without theirs, and every session of the
	// user ends.
	otto := e.login(t, "otto")
	require.NoError(t, e.svc.SetPassword(ctx, bootstrap(t), "otto", newPassword, ""))
	e.refused(t, otto.Access, "an admin's reset ends every session")
	_, _, err = e.svc.Login(ctx, "otto", newPassword, "")
	require.NoError(t, err)
	require.ErrorIs(t, e.svc.SetPassword(ctx, bootstrap(t), "nobody", newPassword, ""), access.ErrNotFound)
}
