// Package faultproxy is a TCP proxy for tests that breaks the network on
// command: between a service and a dependency it adds latency, resets the
// connections, refuses or black-holes new ones (a partition), and heals.
// Given several upstreams it also spreads connections over them, the way a
// Kubernetes Service does over its pods, skipping upstreams that refuse.
package faultproxy

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// Mode is how the proxy treats connections.
type Mode int

const (
	// Pass forwards connections, after the latency if any.
	Pass Mode = iota
	// Refuse resets every connection, open or new, as a peer that is down
	// or a firewall answering with RST would.
	Refuse
	// Blackhole accepts new connections but forwards nothing either way,
	// on them or on the open ones, as a dropped route would: clients see
	// only their own timeouts.
	Blackhole
)

func (m Mode) String() string {
	switch m {
	case Refuse:
		return "refuse"
	case Blackhole:
		return "blackhole"
	}
	return "pass"
}

// Proxy listens on 127.0.0.1 and forwards each connection to an upstream.
type Proxy struct {
	ln        net.Listener
	upstreams []Upstream

	mu      sync.Mutex
	mode    Mode
	latency time.Duration
	next    int
	conns   map[*link]struct{}
	healed  chan struct{} // closed when the mode leaves Blackhole
	closed  bool
	wg      sync.WaitGroup
	counter Counts
}

// Upstream is where a connection goes: network "tcp" or "unix", and the
// address.
type Upstream struct {
	Network, Address string
}

// Counts are what the proxy did so far.
type Counts struct {
	Accepted, Reset int
}

// link is one proxied connection: the client's side and the upstream's.
type link struct {
	client, server net.Conn
}

// New starts a proxy to upstreams on a free loopback port.
func New(upstreams ...Upstream) (*Proxy, error) {
	if len(upstreams) == 0 {
		return nil, errors.New("faultproxy: no upstream")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, upstreams: upstreams, conns: map[*link]struct{}{}, healed: make(chan struct{})}
	close(p.healed)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Counts are the connections accepted and reset so far.
func (p *Proxy) Counts() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counter
}

// SetLatency delays every chunk of data, each way, by d from now on.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency = d
}

// ResetAll resets the open connections; new ones pass as before.
func (p *Proxy) ResetAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resetLocked()
}

// SetMode switches to m. Refuse resets the open connections at once;
// Blackhole stalls them. Leaving Blackhole resets the stalled
// connections: the data they held back is gone, as on a real network
// after a long enough cut, and their clients must reconnect.
func (p *Proxy) SetMode(m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	was := p.mode
	p.mode = m
	switch {
	case m == Blackhole && was != Blackhole:
		p.healed = make(chan struct{})
	case m != Blackhole && was == Blackhole:
		close(p.healed)
		p.resetLocked()
	}
	if m == Refuse {
		p.resetLocked()
	}
}

// Heal is SetMode(Pass) without latency.
func (p *Proxy) Heal() {
	p.SetMode(Pass)
	p.SetLatency(0)
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	if p.mode == Blackhole {
		close(p.healed)
		p.mode = Pass
	}
	p.resetLocked()
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) resetLocked() {
	for l := range p.conns {
		reset(l.client)
		if l.server != nil {
			reset(l.server)
		}
		p.counter.Reset++
	}
	clear(p.conns)
}

// reset closes c with an RST rather than a FIN, as a crashed peer would.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.counter.Accepted++
		mode := p.mode
		p.mu.Unlock()
		if mode == Refuse {
			reset(c)
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	l := &link{client: client}
	if !p.track(l) {
		reset(client)
		return
	}
	defer p.untrack(l)
	// A black-holed connection is accepted and then hears nothing until
	// the cut heals or it is reset.
	if !p.waitHealed(client) {
		return
	}
	server, err := p.dial()
	if err != nil {
		reset(client)
		return
	}
	p.mu.Lock()
	if _, open := p.conns[l]; !open {
		p.mu.Unlock()
		reset(server)
		return
	}
	l.server = server
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { p.pipe(server, client); done <- struct{}{} }()
	go func() { p.pipe(client, server); done <- struct{}{} }()
	<-done
	reset(client)
	reset(server)
	<-done
}

func (p *Proxy) track(l *link) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[l] = struct{}{}
	return true
}

func (p *Proxy) untrack(l *link) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, l)
}

// waitHealed waits while the proxy black-holes; false when c was reset
// meanwhile.
func (p *Proxy) waitHealed(c net.Conn) bool {
	p.mu.Lock()
	healed := p.healed
	p.mu.Unlock()
	<-healed
	// Reset by the heal (or by Close): the client must start over.
	p.mu.Lock()
	defer p.mu.Unlock()
	for l := range p.conns {
		if l.client == c {
			return true
		}
	}
	return false
}

// dial connects to the next upstream that answers, round robin.
func (p *Proxy) dial() (net.Conn, error) {
	p.mu.Lock()
	start := p.next
	p.next = (p.next + 1) % len(p.upstreams)
	p.mu.Unlock()
	var errs []error
	for i := range p.upstreams {
		u := p.upstreams[(start+i)%len(p.upstreams)]
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var d net.Dialer
		c, err := d.DialContext(ctx, u.Network, u.Address)
		cancel()
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// pipe copies from src to dst, holding each chunk for the latency and
// while the proxy black-holes.
func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			latency, healed := p.latency, p.healed
			p.mu.Unlock()
			<-healed
			if latency > 0 {
				time.Sleep(latency)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		// EOF included: neither Postgres nor NATS half-closes, so the
		// caller ends both sides.
		if err != nil {
			return
		}
	}
}
