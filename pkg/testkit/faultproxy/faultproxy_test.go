package faultproxy_test

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit/faultproxy"
)

// echo is an upstream that answers each line with name and the line.
func echo(t *testing.T, name string) faultproxy.Upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(name + ":" + line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return faultproxy.Upstream{Network: "tcp", Address: ln.Addr().String()}
}

func start(t *testing.T, ups ...faultproxy.Upstream) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(ups...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

type client struct {
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, p *faultproxy.Proxy) *client {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return &client{c: c, r: bufio.NewReader(c)}
}

// ask sends a line and returns the answer, or the error within timeout.
func (c *client) ask(line string, timeout time.Duration) (string, error) {
	_ = c.c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	return c.r.ReadString('\n')
}

func TestPassRefuseBlackholeHeal(t *testing.T) {
	p := start(t, echo(t, "a"))

	c := dial(t, p)
	got, err := c.ask("hi", 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, "a:hi\n", got)

	// Refuse resets the open connection and every new one.
	p.SetMode(faultproxy.Refuse)
	_, err = c.ask("again", 5*time.Second)
	require.Error(t, err)
	// The reset may reach the new connection while it is still being
	// made, or at its first exchange.
	if nc, err := net.Dial("tcp", p.Addr()); err == nil {
		t.Cleanup(func() { _ = nc.Close() })
		_, err = (&client{c: nc, r: bufio.NewReader(nc)}).ask("new", 5*time.Second)
		require.Error(t, err)
	}

	// Blackhole: connected, but nothing comes back.
	p.SetMode(faultproxy.Blackhole)
	b := dial(t, p)
	_, err = b.ask("lost", 300*time.Millisecond)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout(), "a black hole times out rather than resets: %v", err)

	// Healed: the stalled connection was reset, a new one works.
	p.Heal()
	_, err = b.ask("after", 5*time.Second)
	require.Error(t, err)
	got, err = dial(t, p).ask("healed", 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, "a:healed\n", got)
	require.Positive(t, p.Counts().Reset)
}

func TestResetAllAndLatency(t *testing.T) {
	p := start(t, echo(t, "a"))
	c := dial(t, p)
	_, err := c.ask("one", 5*time.Second)
	require.NoError(t, err)
	p.ResetAll()
	_, err = c.ask("two", 5*time.Second)
	require.Error(t, err)

	// Latency delays, and loses nothing.
	p.SetLatency(200 * time.Millisecond)
	d := dial(t, p)
	_, err = d.ask("slow", 100*time.Millisecond)
	require.Error(t, err, "held for the latency each way")
	got, err := dial(t, p).ask("slow", 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, "a:slow\n", got)
}

// Several upstreams: connections go round robin and skip one that is down.
func TestRoundRobinSkipsDown(t *testing.T) {
	a, b := echo(t, "a"), echo(t, "b")
	down := faultproxy.Upstream{Network: "tcp", Address: "127.0.0.1:1"}
	p := start(t, a, down, b)
	seen := map[string]int{}
	for range 6 {
		got, err := dial(t, p).ask("x", 5*time.Second)
		require.NoError(t, err)
		seen[got]++
	}
	require.Positive(t, seen["a:x\n"])
	require.Positive(t, seen["b:x\n"])
	require.Equal(t, 6, seen["a:x\n"]+seen["b:x\n"])
}
