// Package auth authenticates callers of Vigil's APIs and webhooks and
// carries who they are in the request context. For now there is one
// credential, the bootstrap admin token; API keys and JWTs come later and
// plug in behind Authenticator.
package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Role is what a principal may do.
type Role string

// Roles, from most to least powerful.
const (
	RoleAdmin    Role = "admin"
	RoleOperator Role = "operator"
	RoleViewer   Role = "viewer"
)

// Principal is an authenticated caller.
type Principal struct {
	Name string
	Role Role
}

// ErrUnauthenticated means no valid credential was presented.
var ErrUnauthenticated = errors.New("missing or invalid credentials")

// Authenticator turns a presented secret into a principal.
type Authenticator interface {
	Authenticate(ctx context.Context, secret string) (Principal, error)
}

// AdminToken accepts exactly one secret, the bootstrap admin token.
type AdminToken string

// Authenticate implements Authenticator in constant time.
func (t AdminToken) Authenticate(_ context.Context, secret string) (Principal, error) {
	if t == "" || secret == "" || subtle.ConstantTimeCompare([]byte(t), []byte(secret)) != 1 {
		return Principal{}, ErrUnauthenticated
	}
	return Principal{Name: "admin", Role: RoleAdmin}, nil
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

// publicMethods need no credentials: health checks, so that orchestrators
// can probe without a token.
var publicMethods = map[string]bool{
	"/grpc.health.v1.Health/Check": true,
	"/grpc.health.v1.Health/Watch": true,
	"/grpc.health.v1.Health/List":  true,
}

// UnaryInterceptor authenticates every unary call but health checks from
// its "authorization: Bearer ..." metadata.
func UnaryInterceptor(a Authenticator) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if publicMethods[info.FullMethod] {
			return handler(ctx, req)
		}
		ctx, err := authenticate(ctx, a)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor is UnaryInterceptor for streams.
func StreamInterceptor(a Authenticator) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if publicMethods[info.FullMethod] {
			return handler(srv, ss)
		}
		ctx, err := authenticate(ss.Context(), a)
		if err != nil {
			return err
		}
		return handler(srv, &wrappedStream{ServerStream: ss, ctx: ctx})
	}
}

type wrappedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *wrappedStream) Context() context.Context { return w.ctx }

func authenticate(ctx context.Context, a Authenticator) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	var secret string
	if v := md.Get("authorization"); len(v) > 0 {
		secret = bearer(v[0])
	}
	p, err := a.Authenticate(ctx, secret)
	if err != nil {
		return ctx, status.Error(codes.Unauthenticated, "missing or invalid credentials: send \"authorization: Bearer <token>\"")
	}
	return WithPrincipal(ctx, p), nil
}

// ForwardCredentials copies the caller's authorization metadata onto an
// outgoing call, so the gateway's calls to a service are authenticated as
// the original caller.
func ForwardCredentials(ctx context.Context) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("authorization"); len(v) > 0 {
		return metadata.AppendToOutgoingContext(ctx, "authorization", v[0])
	}
	return ctx
}
