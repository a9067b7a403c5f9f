package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
)

func TestKeysCreate(t *testing.T) {
	f, addr := startGateway(t)
	t.Setenv("VIGIL_TOKEN", "test-token")
	before := time.Now()
	out, err := runAccess(t, keysCommand, addr, "", "create", "ci", "--scope", "read,operate", "--scope", "ingest", "--team", "shop", "--expires", "90d")
	after := time.Now()
	require.NoError(t, err)
	got := f.last(t, "CreateKey").(*gatewayv1.CreateKeyRequest)
	require.Equal(t, "ci", got.GetKey().GetName())
	require.Equal(t, "shop", got.GetKey().GetTeam())
	require.Equal(t, []gatewayv1.Scope{gatewayv1.Scope_SCOPE_READ, gatewayv1.Scope_SCOPE_OPERATE, gatewayv1.Scope_SCOPE_INGEST}, got.GetKey().GetScopes())
	expires := got.GetKey().GetExpireTime().AsTime()
	require.False(t, expires.Before(before.Add(90*24*time.Hour).Truncate(time.Microsecond)), "expires %s", expires)
	require.False(t, expires.After(after.Add(90*24*time.Hour)), "expires %s", expires)
	require.Equal(t, 1, strings.Count(out.stdout, testSecret), "the secret is printed once:\n%s", out.stdout)
	require.Contains(t, out.stdout, "it will not be shown again")
	require.Contains(t, out.stdout, "vk_4f2a")

	out, err = runAccess(t, keysCommand, addr, "", "create", "ingest", "--scope", "ingest", "--expires", "2099-01-02T03:04:05Z", "-o", "json")
	require.NoError(t, err)
	got = f.last(t, "CreateKey").(*gatewayv1.CreateKeyRequest)
	require.Equal(t, time.Date(2099, 1, 2, 3, 4, 5, 0, time.UTC), got.GetKey().GetExpireTime().AsTime())
	require.Empty(t, got.GetKey().GetTeam())
	var resp struct {
		Secret string `json:"secret"`
		Key    struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"key"`
	}
	require.NoError(t, json.Unmarshal([]byte(out.stdout), &resp), out.stdout)
	require.Equal(t, testSecret, resp.Secret)
	require.Equal(t, "k1", resp.Key.ID)
	require.Equal(t, "ingest", resp.Key.Name)
}

func TestKeysCreateRefusesBadFlags(t *testing.T) {
	f, addr := startGateway(t)
	t.Setenv("VIGIL_TOKEN", "test-token")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no scope", []string{"ci"}, "scope"},
		{"bad scope", []string{"ci", "--scope", "read,write"}, `--scope "write"`},
		{"unspecified scope", []string{"ci", "--scope", "unspecified"}, "--scope"},
		{"past expiry", []string{"ci", "--scope", "read", "--expires", "2001-01-01T00:00:00Z"}, "in the past"},
		{"bad expiry", []string{"ci", "--scope", "read", "--expires", "soon"}, "--expires"},
		{"negative expiry", []string{"ci", "--scope", "read", "--expires", "-1h"}, "--expires"},
		{"no name", []string{"--scope", "read"}, "arg"},
	}
	for _, tt := range tests {
		_, err := runAccess(t, keysCommand, addr, "", append([]string{"create"}, tt.args...)...)
		require.ErrorContains(t, err, tt.want, tt.name)
		require.Empty(t, f.takeCalls(), "%s: nothing is sent", tt.name)
	}
}

func TestKeysListRevoke(t *testing.T) {
	f, addr := startGateway(t)
	t.Setenv("VIGIL_TOKEN", "test-token")
	out, err := runAccess(t, keysCommand, addr, "", "list")
	require.NoError(t, err)
	requireProto(t, &gatewayv1.ListKeysRequest{}, f.last(t, "ListKeys"))
	require.Regexp(t, `ID\s+NAME\s+SCOPES\s+TEAM\s+PREFIX\s+CREATED\s+EXPIRES\s+LAST USED\s+REVOKED\n`, out.stdout)
	require.Regexp(t, `k1\s+ci\s+all\s+vk_4f2a\s+-\s+never\s+-\s+-\n`, out.stdout)

	_, err = runAccess(t, keysCommand, addr, "", "list", "--all")
	require.NoError(t, err)
	requireProto(t, &gatewayv1.ListKeysRequest{IncludeInactive: true}, f.last(t, "ListKeys"))

	_, err = runAccess(t, keysCommand, addr, "", "revoke", "k1")
	require.NoError(t, err)
	requireProto(t, &gatewayv1.RevokeKeyRequest{Id: "k1"}, f.last(t, "RevokeKey"))
}
