// Package auth says who is calling Vigil and what they may do. A caller is
// authenticated first (Authenticator: the bootstrap admin token, an API
// key, a session token) into a Principal; then every RPC is authorised
// against the one policy table (policy.go) by Interceptor, and the
// service that holds the data checks the team of what is reached
// (Principal.Reaches).
package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strings"
)

// Role is what a person may do.
type Role string

// Roles, from most to least powerful.
const (
	RoleAdmin    Role = "admin"
	RoleOperator Role = "operator"
	RoleViewer   Role = "viewer"
)

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleOperator || r == RoleViewer }

// Scope is what an API key may do.
type Scope string

// Scopes of API keys.
const (
	ScopeIngest  Scope = "ingest"
	ScopeRead    Scope = "read"
	ScopeOperate Scope = "operate"
	ScopeAdmin   Scope = "admin"
)

// Valid reports whether s is one of the scopes.
func (s Scope) Valid() bool {
	return s == ScopeIngest || s == ScopeRead || s == ScopeOperate || s == ScopeAdmin
}

// Permission is what an RPC needs. They are not ordered: an ingest key
// may send alerts and read nothing, a viewer may read and send nothing.
type Permission string

// Permissions, as the policy table names them.
const (
	// Public needs no credentials (health checks, login).
	Public Permission = "public"
	// Authenticated needs any valid credential (who am I, logout).
	Authenticated Permission = "authenticated"
	// Ingest sends alerts.
	Ingest Permission = "ingest"
	// Read reads the apps (and their incidents, deployments...) of the
	// caller's teams.
	Read Permission = "read"
	// Operate acts on the apps of the caller's teams.
	Operate Permission = "operate"
	// Admin manages users, clusters, channels and everything else.
	Admin Permission = "admin"
	// Internal is for Vigil's own services only, those the rule names
	// (Rule.Callers), each authenticated by its own key: no user or key
	// holds it, not even an admin.
	Internal Permission = "internal"
)

// Kind is what sort of credential a principal presented.
type Kind string

// Kinds of principals.
const (
	KindUser      Kind = "user"
	KindKey       Kind = "key"
	KindBootstrap Kind = "bootstrap"
	// KindSource is a webhook source verified by its own mechanism (a
	// signature with its secret): it may only send alerts.
	KindSource Kind = "source"
)

// Principal is an authenticated caller.
type Principal struct {
	Kind Kind
	// Name is the user name, the key's name, or "admin" for the bootstrap
	// token.
	Name string
	// Role of a user (admin for the bootstrap token).
	Role Role
	// Scopes of a key.
	Scopes []Scope
	// Teams whose apps the principal reaches; every team with AllTeams.
	Teams    []string
	AllTeams bool
	// Unowned: the principal reaches what belongs to no team (an incident
	// no app claims): admins, and members of the configured default team.
	Unowned bool
	// KeyID of a key; SessionID of a user's session token.
	KeyID     string
	SessionID string
}

// Has reports whether p holds perm (on at least one team, for the
// team-scoped permissions).
func (p Principal) Has(perm Permission) bool {
	switch perm {
	case Public:
		return true
	case Authenticated:
		return p.Kind != ""
	}
	switch p.Kind {
	case KindUser, KindBootstrap:
		switch p.Role {
		case RoleAdmin:
			return true
		case RoleOperator:
			return perm == Read || perm == Operate
		case RoleViewer:
			return perm == Read
		}
	case KindKey:
		for _, s := range p.Scopes {
			switch {
			case s == ScopeAdmin,
				s == ScopeIngest && perm == Ingest,
				s == ScopeRead && perm == Read,
				s == ScopeOperate && (perm == Read || perm == Operate):
				return true
			}
		}
	case KindSource:
		return perm == Ingest
	}
	return false
}

// Reaches reports whether p may reach the apps of team; team "" is what
// belongs to no team (Unowned).
func (p Principal) Reaches(team string) bool {
	if team == "" {
		return p.AllTeams || p.Unowned
	}
	return p.AllTeams || slices.Contains(p.Teams, team)
}

// String names p for logs and the audit log: "user:alice",
// "key:ci-alerts", "bootstrap:admin".
func (p Principal) String() string {
	if p.Kind == "" {
		return "anonymous"
	}
	return string(p.Kind) + ":" + p.Name
}

// ErrUnauthenticated means no valid credential was presented.
var ErrUnauthenticated = errors.New("missing or invalid credentials")

// Authenticator turns a presented secret into a principal. It answers
// ErrUnauthenticated (wrapped or not) for a secret it does not accept.
type Authenticator interface {
	Authenticate(ctx context.Context, secret string) (Principal, error)
}

// AdminToken accepts exactly one secret, the bootstrap admin token: an
// admin of every team, for setting Vigil up (the first users and keys)
// and for recovery.
type AdminToken string

// Authenticate implements Authenticator in constant time.
func (t AdminToken) Authenticate(_ context.Context, secret string) (Principal, error) {
	if t == "" || secret == "" || subtle.ConstantTimeCompare([]byte(t), []byte(secret)) != 1 {
		return Principal{}, ErrUnauthenticated
	}
	return Principal{Kind: KindBootstrap, Name: "admin", Role: RoleAdmin, AllTeams: true, Unowned: true}, nil
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the caller, if authenticated.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Actor names the caller of ctx for records ("who acknowledged"): the
// principal's name, or "unknown".
func Actor(ctx context.Context) string {
	if p, ok := FromContext(ctx); ok {
		return p.Name
	}
	return "unknown"
}

// HTTPSecret returns the secret of an HTTP request: a Bearer token, or the
// password of Basic auth (what Alertmanager's http_config basic_auth sends,
// with any user name).
func HTTPSecret(r *http.Request) string {
	if _, pass, ok := r.BasicAuth(); ok {
		return pass
	}
	return bearer(r.Header.Get("Authorization"))
}

func bearer(h string) string {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}
