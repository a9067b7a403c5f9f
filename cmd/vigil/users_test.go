package main

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
)

func TestUsersCreate(t *testing.T) {
	f, addr := startGateway(t)
	t.Setenv("VIGIL_TOKEN", "test-token")
	out, err := runAccess(t, usersCommand, addr, "a long enough password\n",
		"create", "bob", "--role", "operator", "--team", "shop,search", "--team", "payments", "--email", "bob@example.com", "--password-stdin")
	require.NoError(t, err)
	requireProto(t, &gatewayv1.CreateUserRequest{
		User:     &gatewayv1.User{Name: "bob", Role: gatewayv1.Role_ROLE_OPERATOR, Teams: []string{"shop", "search", "payments"}, Email: "bob@example.com"},
		Password: "a long enough password",
	}, f.last(t, "CreateUser"))
	require.Regexp(t, `Teams:\s+shop,search,payments\n`, out.stdout)
	require.NotContains(t, out.stdout+out.stderr, "a long enough password")

	tests := []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"no role", "pw\n", []string{"bob", "--password-stdin"}, "role"},
		{"bad role", "pw\n", []string{"bob", "--role", "root", "--password-stdin"}, `--role "root"`},
		{"stdin not a terminal", "pw\n", []string{"bob", "--role", "viewer"}, "--password-stdin"},
		{"no password", "", []string{"bob", "--role", "viewer", "--password-stdin"}, "--password-stdin"},
	}
	for _, tt := range tests {
		_, err := runAccess(t, usersCommand, addr, tt.stdin, append([]string{"create"}, tt.args...)...)
		require.ErrorContains(t, err, tt.want, tt.name)
		require.Empty(t, f.takeCalls(), "%s: nothing is sent", tt.name)
	}
}

func TestUsersUpdateSendsOnlyTheGivenFields(t *testing.T) {
	f, addr := startGateway(t)
	t.Setenv("VIGIL_TOKEN", "test-token")
	tests := []struct {
		args  []string
		user  *gatewayv1.User
		paths []string
	}{
		{[]string{"--role", "admin"}, &gatewayv1.User{Name: "bob", Role: gatewayv1.Role_ROLE_ADMIN}, []string{"role"}},
		{[]string{"--team", "shop", "--team", "search"}, &gatewayv1.User{Name: "bob", Teams: []string{"shop", "search"}}, []string{"teams"}},
		{[]string{"--clear-teams"}, &gatewayv1.User{Name: "bob"}, []string{"teams"}},
		{[]string{"--email", ""}, &gatewayv1.User{Name: "bob"}, []string{"email"}},
		{[]string{"--disable"}, &gatewayv1.User{Name: "bob", Disabled: true}, []string{"disabled"}},
		{[]string{"--enable"}, &gatewayv1.User{Name: "bob"}, []string{"disabled"}},
		{
			[]string{"--enable", "--email", "bob@example.com", "--role", "viewer"},
			&gatewayv1.User{Name: "bob", Role: gatewayv1.Role_ROLE_VIEWER, Email: "bob@example.com"},
			[]string{"role", "email", "disabled"},
		},
	}
	for _, tt := range tests {
		_, err := runAccess(t, usersCommand, addr, "", append([]string{"update", "bob"}, tt.args...)...)
		require.NoError(t, err, tt.args)
		requireProto(t, &gatewayv1.UpdateUserRequest{User: tt.user, UpdateMask: &fieldmaskpb.FieldMask{Paths: tt.paths}},
			f.last(t, "UpdateUser"), tt.args)
	}

	for _, bad := range [][]string{
		{},
		{"--team", "shop", "--clear-teams"},
		{"--disable", "--enable"},
		{"--role", "root"},
	} {
		_, err := runAccess(t, usersCommand, addr, "", append([]string{"update", "bob"}, bad...)...)
		require.Error(t, err, bad)
		require.Empty(t, f.takeCalls(), "%v: nothing is sent", bad)
	}
}

func TestUsersListGet(t *testing.T) {
	f, addr := startGateway(t)
	t.Setenv("VIGIL_TOKEN", "test-token")
	out, err := runAccess(t, usersCommand, addr, "", "list")
	require.NoError(t, err)
	requireProto(t, &gatewayv1.ListUsersRequest{}, f.last(t, "ListUsers"))
	require.Regexp(t, `NAME\s+ROLE\s+TEAMS\s+EMAIL\s+DISABLED\s+LAST LOGIN\nalice\s+admin\s+-\s+-\s+false\s+-\n`, out.stdout)

	_, err = runAccess(t, usersCommand, addr, "", "get", "alice")
	require.NoError(t, err)
	requireProto(t, &gatewayv1.GetUserRequest{Name: "alice"}, f.last(t, "GetUser"))
}

func TestUsersPasswd(t *testing.T) {
	f, addr := startGateway(t)
	t.Setenv("VIGIL_TOKEN", "test-token")

	// Your own: the current password, then the new one.
	out, err := runAccess(t, usersCommand, addr, "old password\nnew password\n", "passwd", "--password-stdin")
	require.NoError(t, err)
	require.Contains(t, out.stderr, "Password changed")
	calls := f.takeCalls()
	require.Len(t, calls, 2)
	require.Equal(t, "WhoAmI", calls[0].method)
	requireProto(t, &gatewayv1.SetPasswordRequest{Name: "alice", CurrentPassword: "old password", Password: "new password"}, calls[1].req)

	_, err = runAccess(t, usersCommand, addr, "old password\nnew password\n", "passwd", "alice", "--password-stdin")
	require.NoError(t, err)
	requireProto(t, &gatewayv1.SetPasswordRequest{Name: "alice", CurrentPassword: "old password", Password: "new password"}, f.last(t, "SetPassword"))

	// Another user's, as an admin: the new one only.
	out, err = runAccess(t, usersCommand, addr, "new password\n", "passwd", "bob", "--password-stdin")
	require.NoError(t, err)
	require.Contains(t, out.stderr, "Password of bob changed")
	requireProto(t, &gatewayv1.SetPasswordRequest{Name: "bob", Password: "new password"}, f.last(t, "SetPassword"))

	// Own, but stdin has one password only.
	_, err = runAccess(t, usersCommand, addr, "old password\n", "passwd", "--password-stdin")
	require.ErrorContains(t, err, "--password-stdin")
	f.last(t, "WhoAmI")

	// The bootstrap token is no user: name one.
	f.principal = &gatewayv1.Principal{Kind: "bootstrap", Name: "admin", Role: gatewayv1.Role_ROLE_ADMIN, AllTeams: true}
	_, err = runAccess(t, usersCommand, addr, "new password\n", "passwd", "--password-stdin")
	require.ErrorContains(t, err, "NAME")
	f.last(t, "WhoAmI")
	_, err = runAccess(t, usersCommand, addr, "new password\n", "passwd", "alice", "--password-stdin")
	require.NoError(t, err)
	requireProto(t, &gatewayv1.SetPasswordRequest{Name: "alice", Password: "new password"}, f.last(t, "SetPassword"))
}

func TestUsersChatAccounts(t *testing.T) {
	f, addr := startGateway(t)
	t.Setenv("VIGIL_TOKEN", "test-token")

	out, err := runAccess(t, usersCommand, addr, "", "link", "alice", "--telegram", "123456789")
	require.NoError(t, err)
	requireProto(t, &gatewayv1.LinkChatIdentityRequest{Name: "alice", Provider: gatewayv1.ChatProvider_CHAT_PROVIDER_TELEGRAM, ExternalId: "123456789"},
		f.last(t, "LinkChatIdentity"))
	require.Regexp(t, `Chat accounts:\s+telegram 123456789 \(linked `, out.stdout)

	_, err = runAccess(t, usersCommand, addr, "", "link", "alice", "--slack", "T0123ABCD:U0456EFGH")
	require.NoError(t, err)
	requireProto(t, &gatewayv1.LinkChatIdentityRequest{Name: "alice", Provider: gatewayv1.ChatProvider_CHAT_PROVIDER_SLACK, ExternalId: "T0123ABCD:U0456EFGH"},
		f.last(t, "LinkChatIdentity"))

	out, err = runAccess(t, usersCommand, addr, "", "unlink", "alice", "--provider", "slack")
	require.NoError(t, err)
	requireProto(t, &gatewayv1.UnlinkChatIdentityRequest{Name: "alice", Provider: gatewayv1.ChatProvider_CHAT_PROVIDER_SLACK}, f.last(t, "UnlinkChatIdentity"))
	require.Regexp(t, `Chat accounts:\s+-\n`, out.stdout)

	out, err = runAccess(t, usersCommand, addr, "", "link-code", "--provider", "telegram")
	require.NoError(t, err)
	requireProto(t, &gatewayv1.CreateChatLinkCodeRequest{Provider: gatewayv1.ChatProvider_CHAT_PROVIDER_TELEGRAM}, f.last(t, "CreateChatLinkCode"))
	require.Regexp(t, `Code:\s+ABCD2345\n`, out.stdout)
	require.Contains(t, out.stdout, "send /link ABCD2345 (CHAT_PROVIDER_TELEGRAM)")

	for _, bad := range [][]string{
		{"link", "alice"},
		{"link", "alice", "--telegram", "1", "--slack", "T1:U1"},
		{"link", "--telegram", "1"},
		{"unlink", "alice"},
		{"unlink", "alice", "--provider", "irc"},
		{"link-code"},
		{"link-code", "--provider", "unspecified"},
	} {
		_, err := runAccess(t, usersCommand, addr, "", bad...)
		require.Error(t, err, bad)
		require.Empty(t, f.takeCalls(), "%v: nothing is sent", bad)
	}
}
