package gateway

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// The client is the address a request comes from, unless that is a
// trusted proxy: then the last address it forwards that is not one.
func TestForwardedFor(t *testing.T) {
	t.Parallel()
	s := &Service{opts: Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
	for _, tt := range []struct {
		remote string
		xff    []string
		want   string
	}{
		{"203.0.113.5:1234", nil, "203.0.113.5"},
		{"203.0.113.5:1234", []string{"198.51.100.1"}, "203.0.113.5"},
		{"10.1.2.3:80", []string{"198.51.100.1"}, "198.51.100.1"},
		{"10.1.2.3:80", []string{"6.6.6.6, 198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"10.1.2.3:80", []string{"6.6.6.6", "198.51.100.1"}, "198.51.100.1"},
		{"10.1.2.3:80", []string{"not-an-ip, 10.9.9.9"}, "10.9.9.9"},
		{"10.1.2.3:80", nil, "10.1.2.3"},
		{"[2001:db8:1:2:3:4:5:6]:443", nil, "2001:db8:1:2::/64"},
		{"[::ffff:203.0.113.5]:1", nil, "203.0.113.5"},
		{"garbage", nil, ""},
	} {
		require.Equal(t, tt.want, s.forwardedFor(tt.remote, tt.xff), "%s %v", tt.remote, tt.xff)
	}
}

// A call may not name its own client address: only the REST layer's, with
// the process's nonce, is believed.
func TestClientAddrNeedsTheNonce(t *testing.T) {
	t.Parallel()
	s := &Service{restNonce: "n0nce"}
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP("203.0.113.5"), Port: 1}})
	for _, forged := range []string{"198.51.100.1", "guess 198.51.100.1", "n0nc 198.51.100.1"} {
		got := s.clientAddr(metadata.NewIncomingContext(ctx, metadata.Pairs(clientMD, forged, "x-forwarded-for", "198.51.100.1")))
		require.Equal(t, "203.0.113.5", got, forged)
	}
	require.Equal(t, "198.51.100.1", s.clientAddr(metadata.NewIncomingContext(ctx, metadata.Pairs(clientMD, "n0nce 198.51.100.1"))))
}
