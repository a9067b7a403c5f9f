package browser

import (
	"bufio"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Client is a user agent on the console without a browser: a cookie jar,
// redirects not followed (a test looks at each answer). For what a page
// answers — codes, headers, cookies, a refused POST — where a real
// browser would hide it.
type Client struct {
	t    testing.TB
	base string
	jar  *cookiejar.Jar
	c    *http.Client
	// Lang, when set, is sent as Accept-Language.
	Lang string
}

// NewClient is a client of the console at base ("http://host:port").
func NewClient(t testing.TB, base string) *Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &Client{t: t, base: base, jar: jar, c: &http.Client{
		Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Page is an answer of the console.
type Page struct {
	Code   int
	Header http.Header
	Body   string
	// Set are the cookies the answer set.
	Set []*http.Cookie
}

// Do sends a request; form, when not nil, is its urlencoded body; header
// is name, value pairs.
func (b *Client) Do(method, path string, form url.Values, header ...string) Page {
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
	if b.Lang != "" {
		req.Header.Set("Accept-Language", b.Lang)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.c.Do(req)
	require.NoError(b.t, err)
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return Page{Code: resp.StatusCode, Header: resp.Header, Body: string(raw), Set: resp.Cookies()}
}

// Get is a GET of path.
func (b *Client) Get(path string) Page { b.t.Helper(); return b.Do(http.MethodGet, path, nil) }

// Post submits form to path as a page's form does: with the CSRF token
// of the browser's cookie (the double-submit value every form carries).
func (b *Client) Post(path string, form url.Values) Page {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if !form.Has("csrf") {
		form.Set("csrf", b.Cookie("vigil_csrf"))
	}
	return b.Do(http.MethodPost, path, form)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// CSRF is the token of the forms of p.
func (b *Client) CSRF(p Page) string {
	b.t.Helper()
	m := csrfRE.FindStringSubmatch(p.Body)
	require.NotNil(b.t, m, "no CSRF field in %s", p.Body)
	return m[1]
}

// Cookie is the jar's value of name ("" when none).
func (b *Client) Cookie(name string) string {
	u, _ := url.Parse(b.base)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// Drop forgets a cookie, as the browser does when it expires.
func (b *Client) Drop(name string) {
	u, _ := url.Parse(b.base)
	b.jar.SetCookies(u, []*http.Cookie{{Name: name, Value: "", Path: "/", MaxAge: -1}})
}

// Login logs in through the login page's form and answers the login's
// answer (303 to / on success).
func (b *Client) Login(user, password string) Page {
	b.t.Helper()
	lp := b.Get("/login")
	require.Equal(b.t, http.StatusOK, lp.Code)
	return b.Do(http.MethodPost, "/login", url.Values{"csrf": {b.CSRF(lp)}, "username": {user}, "password": {password}, "next": {"/"}})
}

// Event is one server-sent event: its name and data.
type Event struct{ Name, Data string }

// Stream is a client's server-sent event stream (/events), event by
// event; C is closed when the stream ends.
type Stream struct {
	C <-chan Event
}

// Events opens the stream at path with the client's cookies; it is
// closed when the test ends.
func (b *Client) Events(path string) *Stream {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.t.Context(), http.MethodGet, b.base+path, nil)
	require.NoError(b.t, err)
	if b.Lang != "" {
		req.Header.Set("Accept-Language", b.Lang)
	}
	resp, err := b.c.Do(req)
	require.NoError(b.t, err)
	b.t.Cleanup(func() { _ = resp.Body.Close() })
	require.Equal(b.t, http.StatusOK, resp.StatusCode)
	require.Equal(b.t, "text/event-stream", resp.Header.Get("Content-Type"))
	c := make(chan Event, 256)
	go func() {
		defer close(c)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var name string
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if name != "" {
					c <- Event{Name: name, Data: strings.Join(data, "\n")}
				}
				name, data = "", nil
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data:"):
				data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
			}
		}
	}()
	return &Stream{C: c}
}

// Until returns the events up to the first one ok accepts, calling
// publish again every 200 ms until it comes (a subscription feeding the
// stream may not be in place at the first publish).
func (s *Stream) Until(t testing.TB, publish func(), ok func(Event) bool) []Event {
	t.Helper()
	var seen []Event
	publish()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev, open := <-s.C:
			require.True(t, open, "the stream ended; seen %v", seen)
			seen = append(seen, ev)
			if ok(ev) {
				return seen
			}
		case <-tick.C:
			publish()
		case <-deadline:
			t.Fatalf("no such event; seen %v", seen)
		}
	}
}
