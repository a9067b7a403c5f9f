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
// and returns its URL. The server stops when the test ends. It is open to
// any client, for tests of one service or of the bus; LockedNATS is the bus
// as Vigil runs it, every client logged in with its role's permissions.
func NATS(t testing.TB) string {
	t.Helper()
	return NATSWithStreams(t, TestStreams)
}

// NATSWithStreams is NATS with the streams provisioned to opts (a tiny
// MaxBytes, say, to fill one).
func NATSWithStreams(t testing.TB, opts bus.StreamOptions) string {
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
	if err := bus.Provision(ctx, js, opts); err != nil {
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
	nc, js, err := bus.Connect(ctx, url, t.Name(), bus.Credentials{}, Logger(t))
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc, js
}

// Bus is a locked NATS server of a test: it lets in only Vigil's users
// (bus.Users), each with its password and its role's permissions.
type Bus struct {
	URL       string
	Passwords map[string]string
}

// Credentials are user's login.
func (b *Bus) Credentials(user string) bus.Credentials {
	return bus.Credentials{User: user, Password: b.Passwords[user]}
}

// Conn connects to the server as user, the way a Vigil process does
// (bus.Connect); the connection closes when the test ends.
func (b *Bus) Conn(t testing.TB, user string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, js, err := bus.Connect(ctx, b.URL, t.Name()+"-"+user, b.Credentials(user), Logger(t))
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc, js
}

// provision creates the streams as admin.
func (b *Bus) provision(t testing.TB) {
	t.Helper()
	_, js := b.Conn(t, bus.UserAdmin)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bus.Provision(ctx, js, TestStreams); err != nil {
		t.Fatalf("testkit: provision streams: %v", err)
	}
}

// newPasswords returns a new password for every user of Vigil.
func newPasswords() map[string]string {
	pw := map[string]string{}
	for _, u := range bus.Users() {
		pw[u] = bus.NewPassword()
	}
	return pw
}

// LockedNATS is NATS with the bus locked as `vigil up` locks it: every
// user of Vigil with a password of its own and its role's permissions, the
// streams provisioned by admin.
func LockedNATS(t testing.TB) *Bus {
	t.Helper()
	dir, err := os.MkdirTemp("", "vigil-nats-")
	if err != nil {
		t.Fatalf("testkit: nats store dir: %v", err)
	}
	b := &Bus{Passwords: newPasswords()}
	var users []bus.Credentials
	for _, u := range bus.Users() {
		users = append(users, b.Credentials(u))
	}
	ns, err := bus.RunServer(bus.ServerOptions{Port: -1, StoreDir: dir, SyncAlways: true, Users: users})
	if err != nil {
		t.Fatalf("testkit: start embedded NATS: %v", err)
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
		_ = os.RemoveAll(dir)
	})
	b.URL = ns.ClientURL()
	b.provision(t)
	return b
}
