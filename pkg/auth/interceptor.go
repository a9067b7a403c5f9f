package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// AuditEntry is one audited call.
type AuditEntry struct {
	Time    time.Time
	Actor   string
	Method  string
	Target  string
	Code    codes.Code
	Message string
	TraceID string
	Peer    string
}

// Guard authenticates and then authorises every gRPC call against a
// policy table, and hands audited calls to Audit. REST calls reach the
// gRPC server through the gateway's own connection, so they pass the same
// Guard.
type Guard struct {
	Authn Authenticator
	// Policy by full method name; Policy (the package's) when nil.
	Policy map[string]Rule
	// Audit records an audited call once it has an answer; nil: no audit.
	Audit func(context.Context, AuditEntry)
	// Log notes refusals (at debug: a refusal is the caller's business,
	// and a scan must not flood the log).
	Log *slog.Logger
}

// UnaryInterceptor is a Guard with the package's policy and no audit.
func UnaryInterceptor(a Authenticator) grpc.UnaryServerInterceptor {
	return (&Guard{Authn: a}).Unary()
}

// StreamInterceptor is UnaryInterceptor for streams.
func StreamInterceptor(a Authenticator) grpc.StreamServerInterceptor {
	return (&Guard{Authn: a}).Stream()
}

// Unary returns the interceptor for unary calls.
func (g *Guard) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, rule, err := g.admit(ctx, info.FullMethod)
		if err != nil {
			g.record(ctx, info.FullMethod, rule, req, err)
			return nil, err
		}
		resp, err := handler(ctx, req)
		g.record(ctx, info.FullMethod, rule, req, err)
		return resp, err
	}
}

// Stream returns the interceptor for streams. The audit target of a
// server stream comes from its one request, read by the handler.
func (g *Guard) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, rule, err := g.admit(ss.Context(), info.FullMethod)
		if err != nil {
			g.record(ctx, info.FullMethod, rule, nil, err)
			return err
		}
		w := &wrappedStream{ServerStream: ss, ctx: ctx}
		if rule.Audit {
			// A stream that answers has been accepted: it is audited
			// then (a deployment's progress can take minutes; its
			// outcome is in its own history), or at its end if it
			// fails before answering.
			w.accepted = func() { g.record(ctx, info.FullMethod, rule, w.first, nil) }
		}
		err = handler(srv, w)
		if !w.sent {
			g.record(ctx, info.FullMethod, rule, w.first, err)
		}
		return err
	}
}

type wrappedStream struct {
	grpc.ServerStream
	ctx      context.Context
	first    any
	sent     bool
	accepted func()
}

func (w *wrappedStream) Context() context.Context { return w.ctx }

func (w *wrappedStream) SendMsg(m any) error {
	err := w.ServerStream.SendMsg(m)
	if err == nil && !w.sent {
		w.sent = true
		if w.accepted != nil {
			w.accepted()
		}
	}
	return err
}

func (w *wrappedStream) RecvMsg(m any) error {
	err := w.ServerStream.RecvMsg(m)
	if err == nil && w.first == nil {
		w.first = m
	}
	return err
}

// AdmitHTTP authenticates and authorises a REST call of method with the
// credentials of r before grpc-gateway reads its body (it is a
// server.Authorizer): 401 and 403 come before anything the body could
// earn. A refusal is audited here, its target filled from the path
// parameters; an admitted call then passes the interceptor as a gRPC
// call, which audits it with its result.
func (g *Guard) AdmitHTTP(r *http.Request, method string, params map[string]string) error {
	ctx := metadata.NewIncomingContext(r.Context(), metadata.Pairs("authorization", r.Header.Get("Authorization")))
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		ctx = peer.NewContext(ctx, &peer.Peer{Addr: net.TCPAddrFromAddrPort(ap)})
	}
	ctx, rule, err := g.admit(ctx, method)
	if err != nil {
		g.record(ctx, method, rule, pathParams(params), err)
	}
	return err
}

// pathParams are a REST route's path parameters, by request field path
// ("name", "app.name").
type pathParams map[string]string

// admit authenticates the caller (unless the method is public) and checks
// the method's permission: 401 comes before anything else, including a
// method nobody implements yet.
func (g *Guard) admit(ctx context.Context, method string) (context.Context, Rule, error) {
	policy := g.Policy
	if policy == nil {
		policy = Policy
	}
	rule, declared := policy[method]
	if rule.Audit {
		ctx = context.WithValue(ctx, actorKey{}, &actorHolder{})
	}
	if declared && rule.Permission == Public {
		// Credentials are optional here; valid ones name the caller
		// (logout with a refresh token, the audit log's actor).
		if p, err := g.authenticate(ctx); err == nil {
			ctx = WithPrincipal(ctx, p)
		}
		return ctx, rule, nil
	}
	p, err := g.authenticate(ctx)
	if err != nil {
		return ctx, rule, err
	}
	ctx = WithPrincipal(ctx, p)
	if !declared {
		// Fail closed: a method without a policy is nobody's.
		return ctx, rule, status.Errorf(codes.PermissionDenied, "%s has no access policy: nobody may call it", method)
	}
	if rule.Permission == Internal {
		if p.Kind != KindService || !slices.Contains(rule.Callers, p.Name) {
			return ctx, rule, Denied(p, rule.Permission, strings.TrimPrefix(method, "/"))
		}
		return ctx, rule, nil
	}
	if !p.Has(rule.Permission) {
		if g.Log != nil {
			g.Log.DebugContext(ctx, "permission denied", "method", method, "principal", p.String(), "needs", rule.Permission)
		}
		return ctx, rule, Denied(p, rule.Permission, strings.TrimPrefix(method, "/"))
	}
	return ctx, rule, nil
}

func (g *Guard) authenticate(ctx context.Context) (Principal, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	var secret string
	if v := md.Get("authorization"); len(v) > 0 {
		secret = bearer(v[0])
	}
	if secret == "" {
		return Principal{}, status.Error(codes.Unauthenticated, "missing credentials: send \"authorization: Bearer <token>\" (an API key, a session token from `vigil login`, or the bootstrap admin token)")
	}
	p, err := g.Authn.Authenticate(ctx, secret)
	if errors.Is(err, ErrUnauthenticated) {
		return Principal{}, status.Error(codes.Unauthenticated, "invalid credentials: the token is unknown, expired or revoked")
	}
	if err != nil {
		if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
			return Principal{}, err
		}
		return Principal{}, status.Error(codes.Unavailable, "cannot check credentials now; try again")
	}
	return p, nil
}

// Denied is the PermissionDenied error for a principal lacking perm for
// what: it names the permission, and what the principal holds.
func Denied(p Principal, perm Permission, what string) error {
	var holds string
	switch p.Kind {
	case KindKey:
		s := make([]string, len(p.Scopes))
		for i, sc := range p.Scopes {
			s[i] = string(sc)
		}
		holds = "scopes " + strings.Join(s, ",")
	case KindService:
		holds = "only the internal calls made for it"
	default:
		holds = "role " + string(p.Role)
	}
	st := status.New(codes.PermissionDenied, fmt.Sprintf("%s needs the %s permission; %s has %s", what, perm, p, holds))
	if d, err := st.WithDetails(&errdetails.ErrorInfo{
		Reason: "PERMISSION_MISSING", Domain: "vigil",
		Metadata: map[string]string{"permission": string(perm), "principal": p.String()},
	}); err == nil {
		st = d
	}
	return st.Err()
}

// CheckTeam answers whether the caller of ctx may reach the apps of team
// (what names the resource, for the message): nil, or PermissionDenied
// naming the team. Without a principal in ctx (an internal call) it
// allows.
func CheckTeam(ctx context.Context, team, what string) error {
	p, ok := FromContext(ctx)
	if !ok || p.Reaches(team) {
		return nil
	}
	owner := "team " + team
	if team == "" {
		owner = "no team (admins and the default team reach it)"
	}
	teams := "no team"
	if len(p.Teams) > 0 {
		teams = "teams " + strings.Join(p.Teams, ",")
	}
	return status.Errorf(codes.PermissionDenied, "%s belongs to %s; %s reaches %s", what, owner, p, teams)
}

// Teams returns the teams a list must be filtered by for the caller of
// ctx, and whether it may see every team's (then teams is nil).
// unowned is whether it may see what belongs to no team.
func Teams(ctx context.Context) (teams []string, all, unowned bool) {
	p, ok := FromContext(ctx)
	if !ok || p.AllTeams {
		return nil, true, true
	}
	return slices.Clone(p.Teams), false, p.Reaches("")
}

func (g *Guard) record(ctx context.Context, method string, rule Rule, req any, err error) {
	if g.Audit == nil || !rule.Audit {
		return
	}
	s, _ := status.FromError(err)
	if s.Code() == codes.Unauthenticated && rule.Permission != Public {
		// No one to name: a request without a valid credential is not
		// an act of anyone's (failed logins are, and are recorded).
		return
	}
	e := AuditEntry{
		Time:   time.Now(),
		Actor:  "anonymous",
		Method: strings.TrimPrefix(method, "/"),
		Code:   s.Code(),
	}
	if err != nil {
		e.Message = s.Message()
	}
	if p, ok := FromContext(ctx); ok {
		e.Actor = p.String()
	}
	if h, ok := ctx.Value(actorKey{}).(*actorHolder); ok && h.p != nil {
		e.Actor = h.p.String()
	}
	switch req := req.(type) {
	case proto.Message:
		e.Target = Target(rule.Target, req)
	case pathParams:
		e.Target = target(rule.Target, func(path string) string { return req[path] })
	default:
		e.Target = Target(rule.Target, nil)
	}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		e.TraceID = sc.TraceID().String()
	}
	if pr, ok := peer.FromContext(ctx); ok && pr.Addr != nil {
		e.Peer = pr.Addr.String()
	}
	g.Audit(ctx, e)
}

// Target expands the request fields in braces in tmpl ("app/{name}",
// "user/{user.name}") from m; a field that is missing or empty leaves
// "?".
func Target(tmpl string, m proto.Message) string {
	return target(tmpl, func(path string) string {
		if m == nil {
			return ""
		}
		return field(m.ProtoReflect(), path)
	})
}

// target expands tmpl with the values value finds.
func target(tmpl string, value func(path string) string) string {
	var b strings.Builder
	for {
		open := strings.IndexByte(tmpl, '{')
		if open < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		end := strings.IndexByte(tmpl[open:], '}')
		if end < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		b.WriteString(tmpl[:open])
		v := value(tmpl[open+1 : open+end])
		if v == "" {
			v = "?"
		}
		b.WriteString(v)
		tmpl = tmpl[open+end+1:]
	}
}

func field(m protoreflect.Message, path string) string {
	for {
		name, rest, nested := strings.Cut(path, ".")
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
		if fd == nil || fd.IsList() || fd.IsMap() {
			return ""
		}
		if !nested {
			if fd.Kind() != protoreflect.StringKind {
				return ""
			}
			return m.Get(fd).String()
		}
		if fd.Message() == nil || !m.Has(fd) {
			return ""
		}
		m, path = m.Get(fd).Message(), rest
	}
}

type (
	actorKey    struct{}
	actorHolder struct{ p *Principal }
)

// NameActor tells the audit log who an audited public call turned out to
// be made by: a login names the user it logged in.
func NameActor(ctx context.Context, p Principal) {
	if h, ok := ctx.Value(actorKey{}).(*actorHolder); ok {
		h.p = &p
	}
}
