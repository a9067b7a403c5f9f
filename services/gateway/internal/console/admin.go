package console

import (
	"context"
	"net/http"
	"slices"
	"strings"

	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
)

// The admin part of the console (/admin): people, teams, API keys and
// the audit log, through the gateway's UserService, KeyService and
// AuditService as the signed-in user. The API decides who may: users and
// the audit log are the admins', keys also their teams' operators'.

// roles and scopes are the form values of the API's enums, in the order
// the forms offer them.
var (
	roles = []namedValue[gatewayv1.Role]{
		{"viewer", gatewayv1.Role_ROLE_VIEWER}, {"operator", gatewayv1.Role_ROLE_OPERATOR}, {"admin", gatewayv1.Role_ROLE_ADMIN},
	}
	scopes = []namedValue[gatewayv1.Scope]{
		{"ingest", gatewayv1.Scope_SCOPE_INGEST},
		{"read", gatewayv1.Scope_SCOPE_READ},
		{"operate", gatewayv1.Scope_SCOPE_OPERATE},
		{"admin", gatewayv1.Scope_SCOPE_ADMIN},
	}
	chatProviders = []namedValue[gatewayv1.ChatProvider]{
		{"telegram", gatewayv1.ChatProvider_CHAT_PROVIDER_TELEGRAM},
		{"slack", gatewayv1.ChatProvider_CHAT_PROVIDER_SLACK},
		{"line", gatewayv1.ChatProvider_CHAT_PROVIDER_LINE},
	}
)

// namedValue is an enum value and its name in forms and on pages.
type namedValue[T comparable] struct {
	Name  string
	Value T
}

// valueOf is the value named name (the zero value, which the API
// refuses, for a name it does not know).
func valueOf[T comparable](all []namedValue[T], name string) T {
	for _, v := range all {
		if v.Name == name {
			return v.Value
		}
	}
	var zero T
	return zero
}

// nameOf is the name of v, "—" for one the console does not know.
func nameOf[T comparable](all []namedValue[T], v T) string {
	for _, n := range all {
		if n.Value == v {
			return n.Name
		}
	}
	return "—"
}

func (c *Console) routeAdmin() {
	c.mux.HandleFunc("GET /admin", c.adminIndex)
	c.mux.HandleFunc("GET /admin/users", c.adminUsers)
	c.mux.HandleFunc("POST /admin/users", c.adminCreateUser)
	c.mux.HandleFunc("GET /admin/users/{name}", c.adminUser)
	c.mux.HandleFunc("POST /admin/users/{name}", c.adminUpdateUser)
	c.mux.HandleFunc("POST /admin/users/{name}/password", c.adminSetPassword)
	c.mux.HandleFunc("POST /admin/users/{name}/chat", c.adminLinkChat)
	c.mux.HandleFunc("POST /admin/users/{name}/chat/unlink", c.adminUnlinkChat)
	c.mux.HandleFunc("POST /admin/users/{name}/chat/code", c.adminChatCode)
	c.mux.HandleFunc("GET /admin/teams", c.adminTeams)
	c.mux.HandleFunc("GET /admin/keys", c.adminKeys)
	c.mux.HandleFunc("POST /admin/keys", c.adminCreateKey)
	c.mux.HandleFunc("POST /admin/keys/{id}/revoke", c.adminRevokeKey)
	c.mux.HandleFunc("GET /admin/audit", c.adminAudit)
}

// adminIndexData is the admin index's data: how many users and keys.
type adminIndexData struct {
	Users, Keys int
}

// adminIndex links to the admin pages. It lists users to count them,
// which only an admin may: anyone else sees the API's refusal.
func (c *Console) adminIndex(w http.ResponseWriter, r *http.Request) {
	s, ctx, users, ok := c.listUsers(w, r)
	if !ok {
		return
	}
	keys, err := gatewayv1.NewKeyServiceClient(c.opts.Conn).ListKeys(ctx, &gatewayv1.ListKeysRequest{})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	c.render(w, r, s, "admin", http.StatusOK, adminIndexData{Users: len(users), Keys: len(keys.GetKeys())})
}

// listUsers runs a page that starts from every user (ListUsers answers
// them all at once: the API does not page users): for a signed-in user,
// whom the API allows (admins); otherwise it answers the refusal itself.
func (c *Console) listUsers(w http.ResponseWriter, r *http.Request) (*session, context.Context, []*gatewayv1.User, bool) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return nil, nil, nil, false
	}
	ctx := withToken(r.Context(), s.access)
	res, err := gatewayv1.NewUserServiceClient(c.opts.Conn).ListUsers(ctx, &gatewayv1.ListUsersRequest{})
	if err != nil {
		c.failCall(w, r, s, err)
		return nil, nil, nil, false
	}
	return s, ctx, res.GetUsers(), true
}

// teamList reads a form's teams: names separated by commas or spaces.
func teamList(v string) []string {
	out := []string{}
	for _, t := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' }) {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}
