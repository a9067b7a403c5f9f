package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
)

// sessionsDir is where the sessions are stored, as a person would find
// them.
func sessionsDir(t *testing.T) string {
	t.Helper()
	dir, err := os.UserConfigDir()
	require.NoError(t, err)
	return filepath.Join(dir, "vigil", "sessions")
}

// readSessionFile reads the session stored for addr.
func readSessionFile(t *testing.T, addr string) (session, os.FileInfo) {
	t.Helper()
	path := filepath.Join(sessionsDir(t), strings.ReplaceAll(addr, ":", "_")+".json")
	info, err := os.Stat(path)
	require.NoError(t, err)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var s session
	require.NoError(t, json.Unmarshal(b, &s))
	return s, info
}

func requireNoSessionFile(t *testing.T, addr string) {
	t.Helper()
	require.NoFileExists(t, filepath.Join(sessionsDir(t), strings.ReplaceAll(addr, ":", "_")+".json"))
}

// login logs in to the fake at addr as alice.
func login(t *testing.T, f *fakeGateway, addr string) {
	t.Helper()
	_, err := runAccess(t, loginCommand, addr, testPassword+"\n", "--user", "alice", "--password-stdin")
	require.NoError(t, err)
	f.takeCalls()
}

func TestLoginStoresSession(t *testing.T) {
	f, addr := startGateway(t)
	out, err := runAccess(t, loginCommand, addr, testPassword+"\n", "--user", "alice", "--password-stdin")
	require.NoError(t, err)
	calls := f.takeCalls()
	require.Len(t, calls, 1)
	require.Equal(t, "Login", calls[0].method)
	require.Empty(t, calls[0].token, "login needs no credentials")
	requireProto(t, &gatewayv1.LoginRequest{Username: "alice", Password: testPassword}, calls[0].req)
	require.Contains(t, out.stdout, "Logged in to "+addr+" as alice (operator) until "+when(f.tokens.GetRefreshExpireTime()))

	s, info := readSessionFile(t, addr)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	dir, err := os.Stat(sessionsDir(t))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), dir.Mode().Perm())
	require.Equal(t, session{
		Addr: addr, User: "alice",
		AccessToken: "access-1", AccessExpireTime: f.tokens.GetAccessExpireTime().AsTime(),
		RefreshToken: "refresh-1", RefreshExpireTime: f.tokens.GetRefreshExpireTime().AsTime(),
	}, s)
	entries, err := os.ReadDir(sessionsDir(t))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left behind")

	// -o json shows the session's times, never its tokens.
	out, err = runAccess(t, loginCommand, addr, testPassword+"\n", "--user", "alice", "--password-stdin", "-o", "json")
	require.NoError(t, err)
	require.Contains(t, out.stdout, `"refresh_expire_time"`)
	require.NotContains(t, out.stdout, "access-2")
	require.NotContains(t, out.stdout, "refresh-2")
	s, _ = readSessionFile(t, addr)
	require.Equal(t, "refresh-2", s.RefreshToken, "a new login replaces the session")
}

func TestLoginWrongPasswordStoresNothing(t *testing.T) {
	_, addr := startGateway(t)
	_, err := runAccess(t, loginCommand, addr, "wrong password\n", "--user", "alice", "--password-stdin")
	require.ErrorContains(t, err, "Unauthenticated")
	requireNoSessionFile(t, addr)
}

func TestLoginPasswordSources(t *testing.T) {
	f, addr := startGateway(t)
	tests := []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"no user for the password on stdin", testPassword + "\n", []string{"--password-stdin"}, "--user"},
		{"stdin not a terminal", testPassword + "\n", []string{"--user", "alice"}, "--password-stdin"},
		{"empty stdin", "", []string{"--user", "alice", "--password-stdin"}, "--password-stdin"},
		{"empty password", "\n", []string{"--user", "alice", "--password-stdin"}, "empty password"},
	}
	for _, tt := range tests {
		_, err := runAccess(t, loginCommand, addr, tt.stdin, tt.args...)
		require.ErrorContains(t, err, tt.want, tt.name)
		require.Empty(t, f.takeCalls(), "%s: nothing is sent", tt.name)
	}
	require.Nil(t, loginCommand().Flags().Lookup("password"), "no password flag: it would show in ps and the shell history")

	// Only the line's end is taken off.
	_, err := runAccess(t, loginCommand, addr, testPassword+"\r\nignored\n", "--user", "alice", "--password-stdin")
	require.NoError(t, err)
	requireProto(t, &gatewayv1.LoginRequest{Username: "alice", Password: testPassword}, f.last(t, "Login"))
}

func TestSessionUsedWhenVIGILTokenUnset(t *testing.T) {
	f, addr := startGateway(t)
	login(t, f, addr)
	_, err := runAccess(t, keysCommand, addr, "", "list")
	require.NoError(t, err)
	calls := f.takeCalls()
	require.Len(t, calls, 1, "no refresh while the access token is fresh")
	require.Equal(t, "ListKeys", calls[0].method)
	require.Equal(t, "Bearer access-1", calls[0].token)

	t.Setenv("VIGIL_TOKEN", "env-token")
	_, err = runAccess(t, keysCommand, addr, "", "list")
	require.NoError(t, err)
	calls = f.takeCalls()
	require.Len(t, calls, 1)
	require.Equal(t, "Bearer env-token", calls[0].token, "VIGIL_TOKEN wins over the session")
}

func TestSessionRefreshesExpiringToken(t *testing.T) {
	f, addr := startGateway(t)
	f.accessTTL = 20 * time.Second // within refreshBefore
	login(t, f, addr)

	_, err := runAccess(t, keysCommand, addr, "", "list")
	require.NoError(t, err)
	calls := f.takeCalls()
	require.Len(t, calls, 2)
	require.Equal(t, "Refresh", calls[0].method)
	require.Empty(t, calls[0].token, "the refresh token is the credential")
	requireProto(t, &gatewayv1.RefreshRequest{RefreshToken: "refresh-1"}, calls[0].req)
	require.Equal(t, "ListKeys", calls[1].method)
	require.Equal(t, "Bearer access-2", calls[1].token)
	s, info := readSessionFile(t, addr)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	require.Equal(t, "access-2", s.AccessToken)
	require.Equal(t, "refresh-2", s.RefreshToken)
	require.Equal(t, f.tokens.GetAccessExpireTime().AsTime(), s.AccessExpireTime)

	// The next command refreshes with the refresh token stored last: the
	// first one works only once.
	_, err = runAccess(t, keysCommand, addr, "", "list")
	require.NoError(t, err)
	calls = f.takeCalls()
	require.Len(t, calls, 2)
	requireProto(t, &gatewayv1.RefreshRequest{RefreshToken: "refresh-2"}, calls[0].req)
	require.Equal(t, "Bearer access-3", calls[1].token)
}

func TestSessionRefreshesRefusedToken(t *testing.T) {
	f, addr := startGateway(t)
	login(t, f, addr)
	f.refused = "access-1"

	_, err := runAccess(t, keysCommand, addr, "", "list")
	require.NoError(t, err)
	calls := f.takeCalls()
	require.Len(t, calls, 3)
	require.Equal(t, []string{"ListKeys", "Refresh", "ListKeys"}, []string{calls[0].method, calls[1].method, calls[2].method})
	require.Equal(t, "Bearer access-1", calls[0].token)
	require.Equal(t, "Bearer access-2", calls[2].token)
	s, _ := readSessionFile(t, addr)
	require.Equal(t, "refresh-2", s.RefreshToken)
}

func TestSessionEnded(t *testing.T) {
	f, addr := startGateway(t)
	f.accessTTL = time.Second
	login(t, f, addr)
	f.mu.Lock()
	f.refresh = "" // revoked, say by an admin disabling the user
	f.mu.Unlock()

	_, err := runAccess(t, keysCommand, addr, "", "list")
	require.ErrorContains(t, err, "run `vigil login`")
	calls := f.takeCalls()
	require.Len(t, calls, 1)
	require.Equal(t, "Refresh", calls[0].method, "the expiring token is not sent")
}

func TestSessionNotLoggedIn(t *testing.T) {
	f, addr := startGateway(t)
	_, err := runAccess(t, keysCommand, addr, "", "list")
	require.ErrorContains(t, err, "not logged in to "+addr+": run `vigil login`, or set VIGIL_TOKEN or VIGIL_TOKEN_FILE (an API key or the bootstrap admin token)")
	require.Empty(t, f.takeCalls())
}

func TestSessionPerGateway(t *testing.T) {
	f1, addr1 := startGateway(t)
	f2, addr2 := startGateway(t)
	f2.prefix = "b-"
	useConfigDir(t, t.TempDir()) // the same for both
	login(t, f1, addr1)
	login(t, f2, addr2)

	_, err := runAccess(t, keysCommand, addr1, "", "list")
	require.NoError(t, err)
	require.Equal(t, "Bearer access-1", f1.takeCalls()[0].token)
	_, err = runAccess(t, keysCommand, addr2, "", "list")
	require.NoError(t, err)
	require.Equal(t, "Bearer b-access-1", f2.takeCalls()[0].token)

	_, err = runAccess(t, logoutCommand, addr2, "")
	require.NoError(t, err)
	requireNoSessionFile(t, addr2)
	s, _ := readSessionFile(t, addr1)
	require.Equal(t, "refresh-1", s.RefreshToken, "logging out of one gateway keeps the other's session")
}

func TestLoginLogout(t *testing.T) {
	f, addr := startGateway(t)
	login(t, f, addr)
	out, err := runAccess(t, logoutCommand, addr, "")
	require.NoError(t, err)
	require.Contains(t, out.stderr, "Logged out of "+addr)
	calls := f.takeCalls()
	require.Len(t, calls, 1)
	require.Equal(t, "Logout", calls[0].method)
	require.Equal(t, "Bearer access-1", calls[0].token)
	requireProto(t, &gatewayv1.LogoutRequest{RefreshToken: "refresh-1"}, calls[0].req)
	requireNoSessionFile(t, addr)

	out, err = runAccess(t, logoutCommand, addr, "")
	require.NoError(t, err)
	require.Contains(t, out.stderr, "Not logged in to "+addr)
	require.Empty(t, f.takeCalls())

	// A session the gateway has already ended is forgotten all the same.
	login(t, f, addr)
	f.logoutErr = status.Error(codes.Unauthenticated, "session revoked")
	_, err = runAccess(t, logoutCommand, addr, "")
	require.NoError(t, err)
	requireNoSessionFile(t, addr)

	// An expiring access token is refreshed first: Logout needs a valid one.
	f.logoutErr = nil
	f.accessTTL = time.Second
	login(t, f, addr)
	_, err = runAccess(t, logoutCommand, addr, "")
	require.NoError(t, err)
	calls = f.takeCalls()
	require.Len(t, calls, 2)
	require.Equal(t, "Logout", calls[1].method)
	require.Equal(t, "Refresh", calls[0].method)
	require.Equal(t, "Bearer access-4", calls[1].token)
	requireProto(t, &gatewayv1.LogoutRequest{RefreshToken: "refresh-4"}, calls[1].req)
	requireNoSessionFile(t, addr)

	// When the gateway cannot end it, the session is forgotten here, and
	// the error says it still works there.
	f.accessTTL = time.Hour
	login(t, f, addr)
	f.logoutErr = status.Error(codes.Internal, "database down")
	_, err = runAccess(t, logoutCommand, addr, "")
	require.ErrorContains(t, err, "did not end it")
	require.ErrorContains(t, err, "database down")
	requireNoSessionFile(t, addr)
}

func TestLoginWhoAmI(t *testing.T) {
	f, addr := startGateway(t)
	login(t, f, addr)
	out, err := runAccess(t, whoamiCommand, addr, "")
	require.NoError(t, err)
	require.Equal(t, "Bearer access-1", f.takeCalls()[0].token)
	require.Contains(t, out.stdout, "Kind:   user")
	require.Contains(t, out.stdout, "Role:   operator")
	require.Contains(t, out.stdout, "Teams:  shop")

	f.principal = &gatewayv1.Principal{Kind: "key", Name: "ci", KeyId: "k1", Scopes: []gatewayv1.Scope{gatewayv1.Scope_SCOPE_READ, gatewayv1.Scope_SCOPE_OPERATE}, AllTeams: true}
	out, err = runAccess(t, whoamiCommand, addr, "")
	require.NoError(t, err)
	require.Contains(t, out.stdout, "Scopes:  read,operate")
	require.Contains(t, out.stdout, "Teams:   all")
	require.NotContains(t, out.stdout, "Role:")
}
