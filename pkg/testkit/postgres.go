package testkit

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-ops/vigil/pkg/pgcluster"
)

// postgresInstallHint follows every failure to start the shared cluster.
const postgresInstallHint = "integration tests need the PostgreSQL server binaries: " +
	"run `make deps`, or `apt-get install postgresql-15` on Debian/Ubuntu"

// sharedPostgres is the one cluster of this test binary, started by the
// first test that asks for it.
var sharedPostgres struct {
	once    sync.Once
	cluster *pgcluster.Cluster
	admin   *pgxpool.Pool // on the postgres database, for CREATE/DROP DATABASE
	err     error
}

// Postgres returns the DSN of a new, empty database for this test on the
// test binary's shared throwaway PostgreSQL cluster, and drops the database
// when the test ends. The cluster (started on first use, durability off
// for speed) listens only on a Unix socket and connects as superuser.
//
// If the cluster cannot start, Postgres fails the test with the reason and
// how to install PostgreSQL; it never skips.
func Postgres(t testing.TB) string {
	t.Helper()
	sharedPostgres.once.Do(startSharedPostgres)
	if err := sharedPostgres.err; err != nil {
		t.Fatalf("testkit: start PostgreSQL: %v\n%s", err, postgresInstallHint)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := databaseName(t.Name())
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := sharedPostgres.admin.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("testkit: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// FORCE ends connections the test left open, such as an unclosed pool.
		if _, err := sharedPostgres.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("testkit: drop database %s: %v", name, err)
		}
	})
	return sharedPostgres.cluster.DSN(name)
}

// postgresDirPattern names the temp dirs of shared clusters.
const postgresDirPattern = "vigil-testkit-pg-"

func startSharedPostgres() {
	pg := &sharedPostgres
	removeAbandonedPostgresDirs(os.TempDir())
	// Not t.TempDir: the cluster outlives the first test, and (when we are
	// root) its server user must be able to enter the directory.
	dir, err := os.MkdirTemp("", postgresDirPattern)
	if err != nil {
		pg.err = err
		return
	}
	removeDir := func() { _ = os.RemoveAll(dir) }
	if err := os.Chmod(dir, 0o755); err != nil {
		removeDir()
		pg.err = err
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{
		DataDir: filepath.Join(dir, "data"),
		// Crash safety is worthless for a throwaway cluster.
		Settings: map[string]string{
			"fsync":              "off",
			"synchronous_commit": "off",
			"full_page_writes":   "off",
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		removeDir()
		pg.err = err
		return
	}
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = cluster.Stop(ctx) // nothing is left to report to once the tests are done
		removeDir()
	}
	admin, err := pgxpool.New(ctx, cluster.DSN("postgres"))
	if err != nil {
		stop()
		pg.err = fmt.Errorf("connect to the postgres database: %w", err)
		return
	}
	pg.cluster, pg.admin = cluster, admin
	onExit(func() {
		admin.Close()
		stop()
	})
}

// removeAbandonedPostgresDirs deletes the dirs of shared clusters whose test
// binary ended without Main's cleanup (a panic, a -timeout, a binary without
// Main): the kernel stopped their server, but 40 MB stayed behind. A dir
// is kept while its server may still run or initdb may still be filling it.
func removeAbandonedPostgresDirs(base string) {
	dirs, _ := filepath.Glob(filepath.Join(base, postgresDirPattern+"*"))
	for _, dir := range dirs {
		fi, err := os.Stat(dir)
		if err != nil || time.Since(fi.ModTime()) < 10*time.Minute {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			pid, err := strconv.Atoi(strings.TrimSpace(first))
			if err != nil || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
				continue // running, or we cannot tell
			}
		}
		_ = os.RemoveAll(dir)
	}
}

// databaseName makes a unique database name that still says which test it
// belongs to, within PostgreSQL's 63-byte identifier limit.
func databaseName(testName string) string {
	const maxPrefix = 63 - len("test__") - 12
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		default:
			return '_'
		}
	}, testName)
	if len(name) > maxPrefix {
		name = name[:maxPrefix]
	}
	return "test_" + name + "_" + strings.ToLower(rand.Text()[:12])
}
