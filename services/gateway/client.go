package gateway

import (
	"context"
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// clientHeader carries a REST call's client address to the gRPC handler
// through grpc-gateway (which forwards Grpc-Metadata-* headers as
// metadata): "<nonce> <address>". The nonce is the process's own, so a
// caller cannot set the header, or the metadata on a direct gRPC call,
// and be believed.
const (
	clientHeader = "Grpc-Metadata-Vigil-Client-Addr"
	clientMD     = "vigil-client-addr"
)

// clientAddr is the address of a gRPC call's client as the gateway sees
// it: the REST client's (see clientHeader), or the gRPC peer's, or, when
// the peer is a trusted proxy, the address it forwards (x-forwarded-for).
// IPv6 addresses are their /64, which one client usually holds whole.
func (s *Service) clientAddr(ctx context.Context) string {
	if addr, ok := s.relayedFor(ctx); ok {
		return addr
	}
	md, _ := metadata.FromIncomingContext(ctx)
	pr, ok := peer.FromContext(ctx)
	if !ok || pr.Addr == nil {
		return ""
	}
	return s.forwardedFor(pr.Addr.String(), md.Get("x-forwarded-for"))
}

// relayedFor is the client address of a call the gateway made itself on
// behalf of an HTTP client (REST, the web console), from the metadata
// only this process can sign with its nonce.
func (s *Service) relayedFor(ctx context.Context) (string, bool) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(clientMD); len(v) == 1 {
		if nonce, addr, ok := strings.Cut(v[0], " "); ok && subtle.ConstantTimeCompare([]byte(nonce), []byte(s.restNonce)) == 1 {
			return addr, true
		}
	}
	return "", false
}

// withClientAddr passes a REST call's client address on to the gRPC
// handler, replacing whatever the caller sent under that name.
func (s *Service) withClientAddr(r *http.Request) {
	for k := range r.Header {
		if strings.EqualFold(k, clientHeader) {
			delete(r.Header, k)
		}
	}
	if v := s.clientAddrMD(r); v != "" {
		r.Header.Set(clientHeader, v)
	}
}

// clientAddrMD is the vigil-client-addr metadata for the calls made on
// behalf of HTTP request r (REST, the console): the process's nonce and
// the client's address, so that login throttling counts the client.
func (s *Service) clientAddrMD(r *http.Request) string {
	addr := s.forwardedFor(r.RemoteAddr, r.Header.Values("X-Forwarded-For"))
	if addr == "" {
		return ""
	}
	return s.restNonce + " " + addr
}

// viaTLS reports whether a trusted proxy says the client reached it
// over TLS (X-Forwarded-Proto: https); a client's own say is ignored.
func (s *Service) viaTLS(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && s.trusted(ip.Unmap()) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// forwardedFor is the client behind remote (host:port): remote itself,
// unless it is a trusted proxy (Options.TrustedProxies), when it is the
// last address in X-Forwarded-For that is not a trusted proxy.
func (s *Service) forwardedFor(remote string, xff []string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	ip = ip.Unmap()
	if s.trusted(ip) {
		var hops []string
		for _, v := range xff {
			hops = append(hops, strings.Split(v, ",")...)
		}
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				// What a trusted proxy forwards is an address; anything
				// else was added before it, by the client.
				break
			}
			ip = hop.Unmap()
			if !s.trusted(ip) {
				break
			}
		}
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

func (s *Service) trusted(ip netip.Addr) bool {
	for _, p := range s.opts.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
