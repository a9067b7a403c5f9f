package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
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
	"github.com/vigil-ops/vigil/services/gateway"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
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

// browser is a user agent on the console: a cookie jar, redirects not
// followed (the test looks at each answer).
type browser struct {
	t    *testing.T
	base string
	jar  *cookiejar.Jar
	c    *http.Client
	lang string
}

func newBrowser(t *testing.T, addr string) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{t: t, base: "http://" + addr, jar: jar, c: &http.Client{
		Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// consolePage is an answer of the console.
type consolePage struct {
	code   int
	header http.Header
	body   string
	set    []*http.Cookie
}

func (b *browser) do(method, path string, form url.Values, header ...string) consolePage {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	require.NoError(b.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.c.Do(req)
	require.NoError(b.t, err)
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return consolePage{code: resp.StatusCode, header: resp.Header, body: string(raw), set: resp.Cookies()}
}

func (b *browser) get(path string) consolePage { b.t.Helper(); return b.do(http.MethodGet, path, nil) }

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the token of the forms of p.
func (b *browser) csrf(p consolePage) string {
	b.t.Helper()
	m := csrfRE.FindStringSubmatch(p.body)
	require.NotNil(b.t, m, "no CSRF field in %s", p.body)
	return m[1]
}

// cookie is the jar's value of name ("" when none).
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.base)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// drop forgets a cookie, as the browser does when it expires.
func (b *browser) drop(name string) {
	u, _ := url.Parse(b.base)
	b.jar.SetCookies(u, []*http.Cookie{{Name: name, Value: "", Path: "/", MaxAge: -1}})
}

func (b *browser) login(user, password string) consolePage {
	b.t.Helper()
	lp := b.get("/login")
	require.Equal(b.t, http.StatusOK, lp.code)
	return b.do(http.MethodPost, "/login", url.Values{"csrf": {b.csrf(lp)}, "username": {user}, "password": {password}, "next": {"/"}})
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
	b := newBrowser(t, g.addr)

	// Signed out, every page sends to the login page and back.
	p := b.get("/incidents?status=open")
	require.Equal(t, http.StatusSeeOther, p.code)
	require.Equal(t, "/login?next="+url.QueryEscape("/incidents?status=open"), p.header.Get("Location"))

	// A wrong password: a message, no session.
	p = b.login("alice", "not alice's password")
	require.Equal(t, http.StatusUnauthorized, p.code)
	require.Contains(t, p.body, "Wrong username or password.")
	require.Empty(t, b.cookie("vigil_access"))
	require.Empty(t, b.cookie("vigil_refresh"))

	p = b.login("alice", "correct horse battery")
	require.Equal(t, http.StatusSeeOther, p.code, p.body)
	require.Equal(t, "/", p.header.Get("Location"))
	names := map[string]*http.Cookie{}
	for _, c := range p.set {
		names[c.Name] = c
	}
	for _, n := range []string{"vigil_access", "vigil_refresh", "vigil_csrf"} {
		require.Contains(t, names, n)
		require.True(t, names[n].HttpOnly, n)
		require.Equal(t, http.SameSiteStrictMode, names[n].SameSite, n)
		require.Equal(t, "/", names[n].Path, n)
		require.False(t, names[n].Secure, "%s: plain HTTP here", n)
	}
	refresh := b.cookie("vigil_refresh")

	// The first page: 50 of the 56 payments incidents, not web's.
	p = b.get("/")
	require.Equal(t, http.StatusOK, p.code)
	require.Contains(t, p.body, `<span class="user">alice</span>`)
	require.Contains(t, p.body, "payments")
	require.Contains(t, p.body, "HighLatency on shop")
	require.Contains(t, p.body, `href="/incidents/`+incidentID+`"`)
	require.NotContains(t, p.body, "Web is slow")
	require.Equal(t, 50, strings.Count(p.body, `<tr id="incident-`))
	next := regexp.MustCompile(`<a href="([^"]+)" rel="next">`).FindStringSubmatch(p.body)
	require.NotNil(t, next)
	p = b.get(strings.ReplaceAll(next[1], "&amp;", "&"))
	require.Equal(t, http.StatusOK, p.code)
	require.Equal(t, 6, strings.Count(p.body, `<tr id="incident-`))
	require.NotContains(t, p.body, `rel="next"`)

	// Filters are the API's (status, priority, app, team, text).
	p = b.get("/?status=resolved")
	require.Equal(t, 11, strings.Count(p.body, `<tr id="incident-`))
	require.Equal(t, 11, strings.Count(p.body, `st-resolved`))
	p = b.get("/?priority=P1")
	require.Equal(t, 1, strings.Count(p.body, `<tr id="incident-`))
	p = b.get("/?q=incident+07")
	require.Equal(t, 1, strings.Count(p.body, `<tr id="incident-`))
	require.Contains(t, p.body, "Payments incident 07")

	// One incident, read-only.
	p = b.get("/incidents/" + incidentID)
	require.Equal(t, http.StatusOK, p.code)
	require.Contains(t, p.body, "HighLatency on shop")
	require.Contains(t, p.body, "alertname=HighLatency")
	require.Contains(t, p.body, `prio-P1`)

	// Logging out needs the form's token; with it the session ends.
	p = b.do(http.MethodPost, "/logout", url.Values{"csrf": {b.csrf(p)}})
	require.Equal(t, http.StatusSeeOther, p.code)
	require.Equal(t, "/login", p.header.Get("Location"))
	require.Empty(t, b.cookie("vigil_access"))
	require.Equal(t, http.StatusSeeOther, b.get("/").code)
	var problem struct{ Detail string }
	resp := rest(t, g.addr, http.MethodPost, "/api/v1/auth/refresh", "", "", map[string]string{"refreshToken": refresh}, &problem)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the session is revoked: %s", problem.Detail)
}

// Nobody reads another team's incidents through the console: the list
// leaves them out and the page answers 403, as the API does.
func TestConsoleOtherTeamRefused(t *testing.T) {
	t.Parallel()
	_, g := consoleEnv(t)
	b := newBrowser(t, g.addr)
	require.Equal(t, http.StatusSeeOther, b.login("olga", "correct horse battery").code)

	p := b.get("/")
	require.Equal(t, http.StatusOK, p.code)
	require.Contains(t, p.body, "Web is slow")
	require.Equal(t, 1, strings.Count(p.body, `<tr id="incident-`))
	require.NotContains(t, p.body, "HighLatency on shop")

	p = b.get("/incidents/" + incidentID)
	require.Equal(t, http.StatusForbidden, p.code)
	require.NotContains(t, p.body, "HighLatency")
	require.Contains(t, p.body, "You may not see this.")
	require.Equal(t, http.StatusNotFound, b.get("/incidents/00000000-0000-4000-8000-000000000000").code)
}

// A state-changing request without the form's token, or from another
// site, is refused (403) and changes nothing: the session lives on.
func TestConsoleCSRFRefused(t *testing.T) {
	t.Parallel()
	_, g := consoleEnv(t)
	b := newBrowser(t, g.addr)
	require.Equal(t, http.StatusSeeOther, b.login("alice", "correct horse battery").code)
	token := b.csrf(b.get("/"))

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
		p := b.do(http.MethodPost, path, tc.form, tc.header...)
		require.Equal(t, http.StatusForbidden, p.code, name)
		require.Contains(t, p.body, "This form expired or did not come from this page", name)
		require.Empty(t, p.set, "%s: no cookie changed", name)
		// Still signed in, with the same session.
		require.Equal(t, http.StatusOK, b.get("/").code, name)
	}
	var who struct{ User struct{ Name string } }
	resp := rest(t, g.addr, http.MethodGet, "/api/v1/auth/whoami", b.cookie("vigil_access"), "", nil, &who)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "alice", who.User.Name)
}

// An expired access token (the browser dropped its cookie) is renewed
// from the refresh token without the user noticing; the old refresh
// token is then spent.
func TestConsoleRefreshesExpiredAccess(t *testing.T) {
	t.Parallel()
	_, g := consoleEnv(t)
	b := newBrowser(t, g.addr)
	require.Equal(t, http.StatusSeeOther, b.login("alice", "correct horse battery").code)
	oldRefresh := b.cookie("vigil_refresh")
	b.drop("vigil_access")
	require.Empty(t, b.cookie("vigil_access"))

	p := b.get("/")
	require.Equal(t, http.StatusOK, p.code)
	require.Contains(t, p.body, "HighLatency on shop")
	require.NotEmpty(t, b.cookie("vigil_access"))
	require.NotEqual(t, oldRefresh, b.cookie("vigil_refresh"))
	resp := rest(t, g.addr, http.MethodPost, "/api/v1/auth/refresh", "", "", map[string]string{"refreshToken": oldRefresh}, nil)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

// Failed logins through the console count as any others: past the
// limit the console says so (429) and even the right password waits.
func TestConsoleLoginThrottled(t *testing.T) {
	t.Parallel()
	_, g := consoleEnv(t)
	b := newBrowser(t, g.addr)
	for range access.DefaultLoginLimits.UserFailures {
		require.Equal(t, http.StatusUnauthorized, b.login("alice", "wrong").code)
	}
	p := b.login("alice", "correct horse battery")
	require.Equal(t, http.StatusTooManyRequests, p.code)
	require.Contains(t, p.body, "Too many failed logins")
	require.Empty(t, b.cookie("vigil_access"))
}

// Every page carries the security headers, and no script or style but
// the console's own files; assets are cached by their content hash.
func TestConsoleSecurityHeadersAndAssets(t *testing.T) {
	t.Parallel()
	_, g := consoleEnv(t)
	b := newBrowser(t, g.addr)
	login := b.get("/login")
	require.Equal(t, http.StatusSeeOther, b.login("alice", "correct horse battery").code)
	for _, p := range []consolePage{login, b.get("/"), b.get("/incidents/" + incidentID), b.get("/no/such/page")} {
		csp := p.header.Get("Content-Security-Policy")
		require.Contains(t, csp, "default-src 'self'")
		require.Contains(t, csp, "frame-ancestors 'none'")
		require.NotContains(t, csp, "unsafe-inline")
		require.Equal(t, "DENY", p.header.Get("X-Frame-Options"))
		require.Equal(t, "same-origin", p.header.Get("Referrer-Policy"))
		require.Equal(t, "nosniff", p.header.Get("X-Content-Type-Options"))
		// No inline script, handler or style.
		for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(p.body, -1) {
			require.Regexp(t, `src="/static/console\.js\?v=[0-9a-f]+"`, m)
		}
		require.NotRegexp(t, `(?i)\son[a-z]+=|<style|\sstyle=|javascript:`, p.body)
	}
	require.Equal(t, http.StatusNotFound, b.get("/no/such/page").code)

	css := regexp.MustCompile(`href="(/static/console\.css\?v=[0-9a-f]+)"`).FindStringSubmatch(login.body)
	require.NotNil(t, css)
	p := b.get(css[1])
	require.Equal(t, http.StatusOK, p.code)
	require.Equal(t, "text/css; charset=utf-8", p.header.Get("Content-Type"))
	require.Contains(t, p.header.Get("Cache-Control"), "immutable")
	require.Equal(t, "no-cache", b.get("/static/console.css").header.Get("Cache-Control"))
	require.Equal(t, http.StatusNotFound, b.get("/static/other.js").code)

	// What the gateway served before is untouched.
	h := b.get("/healthz")
	require.Equal(t, "ok\n", h.body)
	api := b.get("/api/v1/incidents")
	require.Equal(t, http.StatusUnauthorized, api.code, "the console's cookies are no API credentials")
	require.Equal(t, "application/problem+json", api.header.Get("Content-Type"))
}

// The console speaks Traditional Chinese to a browser that asks for it,
// or to a user who switched, and keeps the switch in a cookie.
func TestConsoleTraditionalChinese(t *testing.T) {
	t.Parallel()
	_, g := consoleEnv(t)
	b := newBrowser(t, g.addr)
	b.lang = "zh-TW,zh;q=0.9,en;q=0.5"
	p := b.get("/login")
	require.Contains(t, p.body, `<html lang="zh-TW">`)
	require.Contains(t, p.body, "使用者名稱")
	require.Equal(t, http.StatusSeeOther, b.login("alice", "correct horse battery").code)
	p = b.get("/")
	require.Contains(t, p.body, "<h1>事件</h1>")
	require.Contains(t, p.body, "未處理")

	b.lang = "en-US,en;q=0.9"
	require.Contains(t, b.get("/").body, "<h1>Incidents</h1>")
	p = b.get("/lang/zh-TW?back=" + url.QueryEscape("/?status=open"))
	require.Equal(t, http.StatusSeeOther, p.code)
	require.Equal(t, "/?status=open", p.header.Get("Location"))
	require.Contains(t, b.get("/").body, "<h1>事件</h1>")
	p = b.get("/lang/en?back=" + url.QueryEscape("https://evil.example/"))
	require.Equal(t, "/", p.header.Get("Location"), "the switch sends nowhere else")
}

// sse is a browser's /events stream, event by event.
type sse struct {
	events chan [2]string // name, data
}

func (b *browser) events(path string) *sse {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.t.Context(), http.MethodGet, b.base+path, nil)
	require.NoError(b.t, err)
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	resp, err := b.c.Do(req)
	require.NoError(b.t, err)
	b.t.Cleanup(func() { _ = resp.Body.Close() })
	require.Equal(b.t, http.StatusOK, resp.StatusCode)
	require.Equal(b.t, "text/event-stream", resp.Header.Get("Content-Type"))
	s := &sse{events: make(chan [2]string, 256)}
	go func() {
		sc := bufio.NewScanner(resp.Body)
		var name string
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if name != "" {
					s.events <- [2]string{name, strings.Join(data, "\n")}
				}
				name, data = "", nil
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data:"):
				data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
			}
		}
		close(s.events)
	}()
	return s
}

// until returns the events up to the first one ok accepts, publishing
// again every 200 ms until it comes (the gateway's subscription may not
// be in place at the first publish).
func (s *sse) until(t *testing.T, publish func(), ok func(name, data string) bool) [][2]string {
	t.Helper()
	var seen [][2]string
	publish()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev, open := <-s.events:
			require.True(t, open, "the stream ended; seen %v", seen)
			seen = append(seen, ev)
			if ok(ev[0], ev[1]) {
				return seen
			}
		case <-tick.C:
			publish()
		case <-deadline:
			t.Fatalf("no such event; seen %v", seen)
		}
	}
}

// The list is live: an incident opened, updated or resolved reaches the
// streams of the users who may read it, rendered in their language, and
// nobody else's; a change that takes it out of a page's filters takes
// its row out.
func TestConsoleLiveIncidents(t *testing.T) {
	t.Parallel()
	e, g := consoleEnv(t)
	alice, olga := newBrowser(t, g.addr), newBrowser(t, g.addr)
	alice.lang = "zh-TW"
	require.Equal(t, http.StatusSeeOther, alice.login("alice", "correct horse battery").code)
	require.Equal(t, http.StatusSeeOther, olga.login("olga", "correct horse battery").code)
	aliceAll := alice.events("/events")
	aliceOpen := alice.events("/events?status=open")
	olgaAll := olga.events("/events")

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
	isRow := func(id string) func(string, string) bool {
		return func(name, data string) bool { return name == "row" && strings.Contains(data, `id="incident-`+id+`"`) }
	}
	seen := aliceAll.until(t, opened, isRow(payments.Id))
	row := seen[len(seen)-1][1]
	require.Contains(t, row, "Checkout errors")
	require.Contains(t, row, "未處理", "in alice's language")
	require.Contains(t, row, `href="/incidents/`+payments.Id+`"`)
	require.NotRegexp(t, `(?i)<script|\son[a-z]+=`, row)
	for _, ev := range seen {
		require.NotContains(t, ev[1], web.Id, "alice reads no incident of web")
	}
	seen = olgaAll.until(t, opened, isRow(web.Id))
	for _, ev := range seen {
		require.NotContains(t, ev[1], payments.Id, "olga reads no incident of payments")
	}

	// Resolved: the open-only page loses the row, the full list shows it
	// resolved.
	resolvedInc := proto.CloneOf(payments)
	resolvedInc.Status = typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED
	resolved := publish(&eventsv1.IncidentResolved{Meta: bus.NewMeta("monitor", nil), Incident: resolvedInc})
	aliceOpen.until(t, resolved, func(name, data string) bool { return name == "gone" && data == payments.Id })
	aliceAll.until(t, resolved, func(name, data string) bool {
		return isRow(payments.Id)(name, data) && strings.Contains(data, "已解決")
	})

	// Signed out, the stream asks the page to reload (to the login).
	stranger := newBrowser(t, g.addr)
	ev, open := <-stranger.events("/events").events
	require.True(t, open)
	require.Equal(t, "reload", ev[0])
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
		b := newBrowser(t, g.addr)
		lp := b.do(http.MethodGet, "/login", nil, "X-Forwarded-Proto", "https")
		require.Equal(t, http.StatusOK, lp.code, tc.name)
		p := b.do(http.MethodPost, "/login", url.Values{"csrf": {b.csrf(lp)}, "username": {"alice"}, "password": {"correct horse battery"}},
			"X-Forwarded-Proto", "https")
		require.Equal(t, http.StatusSeeOther, p.code, tc.name)
		require.Len(t, p.set, 3, tc.name)
		for _, c := range p.set {
			require.Equal(t, tc.secure, c.Secure, "%s: %s", tc.name, c.Name)
			require.True(t, c.HttpOnly, "%s: %s", tc.name, c.Name)
		}
		g.stop()
	}
}
