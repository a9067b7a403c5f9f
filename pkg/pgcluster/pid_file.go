package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// removeReusedPIDFile deletes a postmaster.pid left by a crash whose PID now
// belongs to another live process.
//
// PostgreSQL removes a stale postmaster.pid itself when that PID is dead or
// belongs to another OS user, but refuses to start when a process of its
// own user has it, taking it for another postmaster. After a crash the PID
// is often reused: in containers, where PIDs restart from 1 on every boot
// and everything runs as one user, or on a host by the distribution's own
// PostgreSQL service. Only a postgres process working in this data dir
// keeps the file: then the data dir really is in use and postgres says so.
func removeReusedPIDFile(ctx context.Context, logger *slog.Logger, dataDir, sockDir string) error {
	path := filepath.Join(dataDir, "postmaster.pid")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pgcluster: read pid file: %w", err)
	}
	pid, ok := pidOf(b)
	if !ok {
		return nil // postgres judges a malformed file itself
	}
	name, alive := processName(pid)
	if !alive {
		return nil
	}
	if name == "postgres" || name == "postmaster" {
		// Every process of a cluster runs in its data dir; another cluster
		// (the distribution's own, say) may have been given the PID.
		if inDataDir, known := worksIn(pid, dataDir); !known || inDataDir {
			return nil
		}
	}
	logger.WarnContext(ctx, "removing stale postmaster.pid whose pid now belongs to another process",
		"pid", pid, "process", name)
	// The socket's lock file carries the same PID and the same check.
	for _, p := range []string{path, filepath.Join(sockDir, socketName+".lock")} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pgcluster: remove stale pid file: %w", err)
		}
	}
	return nil
}

// pidOf returns the PID on the first line of a postmaster.pid.
func pidOf(pidFile []byte) (int, bool) {
	first, _, _ := strings.Cut(string(pidFile), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	return pid, err == nil && pid > 0
}

// processName returns the command name of a live process; without /proc
// every process looks dead.
func processName(pid int) (name string, alive bool) {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(comm)), err == nil
}

// worksIn reports whether process pid's working directory is dir, comparing
// the directories themselves so that symlinks and bind mounts cannot fool
// it; known is false when we may not look.
func worksIn(pid int, dir string) (same, known bool) {
	cwd, err := os.Stat(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return false, false
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return false, false
	}
	return os.SameFile(cwd, fi), true
}
