package access_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
)

func TestHasher(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := access.NewHasher(fastParams, 2)
	first, err := h.Hash(ctx, password)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(first, "$argon2id$v=19$m=64,t=1,p=1$"), first)
	require.NotContains(t, first, password)
	second, err := h.Hash(ctx, password)
	require.NoError(t, err)
	require.NotEqual(t, first, second, "each hash has its own salt")

	p, salt1, key1, err := access.ParsePasswordHash(first)
	require.NoError(t, err)
	require.Equal(t, fastParams, p)
	_, salt2, key2, err := access.ParsePasswordHash(second)
	require.NoError(t, err)
	require.NotEqual(t, salt1, salt2)
	require.NotEqual(t, key1, key2)

	for _, tt := range []struct {
		hash, pw string
		ok       bool
	}{
		{first, password, true},
		{second, password, true},
		{first, password + " ", false},
		{first, "", false},
		{"", password, false}, // no such user: checked against a dummy
	} {
		ok, err := h.Verify(ctx, tt.hash, tt.pw)
		require.NoError(t, err)
		require.Equal(t, tt.ok, ok, "verify %q against %q", tt.pw, tt.hash)
	}

	// A hash made with other parameters still verifies: they are in it.
	strong := access.NewHasher(access.PasswordParams{Memory: 128, Time: 2, Threads: 2, SaltLen: 8, KeyLen: 16}, 1)
	other, err := strong.Hash(ctx, password)
	require.NoError(t, err)
	ok, err := h.Verify(ctx, other, password)
	require.NoError(t, err)
	require.True(t, ok)
}

func TestParsePasswordHashRejects(t *testing.T) {
	t.Parallel()
	for name, hash := range map[string]string{
		"empty":         "",
		"bcrypt":        "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"argon2i":       "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5",
		"old version":   "$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5",
		"no parameters": "$argon2id$v=19$$c2FsdHNhbHQ$a2V5a2V5",
		"bad salt":      "$argon2id$v=19$m=64,t=1,p=1$!!$a2V5a2V5",
		"bad key":       "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$!!",
		"too few parts": "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ",
	} {
		_, _, _, err := access.ParsePasswordHash(hash)
		require.Error(t, err, name)
	}
}

// TestCreateUserUsesDefaultParams: what a new user's password is kept
// as, read back from the database.
func TestCreateUserUsesDefaultParams(t *testing.T) {
	t.Parallel()
	require.Equal(t, access.PasswordParams{Memory: 64 * 1024, Time: 3, Threads: 2, SaltLen: 16, KeyLen: 32}, access.DefaultPasswordParams)
	e := newEnvWithHasher(t, access.Options{}, access.NewHasher(access.DefaultPasswordParams, 1))
	ctx := context.Background()
	_, err := e.svc.CreateUser(ctx, access.User{Name: "alice", Role: auth.RoleViewer}, password)
	require.NoError(t, err)
	var stored string
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT password_hash FROM users WHERE name = 'alice'`).Scan(&stored))
	require.True(t, strings.HasPrefix(stored, "$argon2id$v=19$m=65536,t=3,p=2$"), stored)
	p, salt, key, err := access.ParsePasswordHash(stored)
	require.NoError(t, err)
	require.Equal(t, access.DefaultPasswordParams, p)
	require.Len(t, salt, 16)
	require.Len(t, key, 32)
	require.NotContains(t, stored, password)

	_, u, err := e.svc.Login(ctx, "alice", password, "")
	require.NoError(t, err)
	require.Equal(t, "alice", u.Name)
}

func TestCreateUserValidates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{})
	ctx := context.Background()
	tests := []struct {
		name   string
		u      access.User
		pw     string
		fields []string
	}{
		{name: "bad name", u: access.User{Name: "Alice!", Role: auth.RoleViewer}, pw: password, fields: []string{"user.name"}},
		{name: "no role", u: access.User{Name: "alice"}, pw: password, fields: []string{"user.role"}},
		{name: "bad team", u: access.User{Name: "alice", Role: auth.RoleViewer, Teams: []string{"ok", "Not_A_Team"}}, pw: password, fields: []string{"user.teams[1]"}},
		{name: "short password", u: access.User{Name: "alice", Role: auth.RoleViewer}, pw: "short", fields: []string{"password"}},
		{name: "everything", u: access.User{Name: "", Role: "root"}, pw: "", fields: []string{"user.name", "user.role", "password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := e.svc.CreateUser(ctx, tt.u, tt.pw)
			require.Error(t, err)
			require.Equal(t, tt.fields, invalidFields(err))
		})
	}

	e.createUser(t, "alice", auth.RoleViewer, "payments", "payments")
	u, err := e.svc.User(ctx, "alice")
	require.NoError(t, err)
	require.Equal(t, []string{"payments"}, u.Teams, "teams are kept once")
	_, err = e.svc.CreateUser(ctx, access.User{Name: "alice", Role: auth.RoleAdmin}, password)
	require.ErrorIs(t, err, access.ErrExists)
	_, err = e.svc.User(ctx, "bob")
	require.ErrorIs(t, err, access.ErrNotFound)
}
