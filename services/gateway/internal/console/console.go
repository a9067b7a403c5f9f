// Package console is Vigil's web console: server-rendered pages the
// gateway serves at /, from templates and assets embedded in the binary
// (docs/adr/0013-web-console.md). It reaches Vigil only through the
// public API, the gateway's own gRPC services with the user's session
// token, so the policy, team scoping and audit are the API's.
package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	// The tz cookie names a zone the host may not have.
	_ "time/tzdata"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/auth"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
)

//go:embed assets
var assets embed.FS

// The console's cookies. The session's are HttpOnly and SameSite=Strict;
// the language and time zone are preferences the page may set.
const (
	accessCookie  = "vigil_access"
	refreshCookie = "vigil_refresh"
	csrfCookie    = "vigil_csrf"
	langCookie    = "vigil_lang"
	tzCookie      = "vigil_tz"
	csrfField     = "csrf"
)

// Options are what the console needs from the gateway.
type Options struct {
	// Conn reaches the gateway's own gRPC listener (server.SelfConn), so
	// every call passes the same authentication, policy and audit as
	// any client's.
	Conn grpc.ClientConnInterface
	// ClientAddr is the vigil-client-addr metadata the gateway believes
	// for r (its nonce and the client's address), so that login
	// throttling counts the browser's address, not the gateway's own,
	// and the audit log records it.
	ClientAddr func(r *http.Request) string
	// Live feeds /events; Authenticate is the gateway's own check of a
	// token, whose Principal.Reaches is the API's team rule. Without
	// them /events answers 503 and the list is not live.
	Live         *Live
	Authenticate func(ctx context.Context, token string) (auth.Principal, error)
	// ViaTLS reports whether a request reached the gateway over TLS
	// although its own connection is plain (a trusted proxy's
	// X-Forwarded-Proto): its cookies are then Secure too.
	ViaTLS func(r *http.Request) bool
	Log    *slog.Logger
}

// Console serves the pages.
type Console struct {
	opts      Options
	auth      gatewayv1.AuthServiceClient
	incidents monitorv1.IncidentServiceClient
	pages     map[string]*template.Template
	static    map[string]asset
	mux       *http.ServeMux
	cop       *http.CrossOriginProtection
	guard     killState
}

// asset is an embedded static file, addressed by the hash of its
// content so that it can be cached for good.
type asset struct {
	body        []byte
	contentType string
	version     string
}

// New parses the embedded templates (a broken one fails here, not on a
// page view) and routes the pages.
func New(opts Options) (*Console, error) {
	c := &Console{
		opts: opts, auth: gatewayv1.NewAuthServiceClient(opts.Conn), incidents: monitorv1.NewIncidentServiceClient(opts.Conn),
		pages: map[string]*template.Template{}, static: map[string]asset{}, mux: http.NewServeMux(),
		cop: http.NewCrossOriginProtection(),
	}
	for name, ct := range map[string]string{"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"} {
		b, err := fs.ReadFile(assets, "assets/static/"+name)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		c.static[name] = asset{body: b, contentType: ct, version: hex.EncodeToString(sum[:6])}
	}
	funcs := template.FuncMap{
		"asset": func(name string) string { return "/static/" + name + "?v=" + c.static[name].version },
	}
	// Every file of assets/templates is a page (with the layout and the
	// shared parts of assets/templates/parts).
	names, err := fs.Glob(assets, "assets/templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, file := range names {
		page := strings.TrimSuffix(path.Base(file), ".html")
		if page == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).Funcs(pageFuncs(nil, nil)).ParseFS(assets, "assets/templates/layout.html", "assets/templates/parts/*.html", file)
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", page, err)
		}
		c.pages[page] = t
	}
	c.mux.HandleFunc("GET /static/{name}", c.serveStatic)
	c.mux.HandleFunc("GET /login", c.loginPage)
	c.mux.HandleFunc("POST /login", c.login)
	c.mux.HandleFunc("POST /logout", c.logout)
	c.mux.HandleFunc("GET /lang/{lang}", c.setLanguage)
	c.mux.HandleFunc("GET /{$}", c.incidentList)
	c.mux.HandleFunc("GET /incidents", c.incidentList)
	c.mux.HandleFunc("GET /events", c.events)
	// Each part of the console routes its own pages: one line per part.
	c.routeApps()
	c.routePeople()
	c.routeGuard()
	c.routeAdmin()
	c.routeAlerts()
	c.routeStory()
	c.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, nil, http.StatusNotFound, "error.notfound")
	})
	return c, nil
}

// ServeHTTP answers every console request with the security headers:
// no script but the console's own file, no framing, no referrer leaving.
// A state-changing request from another origin is refused before any
// handler runs (Sec-Fetch-Site, else Origin against Host).
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	if r.TLS == nil && c.opts.ViaTLS != nil && c.opts.ViaTLS(r) {
		r = r.WithContext(context.WithValue(r.Context(), viaTLS{}, true))
	}
	// Every call made for this request carries the browser's address
	// (signed with the gateway's nonce): login throttling counts it, and
	// the audit log records it rather than the gateway's own.
	if c.opts.ClientAddr != nil {
		if v := c.opts.ClientAddr(r); v != "" {
			r = r.WithContext(metadata.AppendToOutgoingContext(r.Context(), "vigil-client-addr", v))
		}
	}
	if err := c.cop.Check(r); err != nil {
		c.fail(w, r, nil, http.StatusForbidden, "error.csrf")
		return
	}
	c.mux.ServeHTTP(w, r)
}

func (c *Console) serveStatic(w http.ResponseWriter, r *http.Request) {
	a, ok := c.static[r.PathValue("name")]
	if !ok {
		c.fail(w, r, nil, http.StatusNotFound, "error.notfound")
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	// Pages name assets with their content hash (?v=): a new binary's
	// assets have new names, so these may be kept for good.
	if r.URL.Query().Get("v") == a.version {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.Header().Set("ETag", `"`+a.version+`"`)
	if r.Header.Get("If-None-Match") == `"`+a.version+`"` {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(a.body)
}

// session is the signed-in user of a request.
type session struct {
	access string
	user   *gatewayv1.User
	who    *gatewayv1.Principal
	// p is the gateway's own view of the token (Options.Authenticate):
	// what the policy checks. Zero without Authenticate: no buttons.
	p auth.Principal
}

// page is what every template gets.
type page struct {
	Lang      string
	Languages []string
	TZ        string
	CSRF      string
	Path      string
	// Done is what the last action did (a "done.*" word), shown once.
	Done      string
	User      *gatewayv1.User
	Principal *gatewayv1.Principal
	Data      any
	Status    int
	// Paused: the kill switch is on (the banner of every page).
	Paused bool
}

// errNoSession is a request without a usable session: to the login page.
var errNoSession = errors.New("no session")

// authenticate finds the request's session: the access token if it is
// still good, else a new one from the refresh token (the session's
// cookies are then renewed), else errNoSession.
func (c *Console) authenticate(w http.ResponseWriter, r *http.Request) (*session, error) {
	if a, err := r.Cookie(accessCookie); err == nil && a.Value != "" {
		res, err := c.auth.WhoAmI(withToken(r.Context(), a.Value), &gatewayv1.WhoAmIRequest{})
		if err == nil {
			return c.newSession(r, a.Value, res), nil
		}
		if status.Code(err) != codes.Unauthenticated {
			return nil, err
		}
	}
	rc, err := r.Cookie(refreshCookie)
	if err != nil || rc.Value == "" {
		return nil, errNoSession
	}
	res, err := c.auth.Refresh(r.Context(), &gatewayv1.RefreshRequest{RefreshToken: rc.Value})
	if status.Code(err) == codes.Unauthenticated {
		clearSession(w, r)
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	setSession(w, r, res.GetTokens())
	access := res.GetTokens().GetAccessToken()
	who, err := c.auth.WhoAmI(withToken(r.Context(), access), &gatewayv1.WhoAmIRequest{})
	if err != nil {
		return nil, err
	}
	return c.newSession(r, access, who), nil
}

func (c *Console) newSession(r *http.Request, access string, who *gatewayv1.WhoAmIResponse) *session {
	s := &session{access: access, user: who.GetUser(), who: who.GetPrincipal()}
	if c.opts.Authenticate != nil {
		if p, err := c.opts.Authenticate(r.Context(), access); err == nil {
			s.p = p
		}
	}
	return s
}

// can reports whether the session's user may call method (a full gRPC
// method name, "/vigil.repair.v1.RepairService/ApproveRepair") on what
// belongs to team, by the API's own policy: a page shows a button only
// to those the API would let through. The API still decides: a button
// shown is no permission.
func (s *session) can(method, team string) bool {
	if s == nil {
		return false
	}
	rule, ok := auth.Policy[method]
	if !ok || !s.p.Has(rule.Permission) {
		return false
	}
	return !rule.Team || s.p.Reaches(team)
}

// canForSomeTeam reports whether the session may call method on something of
// at least one team it reaches (can for one of them): whether to offer a
// "new" form, whose team the user chooses.
func (s *session) canForSomeTeam(method string) bool {
	if s == nil {
		return false
	}
	if s.can(method, "") {
		return true
	}
	return slices.ContainsFunc(s.p.Teams, func(team string) bool { return s.can(method, team) })
}

// withToken makes calls as the session's user.
func withToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// viaTLS marks a request that came over TLS to a proxy (Options.ViaTLS).
type viaTLS struct{}

// secure reports whether the browser reached Vigil over TLS: its cookies
// are then sent over TLS only.
func secure(r *http.Request) bool { return r.TLS != nil || r.Context().Value(viaTLS{}) != nil }

func cookie(r *http.Request, name, value string, expires time.Time) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: "/", Expires: expires,
		HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode,
	}
}

// setSession keeps the tokens in cookies that the browser drops when
// the tokens expire, so that an expired access token is not even sent.
func setSession(w http.ResponseWriter, r *http.Request, t *gatewayv1.Tokens) {
	http.SetCookie(w, cookie(r, accessCookie, t.GetAccessToken(), t.GetAccessExpireTime().AsTime()))
	http.SetCookie(w, cookie(r, refreshCookie, t.GetRefreshToken(), t.GetRefreshExpireTime().AsTime()))
}

func clearSession(w http.ResponseWriter, r *http.Request) {
	for _, name := range []string{accessCookie, refreshCookie} {
		c := cookie(r, name, "", time.Unix(0, 0))
		c.MaxAge = -1
		http.SetCookie(w, c)
	}
}

// csrfToken is the request's CSRF token: the random value of its
// HttpOnly, SameSite=Strict cookie, set here when absent. Forms carry it
// in a hidden field; a state-changing request passes only if field and
// cookie agree (double submit), after the cross-origin check of
// ServeHTTP. Login sets a new one, so a token planted before login is
// not the session's.
func csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	return newCSRF(w, r)
}

func newCSRF(w http.ResponseWriter, r *http.Request) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, cookie(r, csrfCookie, v, time.Time{}))
	// A later csrfToken in this request sees the new value.
	r.AddCookie(&http.Cookie{Name: csrfCookie, Value: v})
	return v
}

// csrfOK checks a posted form's token against the cookie.
func csrfOK(r *http.Request) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || c.Value == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue(csrfField))) == 1
}

// render writes a page with its layout.
func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, name string, code int, data any) {
	p := page{
		Lang: language(r), Languages: languages, TZ: zone(r).String(), CSRF: csrfToken(w, r),
		Path: r.URL.RequestURI(), Data: data, Status: code, Done: done(r),
	}
	if s != nil {
		p.User, p.Principal, p.Paused = s.user, s.who, c.paused(r.Context(), s)
	}
	t, err := c.pages[name].Clone()
	if err == nil {
		t.Funcs(pageFuncs(r, s))
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		err = t.ExecuteTemplate(w, "layout.html", p)
	}
	if err != nil {
		c.opts.Log.ErrorContext(r.Context(), "console page not rendered", "page", name, "error", err)
	}
}

// problem is the error page's data: a word of the catalogue, and the
// API's own explanation of a refused change (a field's error), if any.
type problem struct {
	Key    string
	Detail string
}

// fail answers an error page with the message of key.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, code int, key string) {
	c.render(w, r, s, "error", code, problem{Key: key})
}

// failCall answers what an API call's error means to the user.
func (c *Console) failCall(w http.ResponseWriter, r *http.Request, s *session, err error) {
	if code, p, ok := refusal(err); ok {
		c.render(w, r, s, "error", code, *p)
		return
	}
	st := status.Convert(err)
	switch st.Code() {
	case codes.ResourceExhausted:
		c.render(w, r, s, "error", http.StatusTooManyRequests, problem{Key: "error.throttled", Detail: st.Message()})
	case codes.NotFound:
		c.fail(w, r, s, http.StatusNotFound, "error.notfound")
	case codes.PermissionDenied:
		// A refused change says why (the permission or team it needs): the
		// user asked for it. A page stays terse.
		p := problem{Key: "error.forbidden"}
		if r.Method == http.MethodPost {
			p.Key, p.Detail = "error.refused", st.Message()
		}
		c.render(w, r, s, "error", http.StatusForbidden, p)
	case codes.Unauthenticated:
		toLogin(w, r)
	default:
		c.opts.Log.WarnContext(r.Context(), "console call failed", "path", r.URL.Path, "error", err)
		c.fail(w, r, s, http.StatusBadGateway, "error.unavailable")
	}
}

// toLogin sends the browser to log in, and back here afterwards.
func toLogin(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
}

// localPath is next if it is a path on this site, else /: a login link
// must not send the user elsewhere.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

// zone is the user's time zone: the cookie the page's script sets from
// the browser's, else UTC.
func zone(r *http.Request) *time.Location {
	if c, err := r.Cookie(tzCookie); err == nil && len(c.Value) <= 64 && c.Value != "" {
		if v, err := url.QueryUnescape(c.Value); err == nil {
			if loc, err := time.LoadLocation(v); err == nil {
				return loc
			}
		}
	}
	return time.UTC
}

// localTime is the layout of a datetime-local input: a wall-clock time
// without a zone, which is the user's (zone).
const localTime = "2006-01-02T15:04"

// pageFuncs are the template functions that depend on the request and
// its session (nil at parse time, when only their names matter).
func pageFuncs(r *http.Request, s *session) template.FuncMap {
	lang, loc := "en", time.UTC
	if r != nil {
		lang, loc = language(r), zone(r)
	}
	return template.FuncMap{
		"t": func(key string) string { return translate(lang, key) },
		// can: whether to show a button that calls method on what
		// belongs to team (session.can).
		"can": func(method, team string) bool { return s.can(method, team) },
		// here: whether the page is in the part of the console at
		// prefix ("/" only for the incidents), for the navigation.
		"here": func(prefix string) bool {
			if r == nil {
				return false
			}
			if prefix == "/" {
				return r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/incidents")
			}
			return r.URL.Path == prefix || strings.HasPrefix(r.URL.Path, prefix+"/")
		},
		"time": func(ts *timestamppb.Timestamp) string {
			if ts == nil || !ts.IsValid() || ts.AsTime().IsZero() {
				return "—"
			}
			return ts.AsTime().In(loc).Format("2006-01-02 15:04:05 MST")
		},
		"iso": func(ts *timestamppb.Timestamp) string {
			if ts == nil {
				return ""
			}
			return ts.AsTime().UTC().Format(time.RFC3339)
		},
	}
}
