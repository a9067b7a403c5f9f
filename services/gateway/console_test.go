package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit/browser"
	"github.com/vigil-ops/vigil/services/gateway"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
	"github.com/vigil-ops/vigil/services/gateway/internal/postgres"
)

// ListIncidents answers the fixture's incident (of payments) and the
// listed ones, newest first, scoped to the caller's teams and filtered
// and paged (the token is an offset) as monitor does.
func (f *fakeIncidents) ListIncidents(ctx context.Context, r *monitorv1.ListIncidentsRequest) (*monitorv1.ListIncidentsResponse, error) {
	p, _ := auth.FromContext(ctx)
	f.mu.Lock()
	first := proto.CloneOf(f.incident)
	first.Team = "payments"
	all := append([]*typesv1.Incident{first}, f.listed...)
	f.mu.Unlock()
	var in []*typesv1.Incident
	for _, i := range all {
		if !p.Reaches(i.GetTeam()) || (r.GetApp() != "" && i.GetApp() != r.GetApp()) ||
			(len(r.GetStatuses()) > 0 && !slices.Contains(r.GetStatuses(), i.GetStatus())) ||
			(len(r.GetPriorities()) > 0 && !slices.Contains(r.GetPriorities(), i.GetPriority())) ||
			(r.GetTeam() != "" && i.GetTeam() != r.GetTeam()) ||
			(r.GetText() != "" && !strings.Contains(strings.ToLower(i.GetTitle()), strings.ToLower(r.GetText()))) {
			continue
		}
		in = append(in, i)
	}
	from, _ := strconv.Atoi(r.GetPageToken())
	size := int(r.GetPageSize())
	res := &monitorv1.ListIncidentsResponse{}
	if from < len(in) {
		res.Incidents = in[from:min(from+size, len(in))]
	}
	if from+size < len(in) {
		res.NextPageToken = strconv.Itoa(from + size)
	}
	return res, nil
}

func consoleEnv(t *testing.T) (*env, *gw) {
	t.Helper()
	e := newEnv(t)
	e.incidents.incident.Title = "HighLatency on shop"
	e.incidents.incident.Priority = typesv1.Priority_PRIORITY_P1
	e.incidents.incident.OpenedAt = timestamppb.Now()
	for i := range 55 {
		st := typesv1.IncidentStatus_INCIDENT_STATUS_OPEN
		if i%5 == 0 {
			st = typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED
		}
		e.incidents.listed = append(e.incidents.listed, &typesv1.Incident{
			Id: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Title: fmt.Sprintf("Payments incident %02d", i),
			Team: "payments", App: "shop", Status: st, Priority: typesv1.Priority_PRIORITY_P2, OpenedAt: timestamppb.Now(),
		})
	}
	e.incidents.listed = append(e.incidents.listed, &typesv1.Incident{
		Id: "00000000-0000-4000-8000-00000000web1", Title: "Web is slow", Team: "web", App: "site",
		Status: typesv1.IncidentStatus_INCIDENT_STATUS_OPEN, Priority: typesv1.Priority_PRIORITY_P0,
	})
	e.withBus = true
	return e, e.start(t, gateway.Options{})
}

// A user logs in with the CLI's users and sessions, reads the incidents
// of their teams only, page by page, and logs out: the session is
// revoked on the server, not only forgotten by the browser.
func TestConsoleLoginIncidentsLogout(t *testing.T) {
	t.Parallel()
	_, g := consoleEnv(t)
	b := browser.NewClient(t, "http://"+g.addr)

	// Signed out, every page sends to the login page and back.
	p := b.Get("/incidents?status=open")
	require.Equal(t, http.StatusSeeOther, p.Code)
	require.Equal(t, "/login?next="+url.QueryEscape("/incidents?status=open"), p.Header.Get("Location"))

	// A wrong password: a message, no session.
	p = b.Login("alice", "not alice's password")
	require.Equal(t, http.StatusUnauthorized, p.Code)
	require.Contains(t, p.Body, "Wrong username or password.")
	require.Empty(t, b.Cookie("vigil_access"))
	require.Empty(t, b.Cookie("vigil_refresh"))

	p = b.Login("alice", "correct horse battery")
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	require.Equal(t, "/", p.Header.Get("Location"))
	names := map[string]*http.Cookie{}
	for _, c := range p.Set {
		names[c.Name] = c
	}
	for _, n := range []string{"vigil_access", "vigil_refresh", "vigil_csrf"} {
		require.Contains(t, names, n)
		require.True(t, names[n].HttpOnly, n)
		require.Equal(t, http.SameSiteStrictMode, names[n].SameSite, n)
		require.Equal(t, "/", names[n].Path, n)
		require.False(t, names[n].Secure, "%s: plain HTTP here", n)
	}
	refresh := b.Cookie("vigil_refresh")

	// The first page: 50 of the 56 payments incidents, not web's.
	p = b.Get("/")
	require.Equal(t, http.StatusOK, p.Code)
	require.Contains(t, p.Body, `<span class="user">alice</span>`)
	require.Contains(t, p.Body, "payments")
	require.Contains(t, p.Body, "HighLatency on shop")
	require.Contains(t, p.Body, `href="/incidents/`+incidentID+`"`)
	require.NotContains(t, p.Body, "Web is slow")
	require.Equal(t, 50, strings.Count(p.Body, `<tr id="incident-`))
	next := regexp.MustCompile(`<a href="([^"]+)" rel="next">`).FindStringSubmatch(p.Body)
	require.NotNil(t, next)
	p = b.Get(strings.ReplaceAll(next[1], "&amp;", "&"))
	require.Equal(t, http.StatusOK, p.Code)
	require.Equal(t, 6, strings.Count(p.Body, `<tr id="incident-`))
	require.NotContains(t, p.Body, `rel="next"`)

	// Filters are the API's (status, priority, app, team, text).
	p = b.Get("/?status=resolved")
	require.Equal(t, 11, strings.Count(p.Body, `<tr id="incident-`))
	require.Equal(t, 11, strings.Count(p.Body, `st-resolved`))
	p = b.Get("/?priority=P1")
	require.Equal(t, 1, strings.Count(p.Body, `<tr id="incident-`))
	p = b.Get("/?q=incident+07")
	require.Equal(t, 1, strings.Count(p.Body, `<tr id="incident-`))
	require.Contains(t, p.Body, "Payments incident 07")

	// One incident, read-only.
	p = b.Get("/incidents/" + incidentID)
	require.Equal(t, http.StatusOK, p.Code)
	require.Contains(t, p.Body, "HighLatency on shop")
	require.Contains(t, p.Body, "alertname=HighLatency")
	require.Contains(t, p.Body, `prio-P1`)

	// Logging out needs the form's token; with it the session ends.
	p = b.Do(http.MethodPost, "/logout", url.Values{"csrf": {b.CSRF(p)}})
	require.Equal(t, http.StatusSeeOther, p.Code)
	require.Equal(t, "/login", p.Header.Get("Location"))
	require.Empty(t, b.Cookie("vigil_access"))
	require.Equal(t, http.StatusSeeOther, b.Get("/").Code)
	var problem struct{ Detail string }
	resp := rest(t, g.addr, http.MethodPost, "/api/v1/auth/refresh", "", "", map[string]string{"refreshToken": refresh}, &problem)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the session is revoked: %s", problem.Detail)
}

// Nobody reads another team's incidents through the console: the list
// leaves them out and the page answers 403, as the API does.
func TestConsoleOtherTeamRefused(t *testing.T) {
	t.Parallel()
	_, g := consoleEnv(t)
	b := browser.NewClient(t, "http://"+g.addr)
	require.Equal(t, http.StatusSeeOther, b.Login("olga", "correct horse battery").Code)

	p := b.Get("/")
	require.Equal(t, http.StatusOK, p.Code)
	require.Contains(t, p.Body, "Web is slow")
	require.Equal(t, 1, strings.Count(p.Body, `<tr id="incident-`))
	require.NotContains(t, p.Body, "HighLatency on shop")

	p = b.Get("/incidents/" + incidentID)
	require.Equal(t, http.StatusForbidden, p.Code)
	require.NotContains(t, p.Body, "HighLatency")
	require.Contains(t, p.Body, "You may not see this.")
	require.Equal(t, http.StatusNotFound, b.Get("/incidents/00000000-0000-4000-8000-000000000000").Code)
}

// A state-changing request without the form's token, or from another
// site, is refused (403) and changes nothing: the session lives on.
func TestConsoleCSRFRefused(t *testing.T) {
	t.Parallel()
	_, g := consoleEnv(t)
	b := browser.NewClient(t, "http://"+g.addr)
	require.Equal(t, http.StatusSeeOther, b.Login("alice", "correct horse battery").Code)
	token := b.CSRF(b.Get("/"))

	for name, tc := range map[string]struct {
		form   url.Values
		header []string
	}{
		"no token":        {url.Values{}, nil},
		"wrong token":     {url.Values{"csrf": {strings.Repeat("A", 43)}}, nil},
		"cross-site":      {url.Values{"csrf": {token}}, []string{"Sec-Fetch-Site", "cross-site"}},
		"another origin":  {url.Values{"csrf": {token}}, []string{"Origin", "https://evil.example"}},
		"login, no token": {url.Values{"username": {"alice"}, "password": {"correct horse battery"}}, nil},
	} {
		path := "/logout"
		if strings.HasPrefix(name, "login") {
			path = "/login"
		}
		p := b.Do(http.MethodPost, path, tc.form, tc.header...)
		require.Equal(t, http.StatusForbidden, p.Code, name)
		require.Contains(t, p.Body, "This form expired or did not come from this page", name)
		require.Empty(t, p.Set, "%s: no cookie changed", name)
		// Still signed in, with the same session.
		require.Equal(t, http.StatusOK, b.Get("/").Code, name)
	}
	var who struct{ User struct{ Name string } }
	resp := rest(t, g.addr, http.MethodGet, "/api/v1/auth/whoami", b.Cookie("vigil_access"), "", nil, &who)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "alice", who.User.Name)
}

// An expired access token (the browser dropped its cookie) is renewed
// from the refresh token without the user noticing; the old refresh
// token is then spent.
func TestConsoleRefreshesExpiredAccess(t *testing.T) {
	t.Parallel()
	_, g := consoleEnv(t)
	b := browser.NewClient(t, "http://"+g.addr)
	require.Equal(t, http.StatusSeeOther, b.Login("alice", "correct horse battery").Code)
	oldRefresh := b.Cookie("vigil_refresh")
	b.Drop("vigil_access")
	require.Empty(t, b.Cookie("vigil_access"))

	p := b.Get("/")
	require.Equal(t, http.StatusOK, p.Code)
	require.Contains(t, p.Body, "HighLatency on shop")
	require.NotEmpty(t, b.Cookie("vigil_access"))
	require.NotEqual(t, oldRefresh, b.Cookie("vigil_refresh"))
	resp := rest(t, g.addr, http.MethodPost, "/api/v1/auth/refresh", "", "", map[string]string{"refreshToken": oldRefresh}, nil)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

// Failed logins through the console count as any others: past the
// limit the console says so (429) and even the right password waits.
func TestConsoleLoginThrottled(t *testing.T) {
	t.Parallel()
	_, g := consoleEnv(t)
	b := browser.NewClient(t, "http://"+g.addr)
	for range access.DefaultLoginLimits.UserFailures {
		require.Equal(t, http.StatusUnauthorized, b.Login("alice", "wrong").Code)
	}
	p := b.Login("alice", "correct horse battery")
	require.Equal(t, http.StatusTooManyRequests, p.Code)
	require.Contains(t, p.Body, "Too many failed logins")
	require.Empty(t, b.Cookie("vigil_access"))
}

// Every page carries the security headers, and no script or style but
// the console's own files; assets are cached by their content hash.
func TestConsoleSecurityHeadersAndAssets(t *testing.T) {
	t.Parallel()
	_, g := consoleEnv(t)
	b := browser.NewClient(t, "http://"+g.addr)
	login := b.Get("/login")
	require.Equal(t, http.StatusSeeOther, b.Login("alice", "correct horse battery").Code)
	for _, p := range []browser.Page{login, b.Get("/"), b.Get("/incidents/" + incidentID), b.Get("/no/such/page")} {
		csp := p.Header.Get("Content-Security-Policy")
		require.Contains(t, csp, "default-src 'self'")
		require.Contains(t, csp, "frame-ancestors 'none'")
		require.NotContains(t, csp, "unsafe-inline")
		require.Equal(t, "DENY", p.Header.Get("X-Frame-Options"))
		require.Equal(t, "same-origin", p.Header.Get("Referrer-Policy"))
		require.Equal(t, "nosniff", p.Header.Get("X-Content-Type-Options"))
		// No inline script, handler or style.
		for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(p.Body, -1) {
			require.Regexp(t, `src="/static/console\.js\?v=[0-9a-f]+"`, m)
		}
		require.NotRegexp(t, `(?i)\son[a-z]+=|<style|\sstyle=|javascript:`, p.Body)
	}
	require.Equal(t, http.StatusNotFound, b.Get("/no/such/page").Code)

	css := regexp.MustCompile(`href="(/static/console\.css\?v=[0-9a-f]+)"`).FindStringSubmatch(login.Body)
	require.NotNil(t, css)
	p := b.Get(css[1])
	require.Equal(t, http.StatusOK, p.Code)
	require.Equal(t, "text/css; charset=utf-8", p.Header.Get("Content-Type"))
	require.Contains(t, p.Header.Get("Cache-Control"), "immutable")
	require.Equal(t, "no-cache", b.Get("/static/console.css").Header.Get("Cache-Control"))
	require.Equal(t, http.StatusNotFound, b.Get("/static/other.js").Code)

	// What the gateway served before is untouched.
	h := b.Get("/healthz")
	require.Equal(t, "ok\n", h.Body)
	api := b.Get("/api/v1/incidents")
	require.Equal(t, http.StatusUnauthorized, api.Code, "the console's cookies are no API credentials")
	require.Equal(t, "application/problem+json", api.Header.Get("Content-Type"))
}

// The console speaks Traditional Chinese to a browser that asks for it,
// or to a user who switched, and keeps the switch in a cookie.
func TestConsoleTraditionalChinese(t *testing.T) {
	t.Parallel()
	_, g := consoleEnv(t)
	b := browser.NewClient(t, "http://"+g.addr)
	b.Lang = "zh-TW,zh;q=0.9,en;q=0.5"
	p := b.Get("/login")
	require.Contains(t, p.Body, `<html lang="zh-TW">`)
	require.Contains(t, p.Body, "使用者名稱")
	require.Equal(t, http.StatusSeeOther, b.Login("alice", "correct horse battery").Code)
	p = b.Get("/")
	require.Contains(t, p.Body, "<h1>事件</h1>")
	require.Contains(t, p.Body, "未處理")

	b.Lang = "en-US,en;q=0.9"
	require.Contains(t, b.Get("/").Body, "<h1>Incidents</h1>")
	p = b.Get("/lang/zh-TW?back=" + url.QueryEscape("/?status=open"))
	require.Equal(t, http.StatusSeeOther, p.Code)
	require.Equal(t, "/?status=open", p.Header.Get("Location"))
	require.Contains(t, b.Get("/").Body, "<h1>事件</h1>")
	p = b.Get("/lang/en?back=" + url.QueryEscape("https://evil.example/"))
	require.Equal(t, "/", p.Header.Get("Location"), "the switch sends nowhere else")
}

// The list is live: an incident opened, updated or resolved reaches the
// streams of the users who may read it, rendered in their language, and
// nobody else's; a change that takes it out of a page's filters takes
// its row out.
func TestConsoleLiveIncidents(t *testing.T) {
	t.Parallel()
	e, g := consoleEnv(t)
	alice, olga := browser.NewClient(t, "http://"+g.addr), browser.NewClient(t, "http://"+g.addr)
	alice.Lang = "zh-TW"
	require.Equal(t, http.StatusSeeOther, alice.Login("alice", "correct horse battery").Code)
	require.Equal(t, http.StatusSeeOther, olga.Login("olga", "correct horse battery").Code)
	aliceAll := alice.Events("/events")
	aliceOpen := alice.Events("/events?status=open")
	olgaAll := olga.Events("/events")

	payments := &typesv1.Incident{
		Id: "00000000-0000-4000-8000-0000000live1", Title: "Checkout errors", Team: "payments", App: "shop",
		Status: typesv1.IncidentStatus_INCIDENT_STATUS_OPEN, Priority: typesv1.Priority_PRIORITY_P0, OpenedAt: timestamppb.Now(),
	}
	web := &typesv1.Incident{
		Id: "00000000-0000-4000-8000-0000000live2", Title: "Web secret incident", Team: "web", App: "site",
		Status: typesv1.IncidentStatus_INCIDENT_STATUS_OPEN, Priority: typesv1.Priority_PRIORITY_P1,
	}
	// web's event goes first each time: were it delivered to alice, she
	// would see it before payments'.
	publish := func(evs ...bus.Event) func() {
		return func() { require.NoError(t, e.pub.Publish(t.Context(), evs...)) }
	}
	opened := publish(
		&eventsv1.IncidentOpened{Meta: bus.NewMeta("monitor", nil), Incident: web},
		&eventsv1.IncidentOpened{Meta: bus.NewMeta("monitor", nil), Incident: payments},
	)
	isRow := func(id string) func(browser.Event) bool {
		return func(ev browser.Event) bool {
			return ev.Name == "row" && strings.Contains(ev.Data, `id="incident-`+id+`"`)
		}
	}
	seen := aliceAll.Until(t, opened, isRow(payments.Id))
	row := seen[len(seen)-1].Data
	require.Contains(t, row, "Checkout errors")
	require.Contains(t, row, "未處理", "in alice's language")
	require.Contains(t, row, `href="/incidents/`+payments.Id+`"`)
	require.NotRegexp(t, `(?i)<script|\son[a-z]+=`, row)
	for _, ev := range seen {
		require.NotContains(t, ev.Data, web.Id, "alice reads no incident of web")
	}
	seen = olgaAll.Until(t, opened, isRow(web.Id))
	for _, ev := range seen {
		require.NotContains(t, ev.Data, payments.Id, "olga reads no incident of payments")
	}

	// Resolved: the open-only page loses the row, the full list shows it
	// resolved.
	resolvedInc := proto.CloneOf(payments)
	resolvedInc.Status = typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED
	resolved := publish(&eventsv1.IncidentResolved{Meta: bus.NewMeta("monitor", nil), Incident: resolvedInc})
	aliceOpen.Until(t, resolved, func(ev browser.Event) bool { return ev.Name == "gone" && ev.Data == payments.Id })
	aliceAll.Until(t, resolved, func(ev browser.Event) bool {
		return isRow(payments.Id)(ev) && strings.Contains(ev.Data, "已解決")
	})

	// Signed out, the stream asks the page to reload (to the login).
	stranger := browser.NewClient(t, "http://"+g.addr)
	ev, open := <-stranger.Events("/events").C
	require.True(t, open)
	require.Equal(t, "reload", ev.Name)
}

// Behind a trusted proxy that terminated TLS (X-Forwarded-Proto: https),
// the session cookies are Secure; a client's own X-Forwarded-Proto is
// not believed.
func TestConsoleSecureCookiesBehindTrustedProxy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		opts   gateway.Options
		secure bool
	}{
		{"trusted proxy", gateway.Options{TrustedProxies: mustPrefixes("127.0.0.1/32")}, true},
		{"client's say", gateway.Options{}, false},
	} {
		g := e.start(t, tc.opts)
		b := browser.NewClient(t, "http://"+g.addr)
		lp := b.Do(http.MethodGet, "/login", nil, "X-Forwarded-Proto", "https")
		require.Equal(t, http.StatusOK, lp.Code, tc.name)
		p := b.Do(http.MethodPost, "/login", url.Values{"csrf": {b.CSRF(lp)}, "username": {"alice"}, "password": {"correct horse battery"}},
			"X-Forwarded-Proto", "https")
		require.Equal(t, http.StatusSeeOther, p.Code, tc.name)
		require.Len(t, p.Set, 3, tc.name)
		for _, c := range p.Set {
			require.Equal(t, tc.secure, c.Secure, "%s: %s", tc.name, c.Name)
			require.True(t, c.HttpOnly, "%s: %s", tc.name, c.Name)
		}
		g.stop()
	}
}

// The audit log names the HTTP client of a call the gateway relayed to
// its own gRPC server — a REST call, a console page's — not the gateway
// itself; behind a trusted proxy, the client X-Forwarded-For names.
func TestAuditRecordsTheHTTPClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := e.start(t, gateway.Options{AdminToken: restAdminToken, TrustedProxies: mustPrefixes("127.0.0.1/32")})
	peers := func(target string) []string {
		evs, err := e.store.AuditEvents(t.Context(), postgres.AuditQuery{Method: "vigil.gateway.v1.AuthService/Login", Limit: 100})
		require.NoError(t, err)
		var out []string
		for _, ev := range evs {
			if ev.Target == target {
				out = append(out, ev.Peer)
			}
		}
		return out
	}

	resp, _ := login(t, g.addr, "olga", "correct horse battery", "203.0.113.5")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b := browser.NewClient(t, "http://"+g.addr)
	lp := b.Get("/login")
	p := b.Do(http.MethodPost, "/login", url.Values{"csrf": {b.CSRF(lp)}, "username": {"alice"}, "password": {"correct horse battery"}, "next": {"/"}},
		"X-Forwarded-For", "198.51.100.9")
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)

	require.Eventually(t, func() bool {
		return slices.Equal(peers("user/olga"), []string{"203.0.113.5"}) && slices.Equal(peers("user/alice"), []string{"198.51.100.9"})
	}, 5*time.Second, 20*time.Millisecond, "olga %v, alice %v", peers("user/olga"), peers("user/alice"))
}
