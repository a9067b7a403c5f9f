package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/services/notify/channel"
)

// Which failures leave it open whether the provider got the request: a
// wait for the answer that ran out, not a connection never made nor an
// answer that said no.
func TestAwaitedInVain(t *testing.T) {
	t.Parallel()
	// A real timeout awaiting an answer, from a server that never gives one.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	timeout := get("http://" + ln.Addr().String())
	require.Error(t, timeout)
	// A connection refused: a port nobody listens on.
	free, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := free.Addr().String()
	require.NoError(t, free.Close())
	refused := get("http://" + addr)
	require.Error(t, refused)

	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"timeout awaiting the answer", fmt.Errorf("telegram: sendMessage: %w", timeout), true},
		{"deadline", &channel.Error{Err: context.DeadlineExceeded, Retry: true}, true},
		{"connection refused", &channel.Error{Err: refused, Retry: true}, false},
		{"dial timeout", &net.OpError{Op: "dial", Err: context.DeadlineExceeded}, false},
		{"502", &channel.Error{Err: errors.New("bad gateway"), Status: 502, Retry: true}, false},
	} {
		assert.Equal(t, tc.want, awaitedInVain(tc.err), tc.name)
	}
}

// get is the error of a GET of url that waits 50 ms for its answer.
func get(url string) error {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 50 * time.Millisecond}).Do(req)
	if err == nil {
		_ = resp.Body.Close()
		return errors.New("answered")
	}
	return err
}
