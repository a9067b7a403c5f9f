package testkit

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ops/vigil/pkg/pgcluster"
)

// StoppablePostgres is a PostgreSQL cluster of one test's own, which the
// test stops and starts again to play an outage without disturbing the
// shared cluster of the other tests. Its DSNs stay valid across restarts
// (the socket lives in the data directory), so pools reconnect by
// themselves once it is back.
type StoppablePostgres struct {
	t       testing.TB
	dataDir string

	mu      sync.Mutex
	cluster *pgcluster.Cluster
}

// OwnPostgres starts a cluster for t alone (durability off for speed) and
// stops it and removes its files when the test ends.
func OwnPostgres(t testing.TB) *StoppablePostgres {
	t.Helper()
	// Not t.TempDir: the server user must be able to enter it when we are
	// root, and a short path keeps the socket in the data directory.
	dir, err := os.MkdirTemp("", "vigil-testkit-own-pg-")
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("testkit: %v", err)
	}
	p := &StoppablePostgres{t: t, dataDir: filepath.Join(dir, "data")}
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

// DSN is the superuser's connection string to database dbname.
func (p *StoppablePostgres) DSN(dbname string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cluster.DSN(dbname)
}

// Start starts the cluster (again); it fails the test if it cannot.
func (p *StoppablePostgres) Start() {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgcluster.Start(ctx, pgcluster.Options{
		DataDir:  p.dataDir,
		Settings: map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"},
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		p.t.Fatalf("testkit: start PostgreSQL: %v\n%s", err, postgresInstallHint)
	}
	p.mu.Lock()
	p.cluster = c
	p.mu.Unlock()
}

// Stop shuts the cluster down (fast shutdown: clients are disconnected);
// it may be called again, also after the test's own Stop.
func (p *StoppablePostgres) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p.mu.Lock()
	c := p.cluster
	p.mu.Unlock()
	_ = c.Stop(ctx) // idempotent; a server that had exited is stopped as well
}
