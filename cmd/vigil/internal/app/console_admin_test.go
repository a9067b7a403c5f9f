package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/testkit/browser"
	"github.com/vigil-ops/vigil/services/deploy"
)

// adminConsole is a running Vigil with an admin ("ada") and an operator
// of payments ("olga"), and API clients as the bootstrap admin to see
// what the console changed.
type adminConsole struct {
	base  string
	api   context.Context
	users gatewayv1.UserServiceClient
	keys  gatewayv1.KeyServiceClient
	auth  gatewayv1.AuthServiceClient
	apps  deployv1.AppServiceClient
}

func newAdminConsole(t *testing.T, with ...func(*app.Options)) *adminConsole {
	t.Helper()
	v := startVigil(t, with...)
	conn, err := grpc.NewClient(v.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	a := &adminConsole{
		base: "http://" + v.HTTPAddr(), api: metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken),
		users: gatewayv1.NewUserServiceClient(conn), keys: gatewayv1.NewKeyServiceClient(conn),
		auth: gatewayv1.NewAuthServiceClient(conn), apps: deployv1.NewAppServiceClient(conn),
	}
	for _, u := range []*gatewayv1.User{
		{Name: "ada", Role: gatewayv1.Role_ROLE_ADMIN},
		{Name: "olga", Role: gatewayv1.Role_ROLE_OPERATOR, Teams: []string{"payments"}},
	} {
		_, err := a.users.CreateUser(a.api, &gatewayv1.CreateUserRequest{User: u, Password: password(u.GetName())})
		require.NoError(t, err)
	}
	return a
}

// login is a console client signed in as name.
func (a *adminConsole) login(t *testing.T, name string) *browser.Client {
	t.Helper()
	c := browser.NewClient(t, a.base)
	require.Equal(t, http.StatusSeeOther, c.Login(name, password(name)).Code)
	return c
}

// TestConsoleAdminUsersAndKeys: an admin creates a user and changes
// them, sets their password and makes and revokes a key, all through the
// console, each visible through the API; a key's secret is on the one
// answer that made it and nowhere else; a password is never rendered;
// an operator is refused the admin pages and a direct POST creates
// nobody; the audit log lists the console's changes with the acting
// user, filtered and paged by the API.
func TestConsoleAdminUsersAndKeys(t *testing.T) {
	a := newAdminConsole(t)
	ada := a.login(t, "ada")

	p := ada.Get("/admin")
	require.Equal(t, http.StatusOK, p.Code)
	for _, link := range []string{`href="/admin/users"`, `href="/admin/teams"`, `href="/admin/keys"`, `href="/admin/audit"`} {
		require.Contains(t, p.Body, link)
	}

	// A user, made through the form, is the API's.
	created := ada.Post("/admin/users", url.Values{
		"name": {"bob"}, "email": {"bob@example.com"}, "role": {"viewer"}, "teams": {"payments, web"}, "password": {password("bob")},
	})
	require.Equal(t, http.StatusSeeOther, created.Code, created.Body)
	require.Equal(t, "/admin/users/bob?done=done.admin.user_created", created.Header.Get("Location"))
	bob, err := a.users.GetUser(a.api, &gatewayv1.GetUserRequest{Name: "bob"})
	require.NoError(t, err)
	require.Equal(t, gatewayv1.Role_ROLE_VIEWER, bob.GetUser().GetRole())
	require.Equal(t, []string{"payments", "web"}, bob.GetUser().GetTeams())
	p = ada.Get(created.Header.Get("Location"))
	require.Equal(t, http.StatusOK, p.Code)
	require.Contains(t, p.Body, "User created.")
	require.Contains(t, p.Body, "bob@example.com")
	require.NotContains(t, p.Body, password("bob"))
	require.Contains(t, ada.Get("/admin/users").Body, `href="/admin/users/bob"`)
	a.login(t, "bob") // with the initial password

	// A short password is refused with the API's word; nothing changes.
	refused := ada.Post("/admin/users", url.Values{"name": {"carl"}, "role": {"viewer"}, "password": {"short"}})
	require.Equal(t, http.StatusBadRequest, refused.Code)
	require.Contains(t, refused.Body, "password")
	_, err = a.users.GetUser(a.api, &gatewayv1.GetUserRequest{Name: "carl"})
	require.Equal(t, codes.NotFound, status.Code(err))

	// Role and teams change; the password is set by the admin.
	changed := ada.Post("/admin/users/bob", url.Values{"role": {"operator"}, "teams": {"web"}, "email": {"bob@example.com"}})
	require.Equal(t, http.StatusSeeOther, changed.Code, changed.Body)
	bob, err = a.users.GetUser(a.api, &gatewayv1.GetUserRequest{Name: "bob"})
	require.NoError(t, err)
	require.Equal(t, gatewayv1.Role_ROLE_OPERATOR, bob.GetUser().GetRole())
	require.Equal(t, []string{"web"}, bob.GetUser().GetTeams())
	require.False(t, bob.GetUser().GetDisabled())
	newPassword := "a brand new password for bob"
	set := ada.Post("/admin/users/bob/password", url.Values{"password": {newPassword}})
	require.Equal(t, http.StatusSeeOther, set.Code, set.Body)
	require.NotContains(t, set.Header.Get("Location"), newPassword)
	require.NotContains(t, ada.Get(set.Header.Get("Location")).Body, newPassword)
	c := browser.NewClient(t, a.base)
	require.Equal(t, http.StatusUnauthorized, c.Login("bob", password("bob")).Code, "the old password is gone")
	require.Equal(t, http.StatusSeeOther, c.Login("bob", newPassword).Code)

	// A key: its secret on the answer that made it, once, and nowhere
	// else — not in a header, a cookie or a later page.
	made := ada.Post("/admin/keys", url.Values{"name": {"ci"}, "scope": {"read", "operate"}, "team": {"payments"}})
	require.Equal(t, http.StatusOK, made.Code, made.Body)
	secret := regexp.MustCompile(`vgk_[A-Za-z0-9_-]+`).FindString(made.Body)
	require.NotEmpty(t, secret, made.Body)
	require.Equal(t, 1, strings.Count(made.Body, secret))
	require.Equal(t, "no-store", made.Header.Get("Cache-Control"))
	for name, vs := range made.Header {
		for _, v := range vs {
			require.NotContains(t, v, secret, name)
		}
	}
	keys, err := a.keys.ListKeys(a.api, &gatewayv1.ListKeysRequest{})
	require.NoError(t, err)
	require.Len(t, keys.GetKeys(), 1)
	key := keys.GetKeys()[0]
	require.Equal(t, "ci", key.GetName())
	require.Equal(t, "payments", key.GetTeam())
	require.Equal(t, []gatewayv1.Scope{gatewayv1.Scope_SCOPE_READ, gatewayv1.Scope_SCOPE_OPERATE}, key.GetScopes())
	require.Equal(t, "user:ada", key.GetCreatedBy())
	require.True(t, strings.HasPrefix(secret, key.GetPrefix()))
	listed := ada.Get("/admin/keys")
	require.Contains(t, listed.Body, `id="key-`+key.GetId()+`"`)
	require.NotContains(t, listed.Body, secret)
	require.NotContains(t, ada.Get("/admin/keys?all=1").Body, secret)
	// The secret is a working key.
	who, err := a.auth.WhoAmI(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+secret), &gatewayv1.WhoAmIRequest{})
	require.NoError(t, err)
	require.Equal(t, "ci", who.GetPrincipal().GetName())

	// An operator: the admin pages are refused by the API, and a direct
	// POST creates nobody and revokes nothing that is not theirs.
	olga := a.login(t, "olga")
	for _, path := range []string{"/admin", "/admin/users", "/admin/users/bob", "/admin/teams", "/admin/audit"} {
		p := olga.Get(path)
		require.Equal(t, http.StatusForbidden, p.Code, path)
		require.Contains(t, p.Body, "You may not see this.", path)
	}
	require.NotContains(t, olga.Get("/").Body, `href="/admin"`)
	before, err := a.users.ListUsers(a.api, &gatewayv1.ListUsersRequest{})
	require.NoError(t, err)
	p = olga.Post("/admin/users", url.Values{"name": {"mallory"}, "role": {"admin"}, "password": {password("mallory")}})
	require.Equal(t, http.StatusForbidden, p.Code)
	after, err := a.users.ListUsers(a.api, &gatewayv1.ListUsersRequest{})
	require.NoError(t, err)
	require.Len(t, after.GetUsers(), len(before.GetUsers()))
	_, err = a.users.GetUser(a.api, &gatewayv1.GetUserRequest{Name: "mallory"})
	require.Equal(t, codes.NotFound, status.Code(err))
	require.Equal(t, http.StatusForbidden, olga.Post("/admin/users/bob", url.Values{"role": {"admin"}}).Code)
	bob, err = a.users.GetUser(a.api, &gatewayv1.GetUserRequest{Name: "bob"})
	require.NoError(t, err)
	require.Equal(t, gatewayv1.Role_ROLE_OPERATOR, bob.GetUser().GetRole())
	everyTeam, err := a.keys.CreateKey(a.api, &gatewayv1.CreateKeyRequest{Key: &gatewayv1.Key{Name: "alertmanager", Scopes: []gatewayv1.Scope{gatewayv1.Scope_SCOPE_INGEST}}})
	require.NoError(t, err)
	require.Equal(t, http.StatusForbidden, olga.Post("/admin/keys/"+everyTeam.GetKey().GetId()+"/revoke", nil).Code)
	keys, err = a.keys.ListKeys(a.api, &gatewayv1.ListKeysRequest{})
	require.NoError(t, err)
	require.Len(t, keys.GetKeys(), 2, "the key of every team is not revoked")
	// Olga's keys page lists her team's key only, with its revoke button.
	mine := olga.Get("/admin/keys")
	require.Equal(t, http.StatusOK, mine.Code)
	require.Contains(t, mine.Body, `action="/admin/keys/`+key.GetId()+`/revoke"`)
	require.NotContains(t, mine.Body, everyTeam.GetKey().GetId())
	require.Contains(t, mine.Body, `id="create-key"`, "an operator makes their team's keys")

	// The admin revokes the key (the form asks first: data-confirm).
	require.Contains(t, listed.Body, `data-confirm="Revoke the key ci?`)
	revoked := ada.Post("/admin/keys/"+key.GetId()+"/revoke", nil)
	require.Equal(t, http.StatusSeeOther, revoked.Code, revoked.Body)
	require.Equal(t, "/admin/keys?done=done.admin.key_revoked", revoked.Header.Get("Location"))
	keys, err = a.keys.ListKeys(a.api, &gatewayv1.ListKeysRequest{IncludeInactive: true})
	require.NoError(t, err)
	for _, k := range keys.GetKeys() {
		require.Equal(t, k.GetId() == key.GetId(), k.GetRevokeTime() != nil, k.GetName())
	}

	// The audit log has what the console did, as ada, and olga's refusal.
	p = ada.Get("/admin/audit?actor=" + url.QueryEscape("user:ada"))
	require.Equal(t, http.StatusOK, p.Code)
	for _, want := range []string{
		"vigil.gateway.v1.UserService/CreateUser", "user/bob", "vigil.gateway.v1.UserService/UpdateUser",
		"vigil.gateway.v1.UserService/SetPassword", "vigil.gateway.v1.KeyService/CreateKey", "key/ci", "vigil.gateway.v1.KeyService/RevokeKey",
	} {
		require.Contains(t, p.Body, want)
	}
	require.NotContains(t, p.Body, "user:olga")
	p = ada.Get("/admin/audit?method=CreateUser&actor=" + url.QueryEscape("user:olga"))
	require.Contains(t, p.Body, "user/mallory")
	require.Contains(t, p.Body, "PermissionDenied")
	require.NotContains(t, p.Body, ">user/bob<")
	// By result: the refusals, or what succeeded.
	p = ada.Get("/admin/audit?method=CreateUser&result=failed")
	require.Contains(t, p.Body, ">user/mallory<")
	require.NotContains(t, p.Body, ">user/bob<")
	p = ada.Get("/admin/audit?method=CreateUser&result=ok")
	require.Contains(t, p.Body, ">user/bob<")
	require.NotContains(t, p.Body, ">user/mallory<")
	require.Equal(t, http.StatusBadRequest, ada.Get("/admin/audit?result=sometimes").Code)
	// A time range in the user's zone: nothing before the test began.
	p = ada.Get("/admin/audit?until=2000-01-01T00:00")
	require.Contains(t, p.Body, "Nothing recorded matches.")
	require.Equal(t, http.StatusBadRequest, ada.Get("/admin/audit?since=yesterday").Code)
}

// TestConsoleAdminAuditPages: the audit page is paged by the API: 50
// events a page, the next through its page token, none shown twice.
func TestConsoleAdminAuditPages(t *testing.T) {
	a := newAdminConsole(t)
	for i := range 60 {
		_, err := a.keys.CreateKey(a.api, &gatewayv1.CreateKeyRequest{Key: &gatewayv1.Key{
			Name: fmt.Sprintf("k%02d", i), Scopes: []gatewayv1.Scope{gatewayv1.Scope_SCOPE_READ}, Team: "payments",
		}})
		require.NoError(t, err)
	}
	ada := a.login(t, "ada")
	rowRE := regexp.MustCompile(`id="audit-([^"]+)"`)
	next := regexp.MustCompile(`<a href="([^"]+)" rel="next">`)
	first := ada.Get("/admin/audit?method=CreateKey")
	require.Equal(t, http.StatusOK, first.Code)
	ids := rowRE.FindAllStringSubmatch(first.Body, -1)
	require.Len(t, ids, 50)
	m := next.FindStringSubmatch(first.Body)
	require.NotNil(t, m, "a next page")
	second := ada.Get(strings.ReplaceAll(m[1], "&amp;", "&"))
	require.Equal(t, http.StatusOK, second.Code)
	more := rowRE.FindAllStringSubmatch(second.Body, -1)
	require.Len(t, more, 10)
	require.NotRegexp(t, `rel="next"`, second.Body)
	seen := map[string]bool{}
	for _, id := range append(ids, more...) {
		require.False(t, seen[id[1]], "shown twice: %s", id[1])
		seen[id[1]] = true
	}
	require.Contains(t, second.Body, `value="CreateKey"`, "the filter is kept across pages")
}

// TestConsoleAdminTeams: the teams page gathers teams from users and
// apps, with each team's members and apps.
func TestConsoleAdminTeams(t *testing.T) {
	// Apps live in a cluster.
	kubeconfig, err := os.ReadFile(testkit.SharedKube(t).Kubeconfig)
	require.NoError(t, err)
	a := newAdminConsole(t, func(o *app.Options) {
		o.Deploy.DevCluster = &deploy.Cluster{Name: "dev", Kubeconfig: kubeconfig}
	})
	_, err = a.apps.CreateApp(a.api, &deployv1.CreateAppRequest{App: shopApp("shop")})
	require.NoError(t, err)
	_, err = a.apps.CreateApp(a.api, &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: "blog", Framework: "flask", Plan: "basic", Image: "registry.example.com/blog:1", Owner: "web",
	}})
	require.NoError(t, err)
	ada := a.login(t, "ada")
	ada.Lang = "zh-TW"
	p := ada.Get("/admin/teams")
	require.Equal(t, http.StatusOK, p.Code)
	require.Contains(t, p.Body, "<h1>團隊</h1>")
	payments := regexp.MustCompile(`(?s)<tr id="team-payments">.*?</tr>`).FindString(p.Body)
	require.Contains(t, payments, `href="/admin/users/olga"`)
	require.Contains(t, payments, `href="/apps/shop"`)
	require.NotContains(t, payments, "blog")
	web := regexp.MustCompile(`(?s)<tr id="team-web">.*?</tr>`).FindString(p.Body)
	require.Contains(t, web, `href="/apps/blog"`)
	require.NotContains(t, web, "olga")
}

// TestConsoleAdminChatAccounts: an admin links a user's chat account by
// its id and unlinks it through the user's page; a bad id is refused
// with the API's word; an operator cannot unlink another's; a link code
// is for the signed-in user alone and shown on the one answer that made
// it.
func TestConsoleAdminChatAccounts(t *testing.T) {
	a := newAdminConsole(t, func(o *app.Options) { o.Gateway.TelegramWebhookSecret = telegramSecret })
	ada := a.login(t, "ada")
	chats := func(name string) []*gatewayv1.ChatIdentity {
		t.Helper()
		u, err := a.users.GetUser(a.api, &gatewayv1.GetUserRequest{Name: name})
		require.NoError(t, err)
		return u.GetUser().GetChatIdentities()
	}

	for name, id := range map[string]string{"olga": "123456789", "ada": "987654321"} {
		p := ada.Post("/admin/users/"+name+"/chat", url.Values{"provider": {"telegram"}, "external_id": {id}})
		require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
		require.Len(t, chats(name), 1)
		require.Equal(t, id, chats(name)[0].GetExternalId())
	}
	p := ada.Get("/admin/users/olga")
	row := regexp.MustCompile(`(?s)<tr id="chat-telegram">.*?</tr>`).FindString(p.Body)
	require.Contains(t, row, "123456789")
	require.Contains(t, row, `data-confirm="Unlink this chat account?`)
	require.NotContains(t, p.Body, `id="chat-code"`, "a link code is the signed-in user's own")

	bad := ada.Post("/admin/users/olga/chat", url.Values{"provider": {"slack"}, "external_id": {"someone"}})
	require.Equal(t, http.StatusBadRequest, bad.Code)
	require.Contains(t, bad.Body, "external_id")
	require.Len(t, chats("olga"), 1)

	olga := a.login(t, "olga")
	require.Equal(t, http.StatusForbidden, olga.Post("/admin/users/ada/chat/unlink", url.Values{"provider": {"telegram"}}).Code)
	require.Len(t, chats("ada"), 1)

	p = ada.Post("/admin/users/olga/chat/unlink", url.Values{"provider": {"telegram"}})
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	require.Empty(t, chats("olga"))
	require.Contains(t, ada.Get(p.Header.Get("Location")).Body, "Chat account unlinked.")

	// A link code, for ada herself, once.
	made := ada.Post("/admin/users/ada/chat/code", url.Values{"provider": {"telegram"}})
	require.Equal(t, http.StatusOK, made.Code, made.Body)
	m := regexp.MustCompile(`<code class="secret-value">([^<]+)</code>`).FindStringSubmatch(made.Body)
	require.NotNil(t, m, made.Body)
	code := m[1]
	require.Len(t, code, 8)
	// Only in its box (the code and the instruction to send it).
	box := regexp.MustCompile(`(?s)<div class="secret" role="status" id="link-code">.*?</div>`).FindString(made.Body)
	require.Contains(t, box, code)
	require.Equal(t, strings.Count(box, code), strings.Count(made.Body, code))
	require.NotContains(t, ada.Get("/admin/users/ada").Body, code)
	require.Equal(t, http.StatusForbidden, ada.Post("/admin/users/olga/chat/code", url.Values{"provider": {"telegram"}}).Code)
}

// TestConsoleAdminInBrowser drives the admin pages in Chromium: an admin
// creates a user, who logs in in another browser; the admin makes a key
// (its secret shown once) and revokes it, answering the confirmation
// (dismissed first: nothing revoked). Screenshots: docs/console/admin-*.
func TestConsoleAdminInBrowser(t *testing.T) {
	a := newAdminConsole(t)
	login := func(tab *browser.Tab, name, password string) {
		tab.Do(30*time.Second,
			chromedp.Navigate(a.base+"/login"),
			chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
			chromedp.SendKeys(chromedp.CSS(`input[name=username]`), name),
			chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
			chromedp.Submit(chromedp.CSS(`form[action="/login"]`)),
			chromedp.WaitVisible(chromedp.CSS(`header .user`)),
		)
	}
	text := func(tab *browser.Tab, sel string) string {
		return strings.TrimSpace(browser.Get(tab, chromedp.Text(chromedp.CSS(sel))))
	}

	admin := browser.New(t)
	login(admin, "ada", password("ada"))
	admin.Do(30*time.Second,
		chromedp.Click(chromedp.CSS(`nav.sections a[href="/admin"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/admin/users"]`)),
		chromedp.Click(chromedp.CSS(`a[href="/admin/users"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form#create-user`)),
		chromedp.SendKeys(chromedp.CSS(`#create-user input[name=name]`), "carol"),
		chromedp.SetValue(chromedp.CSS(`#create-user select[name=role]`), "operator"),
		chromedp.SendKeys(chromedp.CSS(`#create-user input[name=teams]`), "payments"),
		chromedp.SendKeys(chromedp.CSS(`#create-user input[name=password]`), password("carol")),
		chromedp.Submit(chromedp.CSS(`form#create-user`)),
		chromedp.WaitVisible(chromedp.CSS(`h1#user`)),
	)
	require.Equal(t, "carol", text(admin, "h1#user"))
	require.Equal(t, "User created.", text(admin, "p.done"))
	userShot := admin.Screenshot("admin-user")
	carolUser, err := a.users.GetUser(a.api, &gatewayv1.GetUserRequest{Name: "carol"})
	require.NoError(t, err)
	require.Equal(t, []string{"payments"}, carolUser.GetUser().GetTeams())
	admin.Do(30*time.Second, chromedp.Navigate(a.base+"/admin/users"), chromedp.WaitVisible(chromedp.CSS(`tr#user-carol`)))
	usersShot := admin.Screenshot("admin-users")

	// Carol logs in, in her own browser.
	carol := browser.New(t)
	login(carol, "carol", password("carol"))
	require.Equal(t, "carol", text(carol, "header .user"))

	// A key: the secret once.
	admin.Do(30*time.Second,
		chromedp.Navigate(a.base+"/admin/keys"),
		chromedp.WaitVisible(chromedp.CSS(`form#create-key`)),
		chromedp.SendKeys(chromedp.CSS(`#create-key input[name=name]`), "grafana"),
		chromedp.Click(chromedp.CSS(`#create-key input[name=scope][value=ingest]`)),
		chromedp.SendKeys(chromedp.CSS(`#create-key input[name=team]`), "payments"),
		chromedp.Submit(chromedp.CSS(`form#create-key`)),
		chromedp.WaitVisible(chromedp.CSS(`#key-secret`)),
	)
	secret := text(admin, "#key-secret .secret-value")
	require.True(t, strings.HasPrefix(secret, "vgk_"), secret)
	keysShot := admin.Screenshot("admin-keys")
	keys, err := a.keys.ListKeys(a.api, &gatewayv1.ListKeysRequest{})
	require.NoError(t, err)
	require.Len(t, keys.GetKeys(), 1)
	id := keys.GetKeys()[0].GetId()
	admin.Do(30*time.Second, chromedp.Navigate(a.base+"/admin/keys"), chromedp.WaitVisible(chromedp.CSS(`#key-`+id)))
	require.NotContains(t, text(admin, "main"), secret, "never again")

	// Revoke asks first: dismissed, nothing happens; accepted, revoked.
	revoke := chromedp.CSS(`#key-` + id + ` button[type=submit]`)
	asked := make(chan string, 4)
	question := func() string {
		select {
		case q := <-asked:
			return q
		case <-time.After(30 * time.Second):
			t.Fatal("no confirmation asked")
			return ""
		}
	}
	admin.Do(30*time.Second, answerEachDialog(false, asked), chromedp.Click(revoke))
	require.Equal(t, "Revoke the key grafana? Whatever uses it is refused from its next call.", question())
	keys, err = a.keys.ListKeys(a.api, &gatewayv1.ListKeysRequest{})
	require.NoError(t, err)
	require.Len(t, keys.GetKeys(), 1, "dismissed: still active")
	admin.Do(30*time.Second, answerEachDialog(true, asked), chromedp.Click(revoke), chromedp.WaitVisible(chromedp.CSS(`p.done`)))
	require.NotEmpty(t, question())
	require.Equal(t, "Key revoked.", text(admin, "p.done"))
	keys, err = a.keys.ListKeys(a.api, &gatewayv1.ListKeysRequest{})
	require.NoError(t, err)
	require.Empty(t, keys.GetKeys())

	// The audit log shows it, in Traditional Chinese.
	admin.Do(30*time.Second,
		chromedp.Navigate(a.base+"/lang/zh-TW?back=/admin/audit"),
		chromedp.WaitVisible(chromedp.CSS(`html[lang="zh-TW"] table#audit`)),
	)
	require.Equal(t, "稽核紀錄", text(admin, "h1"))
	require.Contains(t, text(admin, "#audit tbody"), "KeyService/RevokeKey")
	auditShot := admin.Screenshot("admin-audit-zh-TW")

	// On a phone: each key a card, nothing wider than the screen.
	admin.Do(30*time.Second,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(a.base+"/admin/keys?all=1"),
		chromedp.WaitVisible(chromedp.CSS(`#key-`+id)),
	)
	require.Equal(t, "none", browser.Get(admin, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("#keys thead")).display`)))
	require.True(t, browser.Get(admin, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`)), "no sideways scrolling")
	phoneShot := admin.Screenshot("admin-keys-phone")

	for _, p := range []string{userShot, usersShot, keysShot, auditShot, phoneShot} {
		st, err := os.Stat(p)
		require.NoError(t, err)
		require.Positive(t, st.Size(), filepath.Base(p))
	}
}
