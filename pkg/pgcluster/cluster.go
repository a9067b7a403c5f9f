// Package pgcluster runs a local PostgreSQL server from the installed
// binaries as a child process. `vigil up` uses it on a persistent data
// directory that survives restarts; tests use it on a throwaway one (see
// testkit.Postgres).
//
// The server listens only on a Unix socket, so it exposes no TCP port and
// parallel clusters never race for one. When the caller is root, initdb and
// postgres run as the user postgres (or nobody), because PostgreSQL refuses
// to run as root.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// port only names the socket file: the server has no TCP listener.
	port       = 5432
	socketName = ".s.PGSQL.5432"
	// superuser is the role initdb creates; local connections trust it.
	superuser = "postgres"
	// logName is the server's log file inside the data directory.
	logName = "postgres.log"
	// logTailBytes is how much of the log a startup error quotes.
	logTailBytes = 4 << 10
)

// managedSettings are set by Start itself and cannot be overridden.
var managedSettings = []string{"listen_addresses", "unix_socket_directories", "port"}

var settingName = regexp.MustCompile(`^[a-z_][a-z0-9_.]*$`)

// Options configure a cluster.
type Options struct {
	// DataDir is the cluster's data directory. Start initialises it with
	// initdb when it holds no cluster yet and reuses it as it is otherwise.
	DataDir string
	// BinDir holds initdb and postgres. Empty means autodetect: pg_config
	// --bindir, the newest /usr/lib/postgresql/*/bin, then PATH.
	BinDir string
	// Settings are extra server settings, passed as -c name=value (for
	// example fsync=off for tests). With fsync=off initdb also skips its
	// fsync calls.
	Settings map[string]string
	// Logger receives pgcluster's own messages; the server writes to
	// DataDir/postgres.log. Nil discards.
	Logger *slog.Logger
}

// Validate reports what is wrong with the options.
func (o Options) Validate() error {
	var errs []error
	if o.DataDir == "" {
		errs = append(errs, errors.New("pgcluster: DataDir: missing"))
	}
	for _, name := range slices.Sorted(maps.Keys(o.Settings)) {
		switch {
		case slices.Contains(managedSettings, name):
			errs = append(errs, fmt.Errorf("pgcluster: Settings: %s is managed by pgcluster", name))
		case !settingName.MatchString(name):
			errs = append(errs, fmt.Errorf("pgcluster: Settings: %q is not a setting name", name))
		}
	}
	return errors.Join(errs...)
}

// Cluster is a running PostgreSQL server.
type Cluster struct {
	logger      *slog.Logger
	dataDir     string
	sockDir     string
	tempSockDir bool
	logPath     string
	pid         int

	done    chan struct{} // closed when the server process has exited
	waitErr error         // the process's exit status, set before done closes

	stopOnce sync.Once
	stopErr  error
}

// Start initialises opts.DataDir if needed, starts postgres on it and waits
// until it accepts connections; ctx bounds only that wait, not the server's
// life. If postgres exits during startup the error quotes its log.
//
// The server is stopped by Stop, or by the kernel (SIGINT, a fast shutdown)
// when the process that started it exits.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "pgcluster")
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: data dir: %w", err)
	}
	logger = logger.With("data_dir", dataDir)

	initialized := fileExists(filepath.Join(dataDir, "PG_VERSION"))
	binDir, err := findBinDir(opts.BinDir, dataDir)
	if err != nil {
		return nil, err
	}
	user, err := serverUser(dataDir, initialized)
	if err != nil {
		return nil, err
	}
	began := time.Now()
	if !initialized {
		if err := initDataDir(ctx, logger, binDir, dataDir, user, isOff(opts.Settings["fsync"])); err != nil {
			return nil, err
		}
	} else if user != nil {
		if err := user.checkTraversable(filepath.Dir(dataDir)); err != nil {
			return nil, err
		}
	}
	sockDir, tempSockDir, err := socketDir(dataDir, user)
	if err != nil {
		return nil, err
	}
	newCluster := func() *Cluster {
		return &Cluster{
			logger:      logger,
			dataDir:     dataDir,
			sockDir:     sockDir,
			tempSockDir: tempSockDir,
			logPath:     filepath.Join(dataDir, logName),
			done:        make(chan struct{}),
		}
	}
	c := newCluster()
	if err := removeReusedPIDFile(ctx, logger, dataDir, sockDir); err != nil {
		c.removeSockDir()
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		logOffset, err := c.spawn(binDir, opts.Settings, user)
		if err != nil {
			c.removeSockDir()
			return nil, err
		}
		err = c.waitReady(ctx)
		if err == nil {
			break
		}
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_ = c.stop(stopCtx) // the startup error and the log say more than the exit status
		cancel()
		tail := c.logTail(logOffset)
		// After a crash, the killed server's processes may still hold its
		// shared memory for a moment: postgres refuses to start until they
		// are gone. Wait for them, a little.
		if strings.Contains(tail, "pre-existing shared memory block") && attempt < 25 && ctx.Err() == nil {
			logger.InfoContext(ctx, "waiting for the previous server's processes to exit", "attempt", attempt)
			time.Sleep(200 * time.Millisecond)
			c = newCluster()
			continue
		}
		c.removeSockDir()
		return nil, fmt.Errorf("pgcluster: start postgres: %w\n%s:\n%s", err, c.logPath, tail)
	}
	logger.InfoContext(ctx, "postgres ready", "bin_dir", binDir, "socket_dir", sockDir, "pid", c.pid,
		"initdb", !initialized, "elapsed", time.Since(began))
	return c, nil
}

// DSN returns a keyword/value connection string for database dbname as the
// superuser over the cluster's Unix socket.
func (c *Cluster) DSN(dbname string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable",
		quoteDSN(c.sockDir), port, superuser, quoteDSN(dbname))
}

// Stop shuts the server down with SIGINT (fast shutdown: clients are
// disconnected, then a checkpoint) and waits for it. When ctx ends first the
// server and its backends are killed, which is safe (the next start
// recovers from the WAL) but slower to come back. Stop is idempotent.
func (c *Cluster) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() {
		c.stopErr = c.stop(ctx)
		c.removeSockDir()
	})
	return c.stopErr
}

func (c *Cluster) stop(ctx context.Context) error {
	select {
	case <-c.done:
		return fmt.Errorf("pgcluster: postgres had already exited: %w", c.exitErr())
	default:
	}
	c.logger.InfoContext(ctx, "stopping postgres", "pid", c.pid)
	if err := syscall.Kill(c.pid, syscall.SIGINT); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("pgcluster: signal postgres: %w", err)
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		// The server leads its own process group, so this takes its backends too.
		_ = syscall.Kill(-c.pid, syscall.SIGKILL)
		<-c.done
		return fmt.Errorf("pgcluster: postgres did not shut down in time and was killed: %w", ctx.Err())
	}
	if c.waitErr != nil {
		return fmt.Errorf("pgcluster: stop postgres: %w", c.waitErr)
	}
	c.logger.InfoContext(ctx, "postgres stopped")
	return nil
}

// spawn starts the postmaster and returns the log offset where its output
// begins.
func (c *Cluster) spawn(binDir string, settings map[string]string, user *osUser) (int64, error) {
	logFile, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("pgcluster: open server log: %w", err)
	}
	defer logFile.Close() // the child keeps its own descriptor
	if user != nil {
		if err := logFile.Chown(int(user.uid), int(user.gid)); err != nil {
			return 0, fmt.Errorf("pgcluster: chown server log: %w", err)
		}
	}
	offset, err := logFile.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("pgcluster: open server log: %w", err)
	}

	args := []string{
		"-D", c.dataDir,
		"-c", "listen_addresses=",
		"-c", fmt.Sprintf("unix_socket_directories=%q", c.sockDir),
		"-c", fmt.Sprintf("port=%d", port),
	}
	for _, name := range slices.Sorted(maps.Keys(settings)) {
		args = append(args, "-c", name+"="+settings[name])
	}
	cmd := exec.Command(filepath.Join(binDir, "postgres"), args...)
	cmd.Dir = c.dataDir
	cmd.Env = serverEnv
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: user.credential(),
		// Its own process group keeps a terminal's Ctrl-C away from it, so
		// the caller can drain its clients before calling Stop.
		Setpgid: true,
		// If our process dies without calling Stop, the kernel asks for a
		// fast shutdown instead of leaving an orphan holding the data dir.
		Pdeathsig: syscall.SIGINT,
	}

	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the OS thread that forked the child exits,
		// not the process. Pin this goroutine to its thread until postgres
		// exits; returning while locked then retires the thread, which is
		// harmless once the child is gone.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	if err := <-started; err != nil {
		return 0, fmt.Errorf("pgcluster: run postgres: %w", err)
	}
	c.pid = cmd.Process.Pid
	return offset, nil
}

// waitReady waits until the server says it is ready, it exits, or ctx
// ends. Like pg_ctl it reads the status in postmaster.pid rather than
// probing the socket: a socket could answer for another server, one that
// already runs on this data dir and that our postgres is about to refuse to
// share it with.
func (c *Cluster) waitReady(ctx context.Context) error {
	delay := 5 * time.Millisecond
	for {
		if c.pidFileSaysReady() {
			conn, err := pgconn.Connect(ctx, c.DSN("postgres"))
			if err != nil {
				return fmt.Errorf("connect: %w", err)
			}
			return conn.Close(ctx)
		}
		select {
		case <-c.done:
			return fmt.Errorf("postgres exited during startup: %w", c.exitErr())
		case <-ctx.Done():
			return fmt.Errorf("wait for postgres to be ready: %w", ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// pidFileSaysReady reports whether postmaster.pid is our server's and says
// it accepts connections.
func (c *Cluster) pidFileSaysReady() bool {
	b, err := os.ReadFile(filepath.Join(c.dataDir, "postmaster.pid"))
	if err != nil {
		return false
	}
	// Line 1 is the PID, line 8 the status: starting, stopping, ready or
	// standby (see pidfile.h).
	lines := strings.Split(string(b), "\n")
	if len(lines) < 8 || strings.TrimSpace(lines[0]) != strconv.Itoa(c.pid) {
		return false
	}
	status := strings.TrimSpace(lines[7])
	return status == "ready" || status == "standby"
}

// exitErr describes how the server process exited, for an exit nobody asked
// for; call it only after done is closed.
func (c *Cluster) exitErr() error {
	if c.waitErr == nil {
		return errors.New("exit status 0")
	}
	return c.waitErr
}

// logTail returns the end of what the server logged since offset.
func (c *Cluster) logTail(offset int64) string {
	f, err := os.Open(c.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read the log: %v)", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size()-offset > logTailBytes {
		offset = fi.Size() - logTailBytes
	}
	b, err := io.ReadAll(io.NewSectionReader(f, offset, logTailBytes))
	if err != nil {
		return fmt.Sprintf("(cannot read the log: %v)", err)
	}
	return strings.TrimSpace(string(b))
}

func (c *Cluster) removeSockDir() {
	if c.tempSockDir {
		_ = os.RemoveAll(c.sockDir)
	}
}

// serverEnv is the whole environment of initdb and postgres: the caller's
// PG* variables and locale must not leak into the cluster.
var serverEnv = []string{"LC_ALL=C"}

// initDataDir runs initdb for dataDir. When dataDir does not exist yet,
// initdb works in a sibling that is renamed into place when it is done, so
// an interrupted initdb never leaves a half-made cluster that a later Start
// would take for a real one. An existing (empty) dataDir, such as a mount
// point, is initialised in place.
func initDataDir(ctx context.Context, logger *slog.Logger, binDir, dataDir string, user *osUser, noSync bool) error {
	// Parents get 0755 so that the server's user can reach the data dir;
	// PostgreSQL wants the data dir itself private.
	if err := os.MkdirAll(filepath.Dir(dataDir), 0o755); err != nil {
		return fmt.Errorf("pgcluster: create data dir: %w", err)
	}
	if user != nil {
		if err := user.checkTraversable(filepath.Dir(dataDir)); err != nil {
			return err
		}
	}
	target := dataDir
	if _, err := os.Stat(dataDir); errors.Is(err, fs.ErrNotExist) {
		target = dataDir + ".initdb"
		if err := os.RemoveAll(target); err != nil { // left by an interrupted attempt
			return fmt.Errorf("pgcluster: create data dir: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("pgcluster: data dir: %w", err)
	}
	if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("pgcluster: create data dir: %w", err)
	}
	if user != nil {
		if err := os.Chown(target, int(user.uid), int(user.gid)); err != nil {
			return fmt.Errorf("pgcluster: chown data dir: %w", err)
		}
	}
	args := []string{
		"-D", target,
		"-U", superuser,
		// Nothing listens on TCP; should someone enable it, it needs a password.
		"--auth-local=trust", "--auth-host=scram-sha-256",
		"-E", "UTF8", "--no-locale",
	}
	if noSync {
		args = append(args, "--no-sync")
	}
	logger.InfoContext(ctx, "initializing data directory")
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"), args...)
	cmd.Dir = target
	cmd.Env = serverEnv
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: user.credential()}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgcluster: initdb: %w\n%s", err, strings.TrimSpace(string(out)))
	}
	logger.DebugContext(ctx, "initdb done", "output", string(out))
	if target == dataDir {
		return nil
	}
	if err := os.Rename(target, dataDir); err != nil {
		return fmt.Errorf("pgcluster: move initialised data dir into place: %w", err)
	}
	if noSync {
		return nil
	}
	return syncDir(filepath.Dir(dataDir))
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("pgcluster: sync %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("pgcluster: sync %s: %w", dir, err)
	}
	return nil
}

// socketDir picks the directory for the server's socket: the data dir when
// the socket path fits the ~107 bytes a Unix socket address allows,
// otherwise a new short directory under the temp dir.
func socketDir(dataDir string, user *osUser) (dir string, temp bool, err error) {
	const maxPath = 107
	if len(dataDir)+1+len(socketName) <= maxPath {
		return dataDir, false, nil
	}
	const pattern = "pgsock-"
	for _, base := range []string{os.TempDir(), "/tmp"} {
		if len(base)+1+len(pattern)+12+1+len(socketName) > maxPath {
			continue
		}
		dir, err := os.MkdirTemp(base, pattern)
		if err != nil {
			return "", false, fmt.Errorf("pgcluster: create socket dir: %w", err)
		}
		if user != nil {
			if err := os.Chown(dir, int(user.uid), int(user.gid)); err != nil {
				_ = os.RemoveAll(dir)
				return "", false, fmt.Errorf("pgcluster: chown socket dir: %w", err)
			}
		}
		return dir, true, nil
	}
	return "", false, fmt.Errorf("pgcluster: no directory short enough for a Unix socket (data dir %s, temp dir %s)", dataDir, os.TempDir())
}

// quoteDSN quotes a value for a keyword/value connection string.
func quoteDSN(v string) string {
	if v != "" && !strings.ContainsAny(v, " '\\\t\n") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// isOff reports whether a boolean setting's value is false.
func isOff(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "off", "false", "no", "0":
		return true
	}
	return false
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
