package testkit

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-ops/vigil/pkg/bus"
)

// TestStreams are small stream limits for tests: JetStream reserves each
// stream's MaxBytes on disk, and tests run many servers at once.
var TestStreams = bus.StreamOptions{MaxBytes: 64 << 20}

// NATS starts an embedded NATS server with JetStream (file storage, sync
// always, as Vigil runs it) for this test alone, provisions Vigil's streams,
// and returns its URL. The server stops when the test ends.
func NATS(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vigil-nats-")
	if err != nil {
		t.Fatalf("testkit: nats store dir: %v", err)
	}
	ns, err := bus.RunServer(bus.ServerOptions{Port: -1, StoreDir: dir, SyncAlways: true})
	if err != nil {
		t.Fatalf("testkit: start embedded NATS: %v", err)
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
		_ = os.RemoveAll(dir)
	})
	_, js := JetStream(t, ns.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bus.Provision(ctx, js, TestStreams); err != nil {
		t.Fatalf("testkit: provision streams: %v", err)
	}
	return ns.ClientURL()
}

// JetStream connects to url for this test; the connection closes when the
// test ends.
func JetStream(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, js, err := bus.Connect(ctx, url, t.Name(), Logger(t))
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc, js
}
