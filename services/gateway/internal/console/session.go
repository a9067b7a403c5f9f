package console

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
)

// loginForm is the login page's data.
type loginForm struct {
	Username string
	Next     string
	Error    string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, nil, "login", http.StatusOK, loginForm{Next: localPath(r.URL.Query().Get("next"))})
}

// login signs in through AuthService.Login, as `vigil login` does: the
// same users, sessions and throttling (by the browser's address).
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if !csrfOK(r) {
		c.fail(w, r, nil, http.StatusForbidden, "error.csrf")
		return
	}
	form := loginForm{Username: r.PostFormValue("username"), Next: localPath(r.PostFormValue("next"))}
	res, err := c.auth.Login(r.Context(), &gatewayv1.LoginRequest{Username: form.Username, Password: r.PostFormValue("password")})
	if err != nil {
		code := http.StatusUnauthorized
		switch status.Code(err) {
		case codes.Unauthenticated, codes.InvalidArgument:
			form.Error = "login.failed"
		case codes.ResourceExhausted:
			code, form.Error = http.StatusTooManyRequests, "login.throttled"
		default:
			c.opts.Log.WarnContext(r.Context(), "console login failed", "error", err)
			code, form.Error = http.StatusServiceUnavailable, "login.unavailable"
		}
		c.render(w, r, nil, "login", code, form)
		return
	}
	setSession(w, r, res.GetTokens())
	newCSRF(w, r)
	http.Redirect(w, r, form.Next, http.StatusSeeOther)
}

// logout ends the session on the server (AuthService.Logout revokes it),
// not only in the browser.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if !csrfOK(r) {
		c.fail(w, r, nil, http.StatusForbidden, "error.csrf")
		return
	}
	if rc, err := r.Cookie(refreshCookie); err == nil && rc.Value != "" {
		_, err := c.auth.Logout(r.Context(), &gatewayv1.LogoutRequest{RefreshToken: rc.Value})
		if err != nil && status.Code(err) != codes.Unauthenticated {
			// The session may still be alive: say so rather than
			// pretend the user is out.
			c.failCall(w, r, nil, err)
			return
		}
	}
	clearSession(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// setLanguage keeps the chosen language in a cookie and goes back to the
// page (a preference, not a state of Vigil: a link may change it).
func (c *Console) setLanguage(w http.ResponseWriter, r *http.Request) {
	lang := r.PathValue("lang")
	if !slices.Contains(languages, lang) {
		c.fail(w, r, nil, http.StatusNotFound, "error.notfound")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: langCookie, Value: lang, Path: "/", Expires: time.Now().AddDate(1, 0, 0),
		Secure: secure(r), SameSite: http.SameSiteLaxMode, HttpOnly: true,
	})
	http.Redirect(w, r, localPath(r.URL.Query().Get("back")), http.StatusSeeOther)
}

// signedIn runs a page for a signed-in user, or sends the browser to log in.
func (c *Console) signedIn(w http.ResponseWriter, r *http.Request) (*session, bool) {
	s, err := c.authenticate(w, r)
	if errors.Is(err, errNoSession) {
		toLogin(w, r)
		return nil, false
	}
	if err != nil {
		c.failCall(w, r, nil, err)
		return nil, false
	}
	return s, true
}
