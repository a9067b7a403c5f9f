package auth

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Service-to-service calls (the gateway forwarding a caller's request to
// monitor or deploy in another process) carry a short-lived assertion
// signed by the gateway: who the original caller is, for which service.
// The receiving service verifies it with the gateway's public key and
// authorises the caller again against the same policy.

// ServiceAudience is the aud of assertions for service.
func ServiceAudience(service string) string { return "vigil-service:" + service }

// assertionTTL is short: an assertion is made for one call.
const assertionTTL = time.Minute

type assertion struct {
	Claims
	Kind     Kind     `json:"vk"`
	Role     Role     `json:"vr,omitempty"`
	Scopes   []Scope  `json:"vs,omitempty"`
	Teams    []string `json:"vt,omitempty"`
	AllTeams bool     `json:"va,omitempty"`
	Unowned  bool     `json:"vu,omitempty"`
	KeyID    string   `json:"vkid,omitempty"`
}

// NewVerifier returns a KeySet that verifies with keys and cannot sign
// (a service that only receives assertions holds the gateway's public
// key, not its private one).
func NewVerifier(keys ...ed25519.PublicKey) *KeySet {
	k := &KeySet{verify: map[string]ed25519.PublicKey{}}
	for _, p := range keys {
		k.verify[KID(p)] = p
	}
	return k
}

// ServiceCredentials is a grpc.PerRPCCredentials that asserts the
// principal of each call's context to the service it calls.
type ServiceCredentials struct {
	Keys    *KeySet
	Service string
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (c ServiceCredentials) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	p, ok := FromContext(ctx)
	if !ok {
		return nil, errors.New("no caller to assert to " + c.Service)
	}
	if c.Keys == nil || c.Keys.signer == nil {
		return nil, errors.New("no signing key to assert the caller to " + c.Service)
	}
	return bearerAssertion(c.Keys.signer, c.Keys.signerKID, c.Service, p.Name, assertion{
		Claims: Claims{SessionID: p.SessionID},
		Kind:   p.Kind, Role: p.Role, Scopes: p.Scopes, Teams: p.Teams, AllTeams: p.AllTeams, Unowned: p.Unowned, KeyID: p.KeyID,
	})
}

// bearerAssertion signs a, for subject, valid a minute for service, with
// key (its id kid), as an authorization header.
func bearerAssertion(key ed25519.PrivateKey, kid, service, subject string, a assertion) (map[string]string, error) {
	now := time.Now()
	a.RegisteredClaims = jwt.RegisteredClaims{
		Issuer: Issuer, Subject: subject, Audience: jwt.ClaimStrings{ServiceAudience(service)}, ID: uuid.NewString(),
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(assertionTTL)),
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, a)
	t.Header["kid"] = kid
	s, err := t.SignedString(key)
	if err != nil {
		return nil, err
	}
	return map[string]string{"authorization": "Bearer " + s}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
// Assertions are bound to one service and live a minute; put the
// services' network behind TLS (a mesh) where it is shared.
func (ServiceCredentials) RequireTransportSecurity() bool { return false }

// ServiceAuthenticator accepts the gateway's assertions for Service, the
// assertions of the Peers (services calling on their own behalf, each
// verified with its own key), and hands any other secret to Fallback
// (the bootstrap admin token, when the service was told to accept it), if
// set.
type ServiceAuthenticator struct {
	Keys    *KeySet
	Service string
	// Peers are the public keys of the services that may call Service on
	// their own behalf, by name.
	Peers    map[string]ed25519.PublicKey
	Fallback Authenticator
	// Spent, when set, accepts each assertion once (by its jti): one
	// captured on the way cannot be played again within its minute.
	Spent Spender
}

// Spender remembers the ids of one-use assertions for every replica of a
// service (pkg/replay keeps them in the service's schema).
type Spender interface {
	// Spend records id as used until until, and says whether it was new.
	Spend(ctx context.Context, id string, until time.Time) (fresh bool, err error)
}

// spend accepts the assertion c once, when a Spender is set.
func (a ServiceAuthenticator) spend(ctx context.Context, c assertion) error {
	if a.Spent == nil {
		return nil
	}
	if c.ID == "" || len(c.ID) > 64 || c.ExpiresAt == nil {
		return ErrUnauthenticated
	}
	// Kept as long as the assertion would verify: until exp, plus the
	// clock skew parse allows.
	fresh, err := a.Spent.Spend(ctx, c.ID, c.ExpiresAt.Add(clockSkew))
	if err != nil {
		return fmt.Errorf("record assertion %s: %w", c.ID, err)
	}
	if !fresh {
		return fmt.Errorf("%w: assertion %s was used already", ErrUnauthenticated, c.ID)
	}
	return nil
}

// Authenticate implements Authenticator.
func (a ServiceAuthenticator) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if !LooksLikeJWT(secret) {
		if a.Fallback == nil {
			return Principal{}, ErrUnauthenticated
		}
		return a.Fallback.Authenticate(ctx, secret)
	}
	var c assertion
	if a.Keys == nil || a.Keys.parse(secret, &c, ServiceAudience(a.Service), time.Now()) != nil {
		p, pc, ok := a.peer(secret)
		if !ok {
			return Principal{}, ErrUnauthenticated
		}
		if err := a.spend(ctx, pc); err != nil {
			return Principal{}, err
		}
		return p, nil
	}
	if c.Kind == "" || c.Kind == KindService {
		// The gateway asserts its callers; a service is only what its
		// own key says it is.
		return Principal{}, ErrUnauthenticated
	}
	if err := a.spend(ctx, c); err != nil {
		return Principal{}, err
	}
	return Principal{
		Kind: c.Kind, Name: c.Subject, Role: c.Role, Scopes: c.Scopes, Teams: c.Teams, AllTeams: c.AllTeams,
		Unowned: c.Unowned, KeyID: c.KeyID, SessionID: c.SessionID,
	}, nil
}
