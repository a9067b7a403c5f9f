package fakeslack

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Defaults used when Options leaves them empty.
const (
	DefaultBotToken      = "xoxb-1000000000-2000000000-VigilFakeBotToken01"
	DefaultSigningSecret = "8f742231b10e8888abcd99yyyzzz85a5"
	DefaultTeamID        = "T0VIGIL01"
	DefaultAppID         = "A0VIGIL01"
	// DefaultVerificationToken is the deprecated verification token sent
	// in interaction payloads; apps should verify signatures instead.
	DefaultVerificationToken = "FakeVerificationToken0001"
)

// The bot's identity, as it appears on its messages.
const (
	botUserID = "U0VIGILBOT"
	botID     = "B0VIGILBOT"
)

// Options configures a Server.
type Options struct {
	// BotToken is the token requests must carry; DefaultBotToken if empty.
	// It must be a bot token (xoxb-).
	BotToken string
	// SigningSecret signs interactions; DefaultSigningSecret if empty.
	SigningSecret string
	// Channels the bot can post to. Any other channel gets
	// "channel_not_found".
	Channels []Channel
	// TeamID is the workspace; DefaultTeamID if empty.
	TeamID string
	// AppID is the app's api_app_id; DefaultAppID if empty.
	AppID string
	// InteractivityURL is where Press posts interactions, the app's
	// Interactivity Request URL; it can also be set later with
	// SetInteractivityURL, once the app listens.
	InteractivityURL string
	// Scopes are the bot token's scopes, which the read methods check
	// (conversations.history: channels:history for a public channel,
	// groups:history for a private one, im:history for a direct
	// message); DefaultScopes if nil.
	Scopes []string
	// Client posts interactions; a default client if nil. Pass an httptest
	// TLS server's Client() for an HTTPS app.
	Client *http.Client
}

// Channel is a conversation the bot is a member of.
type Channel struct {
	// ID is the channel's id, "C" (public), "G" (private) or "D" (direct
	// message) and upper-case letters and digits.
	ID string
	// Name is the channel's name without '#', empty for a direct message;
	// chat.postMessage accepts "#name" and "name" too.
	Name string
}

var channelIDPattern = regexp.MustCompile(`^[CGD][A-Z0-9]{2,}$`)

// Request is one Web API call the fake answered.
type Request struct {
	// Method is the API method from the path ("chat.postMessage").
	Method     string
	StatusCode int
	// Error is the ok:false error code sent back, empty on success.
	Error string
}

// Server is a fake of Slack's Web API and interactivity. It is safe for
// concurrent use.
type Server struct {
	srv  *httptest.Server
	opts Options

	mu           sync.Mutex
	faults       []fault
	requests     []Request
	messages     []Message
	lastTS       time.Time
	interactions []Interaction
	responses    []ResponsePost
	responseURLs map[string]*responseURL // by token
	lastTrigger  int
	changed      chan struct{} // closed and replaced whenever the state changes
}

type fault struct {
	status     int
	retryAfter int // for 429
	// garble: the call is handled, its answer cut short.
	garble bool
}

// New starts a Server that is closed when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.BotToken == "" {
		opts.BotToken = DefaultBotToken
	}
	if !strings.HasPrefix(opts.BotToken, "xoxb-") {
		t.Fatal("fakeslack: BotToken: want a bot token, xoxb-...")
		return nil
	}
	if opts.SigningSecret == "" {
		opts.SigningSecret = DefaultSigningSecret
	}
	if opts.TeamID == "" {
		opts.TeamID = DefaultTeamID
	}
	if opts.AppID == "" {
		opts.AppID = DefaultAppID
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	if opts.Scopes == nil {
		opts.Scopes = DefaultScopes
	}
	for i, c := range opts.Channels {
		if !channelIDPattern.MatchString(c.ID) {
			t.Fatalf("fakeslack: Channels[%d]: ID %q: want C, G or D and upper-case letters and digits", i, c.ID)
			return nil
		}
	}
	opts.Channels = append([]Channel(nil), opts.Channels...)
	s := &Server{opts: opts, responseURLs: make(map[string]*responseURL), changed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", s.serveAPI)
	mux.HandleFunc("POST /actions/{team}/{id}/{token}", s.serveResponseURL)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the server's base URL, in place of https://slack.com.
func (s *Server) URL() string { return s.srv.URL }

// ResponseURLBase is where the fake's response_urls are, in place of
// https://hooks.slack.com/.
func (s *Server) ResponseURLBase() string { return s.srv.URL + "/" }

// APIURL is the Web API's base URL, in place of https://slack.com/api/
// (slack-go's OptionAPIURL takes it as is).
func (s *Server) APIURL() string { return s.srv.URL + "/api/" }

// BotToken is the token the server expects.
func (s *Server) BotToken() string { return s.opts.BotToken }

// SigningSecret is the secret interactions are signed with.
func (s *Server) SigningSecret() string { return s.opts.SigningSecret }

// SetInteractivityURL sets where Press posts interactions.
func (s *Server) SetInteractivityURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.InteractivityURL = u
}

// FailNext makes the next n Web API calls fail with the HTTP status (4xx
// or 5xx) and a plain-text body, as from a proxy in front of Slack.
func (s *Server) FailNext(n, status int) {
	if status < 400 || status > 599 {
		panic(fmt.Sprintf("fakeslack: FailNext: status %d: want 4xx or 5xx", status))
	}
	s.addFaults(n, fault{status: status})
}

// RateLimitNext makes the next n Web API calls fail with 429 Too Many
// Requests, a Retry-After header of retryAfter seconds and ok:false
// "ratelimited", as Slack answers.
func (s *Server) RateLimitNext(n, retryAfter int) {
	s.addFaults(n, fault{status: http.StatusTooManyRequests, retryAfter: retryAfter})
}

// GarbleNext makes the next n Web API calls be handled as usual -- a
// message posted is posted -- and answered 200 with a body cut short, as
// by a proxy that dropped the connection midway: the client cannot tell
// what came of them.
func (s *Server) GarbleNext(n int) { s.addFaults(n, fault{garble: true}) }

func (s *Server) addFaults(n int, f fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, f)
	}
}

// Requests returns every Web API call answered so far, failed ones
// included.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// result is an answer to a Web API call: the fields of the JSON object
// besides "ok", or an error code with the messages that explain it.
type result struct {
	fields   map[string]any
	err      string
	messages []string // response_metadata.messages, with an error
}

func failed(code string, messages ...string) result { return result{err: code, messages: messages} }

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	f, faulty := s.takeFault()
	if faulty && !f.garble {
		s.writeFault(w, f)
		s.logRequest(method, f.status, faultError(f))
		return
	}
	var handler func(args) result
	switch method {
	case "chat.postMessage":
		handler = s.postMessage
	case "chat.update":
		handler = s.update
	case "auth.test":
		handler = s.authTest
	case "conversations.history":
		handler = s.history(false)
	case "conversations.replies":
		handler = s.history(true)
	default:
		s.write(w, http.StatusNotFound, failed("unknown_method"), "")
		s.logRequest(method, http.StatusNotFound, "unknown_method")
		return
	}
	a, token, warning, errCode := readArgs(r)
	if strings.HasPrefix(method, "conversations.") && strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		// The read methods take a query or a form: Slack ignores a JSON
		// body's arguments.
		a = args{}
		for k, v := range r.URL.Query() {
			a[k] = v[0]
		}
	}
	res := failed(errCode)
	switch {
	case errCode != "":
	case token == "":
		res = failed("not_authed")
	case token != s.opts.BotToken:
		res = failed("invalid_auth")
	default:
		res = handler(a)
	}
	if faulty {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = io.WriteString(w, `{"ok":true,"chan`)
		s.logRequest(method, http.StatusOK, "garbled")
		return
	}
	s.write(w, http.StatusOK, res, warning)
	s.logRequest(method, http.StatusOK, res.err)
}

func (s *Server) takeFault() (fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) == 0 {
		return fault{}, false
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	return f, true
}

func (s *Server) logRequest(method string, status int, errCode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{Method: method, StatusCode: status, Error: errCode})
}

func (s *Server) write(w http.ResponseWriter, status int, res result, warning string) {
	body := map[string]any{"ok": res.err == ""}
	for k, v := range res.fields {
		body[k] = v
	}
	metadata := map[string]any{}
	if res.err != "" {
		body["error"] = res.err
		if len(res.messages) > 0 {
			metadata["messages"] = res.messages
		}
	}
	if warning != "" {
		body["warning"] = warning
		metadata["warnings"] = []string{warning}
	}
	if len(metadata) > 0 {
		body["response_metadata"] = metadata
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Server) writeFault(w http.ResponseWriter, f fault) {
	if f.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(f.retryAfter))
		s.write(w, f.status, failed("ratelimited"), "")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(f.status)
	_, _ = fmt.Fprintf(w, "%d %s\n", f.status, http.StatusText(f.status))
}

func faultError(f fault) string {
	if f.status == http.StatusTooManyRequests {
		return "ratelimited"
	}
	return http.StatusText(f.status)
}

// notifyLocked wakes everyone waiting for a change. Called with s.mu held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// channel finds a configured channel by id, "#name" or name.
func (s *Server) channel(ref string) (Channel, bool) {
	name := strings.TrimPrefix(ref, "#")
	for _, c := range s.opts.Channels {
		if c.ID == ref || (c.Name != "" && c.Name == name) {
			return c, true
		}
	}
	return Channel{}, false
}

func (s *Server) authTest(args) result {
	return result{fields: map[string]any{
		"url": "https://vigil-test.slack.com/", "team": "Vigil Test", "user": "vigil",
		"team_id": s.opts.TeamID, "user_id": botUserID, "bot_id": botID, "is_enterprise_install": false,
	}}
}
