package pgcluster_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/pgcluster"
)

// fast skips fsync for the throwaway clusters of these tests.
var fast = map[string]string{"fsync": "off"}

func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	dataDir := newDataDir(t)
	// Left by an initdb that was interrupted: not mistaken for a cluster.
	leftover := dataDir + ".initdb"
	require.NoError(t, os.MkdirAll(filepath.Join(leftover, "global"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(leftover, "PG_VERSION"), []byte("15\n"), 0o600))

	c := start(t, pgcluster.Options{DataDir: dataDir, Settings: fast})
	require.NoDirExists(t, leftover)
	exec1(t, c, "CREATE TABLE kept (v text)")
	exec1(t, c, "INSERT INTO kept VALUES ('survives')")
	require.Empty(t, queryString(t, c, "SHOW listen_addresses"), "no TCP listener")
	require.NoError(t, c.Stop(ctx(t)))
	require.NoError(t, c.Stop(ctx(t)), "Stop is idempotent")
	require.NoFileExists(t, filepath.Join(dataDir, "postmaster.pid"))

	c = start(t, pgcluster.Options{DataDir: dataDir, Settings: fast})
	require.Equal(t, "survives", queryString(t, c, "SELECT v FROM kept"))
	require.FileExists(t, filepath.Join(dataDir, "postgres.log"))
}

func TestStartAfterCrash(t *testing.T) {
	t.Parallel()
	dataDir := newDataDir(t)
	c := start(t, pgcluster.Options{DataDir: dataDir, Settings: fast})
	exec1(t, c, "CREATE TABLE kept (v text)")
	exec1(t, c, "INSERT INTO kept VALUES ('survives')")

	pid := postmasterPID(t, dataDir)
	require.NoError(t, syscall.Kill(-pid, syscall.SIGKILL))
	require.Error(t, c.Stop(ctx(t)), "the server died on its own")
	require.FileExists(t, filepath.Join(dataDir, "postmaster.pid"), "a crash leaves the pid file behind")

	c = start(t, pgcluster.Options{DataDir: dataDir, Settings: fast})
	require.Equal(t, "survives", queryString(t, c, "SELECT v FROM kept"))
}

func TestStartWhenStalePIDWasReused(t *testing.T) {
	t.Parallel()
	// After a crash and a reboot the old postmaster's PID may be another
	// process's. postgres sees through it by itself only when that process
	// is another OS user's (kill gets EPERM), so the impostors run as the
	// server's user.
	impostors := map[string]func(t *testing.T, dataDir string) int{
		"by another process": func(t *testing.T, dataDir string) int {
			t.Helper()
			other := exec.Command("sleep", "60")
			if os.Geteuid() == 0 {
				owner := ownerOf(t, dataDir)
				other.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: owner.Uid, Gid: owner.Gid}}
			}
			require.NoError(t, other.Start())
			t.Cleanup(func() { _ = other.Process.Kill(); _ = other.Wait() })
			return other.Process.Pid
		},
		"by another cluster's postmaster": func(t *testing.T, _ string) int {
			t.Helper()
			otherDir := newDataDir(t)
			start(t, pgcluster.Options{DataDir: otherDir, Settings: fast})
			return postmasterPID(t, otherDir)
		},
	}
	for name, impostor := range impostors {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dataDir := newDataDir(t)
			c := start(t, pgcluster.Options{DataDir: dataDir, Settings: fast})
			pidFile, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
			require.NoError(t, err)
			require.NoError(t, c.Stop(ctx(t)))

			_, rest, _ := strings.Cut(string(pidFile), "\n")
			stale := strconv.Itoa(impostor(t, dataDir)) + "\n" + rest
			writeAsOwner(t, filepath.Join(dataDir, "postmaster.pid"), stale)

			c = start(t, pgcluster.Options{DataDir: dataDir, Settings: fast})
			require.Equal(t, "1", queryString(t, c, "SELECT 1::text"))
		})
	}
}

func TestStartRefusesDataDirInUse(t *testing.T) {
	t.Parallel()
	dataDir := newDataDir(t)
	c := start(t, pgcluster.Options{DataDir: dataDir, Settings: fast})
	link := filepath.Join(filepath.Dir(dataDir), "link")
	require.NoError(t, os.Symlink(dataDir, link))

	_, err := pgcluster.Start(ctx(t), pgcluster.Options{DataDir: link, Settings: fast})
	require.ErrorContains(t, err, `lock file "postmaster.pid" already exists`)
	require.Equal(t, "1", queryString(t, c, "SELECT 1::text"), "the running server is unharmed")
}

func TestStartExistingLongDataDir(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(newDataDir(t), strings.Repeat("d", 100))
	// An existing empty data dir, like a mount point, is initialised in place.
	require.NoError(t, os.MkdirAll(dataDir, 0o755))

	c := start(t, pgcluster.Options{DataDir: dataDir, Settings: fast})
	require.NotContains(t, c.DSN("postgres"), dataDir)
	require.Equal(t, "1", queryString(t, c, "SELECT 1::text"))
}

func TestStartQuotesServerLogWhenPostgresExits(t *testing.T) {
	t.Parallel()
	settings := map[string]string{"fsync": "off", "shared_buffers": "bogus"}

	_, err := pgcluster.Start(ctx(t), pgcluster.Options{DataDir: newDataDir(t), Settings: settings})
	require.ErrorContains(t, err, "postgres exited during startup")
	require.ErrorContains(t, err, `invalid value for parameter "shared_buffers"`)
}

func TestStartWithoutBinaries(t *testing.T) {
	t.Parallel()
	bogus := filepath.Join(t.TempDir(), "no-postgres-here")

	_, err := pgcluster.Start(ctx(t), pgcluster.Options{DataDir: newDataDir(t), BinDir: bogus})
	require.ErrorContains(t, err, "PostgreSQL server binaries not found (looked in "+bogus+")")
	require.ErrorContains(t, err, "apt-get install postgresql-15")
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    pgcluster.Options
		wantErr string
	}{
		{name: "ok", opts: pgcluster.Options{DataDir: "/x", Settings: map[string]string{"fsync": "off"}}},
		{name: "no data dir", opts: pgcluster.Options{}, wantErr: "DataDir: missing"},
		{
			name:    "managed setting",
			opts:    pgcluster.Options{DataDir: "/x", Settings: map[string]string{"listen_addresses": "*"}},
			wantErr: "listen_addresses is managed by pgcluster",
		},
		{
			name:    "bad setting name",
			opts:    pgcluster.Options{DataDir: "/x", Settings: map[string]string{"fsync=off -c x": "y"}},
			wantErr: "is not a setting name",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.opts.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

// newDataDir returns a data dir path under a new directory that everyone
// may enter: when the tests run as root the server runs as another user, who
// could not reach into t.TempDir (mode 0700).
func newDataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgcluster-test-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return filepath.Join(dir, "data")
}

func start(t *testing.T, opts pgcluster.Options) *pgcluster.Cluster {
	t.Helper()
	began := time.Now()
	c, err := pgcluster.Start(ctx(t), opts)
	require.NoError(t, err)
	t.Logf("postgres started in %v", time.Since(began))
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.Stop(stopCtx) // tests that stop it themselves check the error there
	})
	return c
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func connect(t *testing.T, c *pgcluster.Cluster) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx(t), c.DSN("postgres"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func exec1(t *testing.T, c *pgcluster.Cluster, sql string) {
	t.Helper()
	_, err := connect(t, c).Exec(ctx(t), sql)
	require.NoError(t, err)
}

func queryString(t *testing.T, c *pgcluster.Cluster, sql string) string {
	t.Helper()
	var s string
	require.NoError(t, connect(t, c).QueryRow(ctx(t), sql).Scan(&s))
	return s
}

// writeAsOwner writes a file in dir owned like dir, as the server would.
func writeAsOwner(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	owner := ownerOf(t, filepath.Dir(path))
	require.NoError(t, os.Chown(path, int(owner.Uid), int(owner.Gid)))
}

func ownerOf(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	st, ok := fi.Sys().(*syscall.Stat_t)
	require.True(t, ok)
	return st
}

func postmasterPID(t *testing.T, dataDir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	require.NoError(t, err)
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(first)
	require.NoError(t, err)
	return pid
}
