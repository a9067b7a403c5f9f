package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDatabaseName(t *testing.T) {
	t.Parallel()
	valid := regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	tests := []struct {
		testName   string
		wantPrefix string
	}{
		{testName: "TestRepo/Update_ok", wantPrefix: "test_testrepo_update_ok_"},
		{testName: "TestX/" + strings.Repeat("Long", 30), wantPrefix: "test_testx_longlong"},
		{testName: "TestÜnicode#1", wantPrefix: "test_test_nicode_1_"},
	}
	for _, tt := range tests {
		t.Run(tt.testName, func(t *testing.T) {
			t.Parallel()
			name := databaseName(tt.testName)
			require.True(t, strings.HasPrefix(name, tt.wantPrefix), name)
			require.LessOrEqual(t, len(name), 63)
			require.Regexp(t, valid, name)
			require.NotEqual(t, name, databaseName(tt.testName), "names are unique")
		})
	}
}

func TestRemoveAbandonedPostgresDirs(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	old := time.Now().Add(-time.Hour)
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	tests := []struct {
		name     string
		pid      int // in postmaster.pid; 0: no file
		modTime  time.Time
		wantKept bool
	}{
		{name: "stopped", modTime: old},
		{name: "crashed", pid: dead.Process.Pid, modTime: old},
		{name: "running", pid: os.Getpid(), modTime: old, wantKept: true},
		{name: "being created", modTime: time.Now(), wantKept: true},
	}
	for _, tt := range tests {
		dir := filepath.Join(base, postgresDirPattern+tt.name)
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "data"), 0o755))
		if tt.pid != 0 {
			pidFile := filepath.Join(dir, "data", "postmaster.pid")
			require.NoError(t, os.WriteFile(pidFile, []byte(strconv.Itoa(tt.pid)+"\n/data\n"), 0o600))
		}
		require.NoError(t, os.Chtimes(dir, tt.modTime, tt.modTime))
	}
	other := filepath.Join(base, "not-ours")
	require.NoError(t, os.Mkdir(other, 0o755))
	require.NoError(t, os.Chtimes(other, old, old))

	removeAbandonedPostgresDirs(base)

	for _, tt := range tests {
		dir := filepath.Join(base, postgresDirPattern+tt.name)
		if tt.wantKept {
			require.DirExists(t, dir, tt.name)
		} else {
			require.NoDirExists(t, dir, tt.name)
		}
	}
	require.DirExists(t, other)
}
