package auth

import (
	"context"
	"crypto/ed25519"
	"errors"
	"time"
)

// A Vigil service that calls another on its own behalf, not for a caller
// (analysis asking deploy for a read-only cluster credential), proves
// which service it is with a key of its own: ServiceIdentity signs a
// one-minute assertion naming it, and the called service knows each
// peer's public key (ServiceAuthenticator.Peers). The name comes from
// the key that verified, never from the token alone: one service cannot
// pass for another, and the gateway cannot assert a service.

// KindService is a Vigil service calling another on its own behalf.
const KindService Kind = "service"

// ServiceIdentity is a grpc.PerRPCCredentials that asserts, on every call
// to Audience, that the caller is the service Name.
type ServiceIdentity struct {
	// Name of the calling service ("analysis").
	Name string
	// Key is the calling service's own Ed25519 key.
	Key ed25519.PrivateKey
	// Audience is the called service ("deploy").
	Audience string
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (c ServiceIdentity) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	if c.Name == "" || len(c.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("no service identity key to call " + c.Audience + " with")
	}
	pub, _ := c.Key.Public().(ed25519.PublicKey)
	return bearerAssertion(c.Key, KID(pub), c.Audience, c.Name, assertion{Kind: KindService})
}

// RequireTransportSecurity implements credentials.PerRPCCredentials (see
// ServiceCredentials).
func (ServiceIdentity) RequireTransportSecurity() bool { return false }

// peer authenticates a service calling on its own behalf with its key,
// and returns its assertion.
func (a ServiceAuthenticator) peer(secret string) (Principal, assertion, bool) {
	now := time.Now()
	for name, pub := range a.Peers {
		var c assertion
		if err := NewVerifier(pub).parse(secret, &c, ServiceAudience(a.Service), now); err != nil {
			continue
		}
		if c.Kind != KindService || c.Subject != name {
			return Principal{}, assertion{}, false
		}
		return Principal{Kind: KindService, Name: name}, c, true
	}
	return Principal{}, assertion{}, false
}
