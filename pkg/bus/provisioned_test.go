package bus_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// lockedBuffer is a log's output, written and read concurrently.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A service started on a NATS whose streams were not provisioned says once
// what to run, waits, and goes on as soon as admin has provisioned them.
func TestWaitProvisionedWaitsForTheStreams(t *testing.T) {
	t.Parallel()
	b := testkit.LockedNATS(t)
	_, admin := b.Conn(t, bus.UserAdmin)
	ctx := context.Background()
	for _, s := range bus.Streams {
		require.NoError(t, admin.DeleteStream(ctx, s.Name))
	}
	_, js := b.Conn(t, "monitor")
	var logs lockedBuffer
	done := make(chan error, 1)
	go func() { done <- bus.WaitProvisioned(ctx, js, "monitor", slog.New(slog.NewTextHandler(&logs, nil))) }()

	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "vigil nats provision") }, 30*time.Second, 20*time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("returned before the streams exist: %v", err)
	default:
	}
	require.NoError(t, bus.Provision(ctx, admin, testkit.TestStreams))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("still waiting after the streams were provisioned")
	}
	assert.Equal(t, 1, strings.Count(logs.String(), "vigil nats provision"), "said once:\n%s", logs.String())
	assert.Contains(t, logs.String(), "streams provisioned: starting")
}
