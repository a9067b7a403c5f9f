package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
)

// userRow is a user as the admin pages show them: never a password (the
// API has none to give).
type userRow struct {
	*gatewayv1.User
	RoleName string
}

// adminUsersData is the users page's data.
type adminUsersData struct {
	Users []userRow
	Roles []namedValue[gatewayv1.Role]
}

// adminUsers lists every user with the form that creates one.
func (c *Console) adminUsers(w http.ResponseWriter, r *http.Request) {
	s, _, users, ok := c.listUsers(w, r)
	if !ok {
		return
	}
	d := adminUsersData{Roles: roles}
	for _, u := range users {
		d.Users = append(d.Users, userRow{User: u, RoleName: nameOf(roles, u.GetRole())})
	}
	c.render(w, r, s, "admin-users", http.StatusOK, d)
}

// adminCreateUser creates a user with an initial password, then shows
// the user's page.
func (c *Console) adminCreateUser(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, func(ctx context.Context, _ *session) (string, string, error) {
		name := strings.TrimSpace(r.PostFormValue("name"))
		_, err := gatewayv1.NewUserServiceClient(c.opts.Conn).CreateUser(ctx, &gatewayv1.CreateUserRequest{
			User: &gatewayv1.User{
				Name: name, Email: strings.TrimSpace(r.PostFormValue("email")),
				Role: valueOf(roles, r.PostFormValue("role")), Teams: teamList(r.PostFormValue("teams")),
			},
			Password: r.PostFormValue("password"),
		})
		return userPath(name), "done.admin.user_created", err
	})
}

func userPath(name string) string { return "/admin/users/" + url.PathEscape(name) }

// chatRow is a linked chat account.
type chatRow struct {
	*gatewayv1.ChatIdentity
	ProviderName string
}

// adminUserData is one user's page: the user, and a chat link code just
// made (shown on this answer only).
type adminUserData struct {
	userRow
	Roles     []namedValue[gatewayv1.Role]
	Providers []namedValue[gatewayv1.ChatProvider]
	Chats     []chatRow
	TeamsText string
	// Self: the page is the signed-in user's own, who may ask for a
	// chat link code (the API makes them for the caller only).
	Self bool
	Code *gatewayv1.CreateChatLinkCodeResponse
}

func (c *Console) adminUser(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	c.showUser(withToken(r.Context(), s.access), w, r, s, nil)
}

// showUser answers the page of the user the path names.
func (c *Console) showUser(ctx context.Context, w http.ResponseWriter, r *http.Request, s *session, code *gatewayv1.CreateChatLinkCodeResponse) {
	res, err := gatewayv1.NewUserServiceClient(c.opts.Conn).GetUser(ctx, &gatewayv1.GetUserRequest{Name: r.PathValue("name")})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	u := res.GetUser()
	d := adminUserData{
		userRow: userRow{User: u, RoleName: nameOf(roles, u.GetRole())}, Roles: roles, Providers: chatProviders,
		TeamsText: strings.Join(u.GetTeams(), ", "), Self: s.user.GetName() == u.GetName(), Code: code,
	}
	for _, ci := range u.GetChatIdentities() {
		d.Chats = append(d.Chats, chatRow{ChatIdentity: ci, ProviderName: nameOf(chatProviders, ci.GetProvider())})
	}
	c.render(w, r, s, "admin-user", http.StatusOK, d)
}

// adminUpdateUser changes a user's email, role, teams and whether they
// are disabled (UpdateUser with those four in the mask: the form shows
// them all).
func (c *Console) adminUpdateUser(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, func(ctx context.Context, _ *session) (string, string, error) {
		name := r.PathValue("name")
		_, err := gatewayv1.NewUserServiceClient(c.opts.Conn).UpdateUser(ctx, &gatewayv1.UpdateUserRequest{
			User: &gatewayv1.User{
				Name: name, Email: strings.TrimSpace(r.PostFormValue("email")), Role: valueOf(roles, r.PostFormValue("role")),
				Teams: teamList(r.PostFormValue("teams")), Disabled: r.PostFormValue("disabled") == "on",
			},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"email", "role", "teams", "disabled"}},
		})
		return userPath(name), "done.admin.user_updated", err
	})
}

// adminSetPassword sets a user's password as an admin (SetPassword
// without the current one); the user's sessions end.
func (c *Console) adminSetPassword(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, func(ctx context.Context, _ *session) (string, string, error) {
		name := r.PathValue("name")
		_, err := gatewayv1.NewUserServiceClient(c.opts.Conn).SetPassword(ctx, &gatewayv1.SetPasswordRequest{
			Name: name, Password: r.PostFormValue("password"),
		})
		return userPath(name), "done.admin.password_set", err
	})
}

// adminLinkChat maps a chat account to the user (an admin's
// LinkChatIdentity, by the account's id at the provider).
func (c *Console) adminLinkChat(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, func(ctx context.Context, _ *session) (string, string, error) {
		name := r.PathValue("name")
		_, err := gatewayv1.NewUserServiceClient(c.opts.Conn).LinkChatIdentity(ctx, &gatewayv1.LinkChatIdentityRequest{
			Name: name, Provider: valueOf(chatProviders, r.PostFormValue("provider")), ExternalId: strings.TrimSpace(r.PostFormValue("external_id")),
		})
		return userPath(name), "done.admin.chat_linked", err
	})
}

func (c *Console) adminUnlinkChat(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, func(ctx context.Context, _ *session) (string, string, error) {
		name := r.PathValue("name")
		_, err := gatewayv1.NewUserServiceClient(c.opts.Conn).UnlinkChatIdentity(ctx, &gatewayv1.UnlinkChatIdentityRequest{
			Name: name, Provider: valueOf(chatProviders, r.PostFormValue("provider")),
		})
		return userPath(name), "done.admin.chat_unlinked", err
	})
}

// adminChatCode makes a one-time code that links the chat account which
// sends it to the bot to the signed-in user. The code is on this answer
// only: not in a URL, a cookie or a later page.
func (c *Console) adminChatCode(w http.ResponseWriter, r *http.Request) {
	s, ok := c.posted(w, r)
	if !ok {
		return
	}
	ctx := withToken(r.Context(), s.access)
	if r.PathValue("name") != s.user.GetName() {
		// The code would link an account to the caller, not to the user
		// of this page.
		c.fail(w, r, s, http.StatusForbidden, "error.forbidden")
		return
	}
	code, err := gatewayv1.NewUserServiceClient(c.opts.Conn).CreateChatLinkCode(ctx, &gatewayv1.CreateChatLinkCodeRequest{
		Provider: valueOf(chatProviders, r.PostFormValue("provider")),
	})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	c.showUser(ctx, w, r, s, code)
}
