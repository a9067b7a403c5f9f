package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/auth"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
	"github.com/vigil-ops/vigil/services/gateway/internal/postgres"
)

// AccessServer serves AuthService, UserService, KeyService and
// AuditService.
type AccessServer struct {
	gatewayv1.UnimplementedAuthServiceServer
	gatewayv1.UnimplementedUserServiceServer
	gatewayv1.UnimplementedKeyServiceServer
	gatewayv1.UnimplementedAuditServiceServer

	svc   *access.Service
	store *postgres.Store
	log   *slog.Logger
	// ClientAddr is the address a call comes from, as the gateway sees
	// it ("" when not known): logins are limited per address.
	ClientAddr func(context.Context) string
}

// NewAccessServer returns the access API.
func NewAccessServer(svc *access.Service, store *postgres.Store, log *slog.Logger) *AccessServer {
	return &AccessServer{svc: svc, store: store, log: log}
}

// toStatus maps the access package's sentinels to their codes; its
// refusals of fields are statuses already (*server.BadRequestError), and the
// error interceptor (pkg/server) answers the rest.
func toStatus(err error) error {
	switch {
	case errors.Is(err, access.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, access.ErrExists):
		return status.Error(codes.AlreadyExists, err.Error())
	}
	return err
}

func caller(ctx context.Context) auth.Principal {
	p, _ := auth.FromContext(ctx)
	return p
}

func tsOrNil(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func tokensPB(t access.Tokens) *gatewayv1.Tokens {
	return &gatewayv1.Tokens{
		AccessToken: t.Access, AccessExpireTime: timestamppb.New(t.AccessExpires),
		RefreshToken: t.Refresh, RefreshExpireTime: timestamppb.New(t.RefreshExpires),
	}
}

var roles = map[auth.Role]gatewayv1.Role{
	auth.RoleAdmin: gatewayv1.Role_ROLE_ADMIN, auth.RoleOperator: gatewayv1.Role_ROLE_OPERATOR, auth.RoleViewer: gatewayv1.Role_ROLE_VIEWER,
}

var scopes = map[auth.Scope]gatewayv1.Scope{
	auth.ScopeIngest: gatewayv1.Scope_SCOPE_INGEST, auth.ScopeRead: gatewayv1.Scope_SCOPE_READ,
	auth.ScopeOperate: gatewayv1.Scope_SCOPE_OPERATE, auth.ScopeAdmin: gatewayv1.Scope_SCOPE_ADMIN,
}

func roleOf(r gatewayv1.Role) auth.Role {
	for k, v := range roles {
		if v == r {
			return k
		}
	}
	return ""
}

func scopeOf(s gatewayv1.Scope) auth.Scope {
	for k, v := range scopes {
		if v == s {
			return k
		}
	}
	return auth.Scope(strings.ToLower(s.String()))
}

var chatProviders = map[access.ChatProvider]gatewayv1.ChatProvider{
	access.Telegram: gatewayv1.ChatProvider_CHAT_PROVIDER_TELEGRAM, access.Slack: gatewayv1.ChatProvider_CHAT_PROVIDER_SLACK,
	access.Line: gatewayv1.ChatProvider_CHAT_PROVIDER_LINE,
}

func chatProviderOf(p gatewayv1.ChatProvider) access.ChatProvider {
	for k, v := range chatProviders {
		if v == p {
			return k
		}
	}
	return ""
}

func userPB(u access.User) *gatewayv1.User {
	out := &gatewayv1.User{
		Name: u.Name, Email: u.Email, Role: roles[u.Role], Teams: u.Teams, Disabled: u.Disabled,
		CreateTime: tsOrNil(u.Created), UpdateTime: tsOrNil(u.Updated), LastLoginTime: tsOrNil(u.LastLogin),
	}
	for _, id := range u.ChatIdentities {
		out.ChatIdentities = append(out.ChatIdentities, &gatewayv1.ChatIdentity{
			Provider: chatProviders[id.Provider], ExternalId: id.ExternalID, LinkTime: tsOrNil(id.Linked),
		})
	}
	return out
}

func keyPB(k access.Key) *gatewayv1.Key {
	out := &gatewayv1.Key{
		Id: k.ID, Name: k.Name, Team: k.Team, ExpireTime: tsOrNil(k.Expires), CreateTime: tsOrNil(k.Created),
		CreatedBy: k.CreatedBy, LastUsedTime: tsOrNil(k.LastUsed), RevokeTime: tsOrNil(k.Revoked), Prefix: k.Prefix,
	}
	for _, s := range k.Scopes {
		out.Scopes = append(out.Scopes, scopes[s])
	}
	return out
}

// --- AuthService

// Login implements the RPC.
func (s *AccessServer) Login(ctx context.Context, r *gatewayv1.LoginRequest) (*gatewayv1.LoginResponse, error) {
	if r.GetUsername() == "" || r.GetPassword() == "" {
		return nil, server.InvalidArgument("missing credentials",
			server.FieldViolation{Field: "username", Description: "and password are required"})
	}
	from := ""
	if s.ClientAddr != nil {
		from = s.ClientAddr(ctx)
	}
	t, u, err := s.svc.Login(ctx, r.GetUsername(), r.GetPassword(), from)
	var throttled *access.ThrottledError
	switch {
	case errors.Is(err, auth.ErrUnauthenticated):
		return nil, status.Error(codes.Unauthenticated, "wrong user name or password")
	case errors.As(err, &throttled):
		return nil, server.ResourceExhausted(throttled.Error(), throttled.RetryAfter)
	}
	if err != nil {
		return nil, toStatus(err)
	}
	auth.NameActor(ctx, auth.Principal{Kind: auth.KindUser, Name: u.Name})
	return &gatewayv1.LoginResponse{Tokens: tokensPB(t), User: userPB(u)}, nil
}

// Refresh implements the RPC.
func (s *AccessServer) Refresh(ctx context.Context, r *gatewayv1.RefreshRequest) (*gatewayv1.RefreshResponse, error) {
	t, u, err := s.svc.Refresh(ctx, r.GetRefreshToken())
	if errors.Is(err, auth.ErrUnauthenticated) {
		return nil, status.Error(codes.Unauthenticated, "the refresh token is unknown, used, expired or revoked: log in again")
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &gatewayv1.RefreshResponse{Tokens: tokensPB(t), User: userPB(u)}, nil
}

// Logout implements the RPC.
func (s *AccessServer) Logout(ctx context.Context, r *gatewayv1.LogoutRequest) (*gatewayv1.LogoutResponse, error) {
	if err := s.svc.Logout(ctx, caller(ctx), r.GetRefreshToken()); err != nil {
		return nil, toStatus(err)
	}
	return &gatewayv1.LogoutResponse{}, nil
}

// WhoAmI implements the RPC.
func (s *AccessServer) WhoAmI(ctx context.Context, _ *gatewayv1.WhoAmIRequest) (*gatewayv1.WhoAmIResponse, error) {
	p := caller(ctx)
	out := &gatewayv1.Principal{Kind: string(p.Kind), Name: p.Name, Role: roles[p.Role], Teams: p.Teams, AllTeams: p.AllTeams, KeyId: p.KeyID}
	for _, sc := range p.Scopes {
		out.Scopes = append(out.Scopes, scopes[sc])
	}
	resp := &gatewayv1.WhoAmIResponse{Principal: out}
	if p.Kind == auth.KindUser {
		u, err := s.svc.User(ctx, p.Name)
		if err != nil {
			return nil, toStatus(err)
		}
		resp.User = userPB(u)
	}
	return resp, nil
}

// --- UserService

// CreateUser implements the RPC.
func (s *AccessServer) CreateUser(ctx context.Context, r *gatewayv1.CreateUserRequest) (*gatewayv1.CreateUserResponse, error) {
	in := r.GetUser()
	u, err := s.svc.CreateUser(ctx, access.User{
		Name: in.GetName(), Email: in.GetEmail(), Role: roleOf(in.GetRole()), Teams: in.GetTeams(), Disabled: in.GetDisabled(),
	}, r.GetPassword())
	if err != nil {
		return nil, toStatus(err)
	}
	return &gatewayv1.CreateUserResponse{User: userPB(u)}, nil
}

// GetUser implements the RPC.
func (s *AccessServer) GetUser(ctx context.Context, r *gatewayv1.GetUserRequest) (*gatewayv1.GetUserResponse, error) {
	u, err := s.svc.User(ctx, r.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	return &gatewayv1.GetUserResponse{User: userPB(u)}, nil
}

// ListUsers implements the RPC.
func (s *AccessServer) ListUsers(ctx context.Context, _ *gatewayv1.ListUsersRequest) (*gatewayv1.ListUsersResponse, error) {
	us, err := s.svc.Users(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &gatewayv1.ListUsersResponse{}
	for _, u := range us {
		out.Users = append(out.Users, userPB(u))
	}
	return out, nil
}

// UpdateUser implements the RPC.
func (s *AccessServer) UpdateUser(ctx context.Context, r *gatewayv1.UpdateUserRequest) (*gatewayv1.UpdateUserResponse, error) {
	in := r.GetUser()
	paths := r.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		return nil, server.InvalidArgument("nothing to update",
			server.FieldViolation{Field: "update_mask", Description: "name at least one of email, role, teams, disabled"})
	}
	u, err := s.svc.UpdateUser(ctx, in.GetName(), func(u *access.User) error {
		for _, p := range paths {
			switch p {
			case "email":
				u.Email = in.GetEmail()
			case "role":
				u.Role = roleOf(in.GetRole())
			case "teams":
				u.Teams = in.GetTeams()
			case "disabled":
				u.Disabled = in.GetDisabled()
			default:
				return server.InvalidArgument("invalid request", server.FieldViolation{
					Field: "update_mask", Description: fmt.Sprintf("%q cannot be updated: email, role, teams, disabled", p),
				})
			}
		}
		return nil
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &gatewayv1.UpdateUserResponse{User: userPB(u)}, nil
}

// SetPassword implements the RPC.
func (s *AccessServer) SetPassword(ctx context.Context, r *gatewayv1.SetPasswordRequest) (*gatewayv1.SetPasswordResponse, error) {
	if err := s.svc.SetPassword(ctx, caller(ctx), r.GetName(), r.GetPassword(), r.GetCurrentPassword()); err != nil {
		return nil, toStatus(err)
	}
	return &gatewayv1.SetPasswordResponse{}, nil
}

// LinkChatIdentity implements the RPC.
func (s *AccessServer) LinkChatIdentity(ctx context.Context, r *gatewayv1.LinkChatIdentityRequest) (*gatewayv1.LinkChatIdentityResponse, error) {
	u, err := s.svc.LinkChatIdentity(ctx, caller(ctx), r.GetName(), chatProviderOf(r.GetProvider()), r.GetExternalId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &gatewayv1.LinkChatIdentityResponse{User: userPB(u)}, nil
}

// UnlinkChatIdentity implements the RPC.
func (s *AccessServer) UnlinkChatIdentity(ctx context.Context, r *gatewayv1.UnlinkChatIdentityRequest) (*gatewayv1.UnlinkChatIdentityResponse, error) {
	u, err := s.svc.UnlinkChatIdentity(ctx, caller(ctx), r.GetName(), chatProviderOf(r.GetProvider()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &gatewayv1.UnlinkChatIdentityResponse{User: userPB(u)}, nil
}

// CreateChatLinkCode implements the RPC.
func (s *AccessServer) CreateChatLinkCode(ctx context.Context, r *gatewayv1.CreateChatLinkCodeRequest) (*gatewayv1.CreateChatLinkCodeResponse, error) {
	c, err := s.svc.CreateChatLinkCode(ctx, caller(ctx), chatProviderOf(r.GetProvider()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &gatewayv1.CreateChatLinkCodeResponse{Code: c.Code, ExpireTime: timestamppb.New(c.Expires), Instruction: c.Instruction()}, nil
}

// --- KeyService

// CreateKey implements the RPC.
func (s *AccessServer) CreateKey(ctx context.Context, r *gatewayv1.CreateKeyRequest) (*gatewayv1.CreateKeyResponse, error) {
	in := r.GetKey()
	k := access.Key{Name: in.GetName(), Team: in.GetTeam()}
	if in.GetExpireTime() != nil {
		k.Expires = in.GetExpireTime().AsTime()
	}
	for _, sc := range in.GetScopes() {
		k.Scopes = append(k.Scopes, scopeOf(sc))
	}
	out, secret, err := s.svc.CreateKey(ctx, caller(ctx), k)
	if err != nil {
		return nil, toStatus(err)
	}
	return &gatewayv1.CreateKeyResponse{Key: keyPB(out), Secret: secret}, nil
}

// ListKeys implements the RPC.
func (s *AccessServer) ListKeys(ctx context.Context, r *gatewayv1.ListKeysRequest) (*gatewayv1.ListKeysResponse, error) {
	ks, err := s.svc.Keys(ctx, caller(ctx), r.GetIncludeInactive())
	if err != nil {
		return nil, toStatus(err)
	}
	out := &gatewayv1.ListKeysResponse{}
	for _, k := range ks {
		out.Keys = append(out.Keys, keyPB(k))
	}
	return out, nil
}

// RevokeKey implements the RPC.
func (s *AccessServer) RevokeKey(ctx context.Context, r *gatewayv1.RevokeKeyRequest) (*gatewayv1.RevokeKeyResponse, error) {
	k, err := s.svc.RevokeKey(ctx, caller(ctx), r.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &gatewayv1.RevokeKeyResponse{Key: keyPB(k)}, nil
}

// --- AuditService

// isCode reports whether name is a gRPC code's, as the audit log keeps
// them.
func isCode(name string) bool {
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if c.String() == name {
			return true
		}
	}
	return false
}

// ListAuditEvents implements the RPC.
func (s *AccessServer) ListAuditEvents(ctx context.Context, r *gatewayv1.ListAuditEventsRequest) (*gatewayv1.ListAuditEventsResponse, error) {
	var bad server.BadRequestError
	q := postgres.AuditQuery{Actor: r.GetActor(), Method: r.GetMethod(), Target: r.GetTarget(), Limit: server.PageSize(&bad, "page_size", r.GetPageSize())}
	q.AfterTime, q.AfterID = server.ParsePageToken[server.TimeID](&bad, "audit events", r.GetPageToken()).Parts()
	switch res := r.GetResult(); {
	case res == "" || res == "failed":
		q.Failed = res == "failed"
	case res == "ok":
		q.Code = codes.OK.String()
	case isCode(res):
		q.Code = res
	default:
		bad.Add("result", `must be "ok", "failed" or a gRPC code name ("PermissionDenied")`)
	}
	if err := bad.Err("invalid request"); err != nil {
		return nil, err
	}
	if r.GetSince() != nil {
		q.Since = r.GetSince().AsTime()
	}
	if r.GetUntil() != nil {
		q.Until = r.GetUntil().AsTime()
	}
	evs, err := s.store.AuditEvents(ctx, q)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &gatewayv1.ListAuditEventsResponse{}
	evs, out.NextPageToken = server.NextPage("audit events", evs, q.Limit, func(e postgres.AuditEvent) server.TimeID {
		return server.TimeIDOf(e.Time, e.ID)
	})
	for _, e := range evs {
		out.Events = append(out.Events, &gatewayv1.AuditEvent{
			Id: e.ID, Time: timestamppb.New(e.Time), Actor: e.Actor, Method: e.Method, Target: e.Target,
			Code: e.Code, Message: e.Message, TraceId: e.TraceID, Peer: e.Peer,
		})
	}
	return out, nil
}
