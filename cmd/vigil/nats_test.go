package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/bus"
)

// vigil up creates a password per NATS user on first start, readable by
// its owner alone, and reuses them on restart.
func TestNATSUsersKeptInDataDir(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	first, dir, err := natsUsers(dataDir)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dataDir, "nats-users"), dir)
	require.Len(t, first, len(bus.Users()))
	seen := map[string]bool{}
	for i, c := range first {
		require.Equal(t, bus.Users()[i], c.User)
		require.NotEmpty(t, c.Password)
		require.False(t, seen[c.Password], "%s: a password of its own", c.User)
		seen[c.Password] = true
		fi, err := os.Stat(filepath.Join(dir, c.User))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), c.User)
	}
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())

	again, _, err := natsUsers(dataDir)
	require.NoError(t, err)
	require.Equal(t, first, again, "reused on restart")
}

// vigil serve's NATS login: the service's name unless VIGIL_NATS_USER
// says otherwise, and a password from the environment or a file, never
// both, never none.
func TestNATSCredentials(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte("pw_from_file\n"), 0o600))
	for _, tc := range []struct {
		name            string
		env             map[string]string
		want            bus.Credentials
		wantErrContains string
	}{
		{name: "password", env: map[string]string{"VIGIL_NATS_PASSWORD": "pw_1"}, want: bus.Credentials{User: "monitor", Password: "pw_1"}},
		{name: "file", env: map[string]string{"VIGIL_NATS_PASSWORD_FILE": pwFile}, want: bus.Credentials{User: "monitor", Password: "pw_from_file"}},
		{name: "user", env: map[string]string{"VIGIL_NATS_USER": "other", "VIGIL_NATS_PASSWORD": "pw_1"}, want: bus.Credentials{User: "other", Password: "pw_1"}},
		{name: "none", wantErrContains: "VIGIL_NATS_PASSWORD: missing"},
		{name: "both", env: map[string]string{"VIGIL_NATS_PASSWORD": "pw_1", "VIGIL_NATS_PASSWORD_FILE": pwFile}, wantErrContains: "not both"},
		{name: "no file", env: map[string]string{"VIGIL_NATS_PASSWORD_FILE": pwFile + ".missing"}, wantErrContains: "VIGIL_NATS_PASSWORD_FILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"VIGIL_NATS_USER", "VIGIL_NATS_PASSWORD", "VIGIL_NATS_PASSWORD_FILE"} {
				t.Setenv(k, tc.env[k])
			}
			got, err := natsCredentials("monitor")
			if tc.wantErrContains != "" {
				require.ErrorContains(t, err, tc.wantErrContains)
				require.NotContains(t, err.Error(), "pw_1", "never shows a password")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
