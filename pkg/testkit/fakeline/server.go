package fakeline

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Defaults used when Options leaves them empty.
const (
	DefaultToken         = "VigilFakeLineChannelAccessToken0001+/aBcDeFgHiJkLmNoPqRsTuVwXyZ="
	DefaultChannelSecret = "8f742231b10e8888abcd99yyyzzz85a5"
)

// Options configures a Server.
type Options struct {
	// Token is the channel access token pushes must carry; DefaultToken
	// if empty.
	Token string
	// ChannelSecret signs webhook events; DefaultChannelSecret if empty.
	ChannelSecret string
	// To are the users (U...), groups (C...) and rooms (R...) the bot can
	// push to.
	To []string
}

// Message is a message the bot pushed.
type Message struct {
	// ID is the message's id, as in the push's answer.
	ID string
	To string
	// Type is "text" or "flex".
	Type string
	Text string
	// AltText and Contents (the bubble, as JSON) are a Flex message's.
	AltText  string
	Contents json.RawMessage
	// RetryKey is the push's X-Line-Retry-Key, empty for none.
	RetryKey string
}

// Request is one push the fake answered.
type Request struct {
	StatusCode int
	RetryKey   string
	// Message is LINE's error message, empty on success.
	Message string
}

// Server is a fake of the LINE Messaging API. It is safe for concurrent
// use.
type Server struct {
	srv  *httptest.Server
	opts Options

	mu       sync.Mutex
	faults   []fault
	requests []Request
	messages []Message
	keys     map[string]string // retry key -> the request id that accepted it
	lastID   int64
	changed  chan struct{} // closed and replaced whenever a message is sent
	// replyTokens are the tokens of the events made, by token.
	replyTokens map[string]*replyToken
	replies     []Reply
	// age is how far the reply tokens' clock is ahead (AgeReplyTokens).
	age time.Duration
}

type replyToken struct {
	issued time.Time
	to     string
	used   bool
}

// Reply is a reply the bot made to an event.
type Reply struct {
	Token string
	// To is who the event was from.
	To       string
	Messages []Message
}

type fault struct {
	status  int
	message string
}

// New starts a Server that is closed when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Token == "" {
		opts.Token = DefaultToken
	}
	if opts.ChannelSecret == "" {
		opts.ChannelSecret = DefaultChannelSecret
	}
	for i, to := range opts.To {
		if !recipient(to) {
			t.Fatalf("fakeline: To[%d]: %q: want U, C or R and 32 hex digits", i, to)
			return nil
		}
	}
	opts.To = slices.Clone(opts.To)
	s := &Server{
		opts: opts, keys: map[string]string{}, lastID: 500000000000000000, changed: make(chan struct{}),
		replyTokens: map[string]*replyToken{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/bot/message/push", s.push)
	mux.HandleFunc("POST /v2/bot/message/reply", s.reply)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

// recipient reports whether id looks like a LINE user, group or room id.
func recipient(id string) bool {
	if len(id) != 33 || (id[0] != 'U' && id[0] != 'C' && id[0] != 'R') {
		return false
	}
	for _, c := range id[1:] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// URL is the API's base URL, in place of https://api.line.me.
func (s *Server) URL() string { return s.srv.URL }

// Token is the channel access token the server expects.
func (s *Server) Token() string { return s.opts.Token }

// ChannelSecret is the secret webhook events are signed with.
func (s *Server) ChannelSecret() string { return s.opts.ChannelSecret }

// RateLimitNext makes the next n pushes fail with 429, as LINE answers
// past its rate limit: no Retry-After.
func (s *Server) RateLimitNext(n int) {
	s.addFaults(n, fault{status: http.StatusTooManyRequests, message: "The API rate limit has been exceeded. Try again later."})
}

// QuotaExceededNext makes the next n pushes fail with the 429 LINE sends
// once the month's messages are used up.
func (s *Server) QuotaExceededNext(n int) {
	s.addFaults(n, fault{status: http.StatusTooManyRequests, message: "You have reached your monthly limit."})
}

// FailNext makes the next n pushes fail with the HTTP status (4xx or
// 5xx) and a plain-text body, as from a proxy in front of LINE.
func (s *Server) FailNext(n, status int) {
	if status < 400 || status > 599 {
		panic(fmt.Sprintf("fakeline: FailNext: status %d: want 4xx or 5xx", status))
	}
	s.addFaults(n, fault{status: status})
}

func (s *Server) addFaults(n int, f fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, f)
	}
}

// Messages returns every message sent so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.messages)
}

// Requests returns every push answered so far, failed ones included.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// WaitForMessages waits until at least n messages were sent and returns
// them all; the test fails after timeout.
func (s *Server) WaitForMessages(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	return waitFor(t, s, n, timeout, "messages", func() []Message { return s.messages })
}

// waitFor waits until what got (read under s.mu) holds at least n
// things, and returns a copy of them; the test fails after timeout.
func waitFor[T any](t testing.TB, s *Server, n int, timeout time.Duration, what string, got func() []T) []T {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		all, changed := slices.Clone(got()), s.changed
		s.mu.Unlock()
		if len(all) >= n {
			return all
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("fakeline: %d %s after %s, want %d", len(all), what, timeout, n)
			return nil
		}
	}
}

// Replies returns every reply made so far, oldest first.
func (s *Server) Replies() []Reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.replies)
}

// WaitForReplies waits until at least n replies were made and returns
// them all; the test fails after timeout.
func (s *Server) WaitForReplies(t testing.TB, n int, timeout time.Duration) []Reply {
	t.Helper()
	return waitFor(t, s, n, timeout, "replies", func() []Reply { return s.replies })
}

// AgeReplyTokens moves the reply tokens' clock d ahead: a token older
// than ReplyTokenTTL is refused.
func (s *Server) AgeReplyTokens(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.age += d
}

// now is the reply tokens' clock; s.mu held or not needed.
func (s *Server) now() time.Time { return time.Now().Add(s.age) }

// reply answers POST /v2/bot/message/reply: a reply token works once,
// within ReplyTokenTTL of its event, and LINE says no more than "Invalid
// reply token" about one that does not.
func (s *Server) reply(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+s.opts.Token {
		writeJSON(w, http.StatusUnauthorized, apiError{Message: "Authentication failed. Confirm that the access token in the authorization header is valid."})
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, apiError{Message: "The request body must be JSON (Content-Type: application/json)"})
		return
	}
	var req struct {
		ReplyToken string            `json:"replyToken"`
		Messages   []json.RawMessage `json:"messages"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 2<<20)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Message: "The request body has 1 error(s)", Details: []detail{{Message: "Invalid JSON"}}})
		return
	}
	if len(req.Messages) < 1 || len(req.Messages) > 5 {
		writeJSON(w, http.StatusBadRequest, apiError{Message: "The request body has 1 error(s)", Details: []detail{{Message: "Size must be between 1 and 5", Property: "messages"}}})
		return
	}
	msgs := make([]Message, 0, len(req.Messages))
	var details []detail
	for i, raw := range req.Messages {
		m, ds := parseMessage(raw, "messages["+strconv.Itoa(i)+"]")
		details = append(details, ds...)
		msgs = append(msgs, m)
	}
	if len(details) > 0 {
		writeJSON(w, http.StatusBadRequest, apiError{Message: fmt.Sprintf("The request body has %d error(s)", len(details)), Details: details})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tok, ok := s.replyTokens[req.ReplyToken]
	if !ok || tok.used || s.now().Sub(tok.issued) > ReplyTokenTTL {
		writeJSON(w, http.StatusBadRequest, apiError{Message: "Invalid reply token"})
		return
	}
	tok.used = true
	for i := range msgs {
		s.lastID++
		msgs[i].ID, msgs[i].To = strconv.FormatInt(s.lastID, 10), tok.to
	}
	s.replies = append(s.replies, Reply{Token: req.ReplyToken, To: tok.to, Messages: msgs})
	close(s.changed)
	s.changed = make(chan struct{})
	writeJSON(w, http.StatusOK, map[string]any{"sentMessages": []any{}})
}

// apiError is LINE's error body.
type apiError struct {
	Message string   `json:"message"`
	Details []detail `json:"details,omitempty"`
}

type detail struct {
	Message  string `json:"message"`
	Property string `json:"property"`
}

func (s *Server) push(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("X-Line-Retry-Key")
	status, e, written := s.answer(w, r, key)
	s.mu.Lock()
	s.requests = append(s.requests, Request{StatusCode: status, RetryKey: key, Message: e.Message})
	s.mu.Unlock()
	if !written {
		writeJSON(w, status, e)
	}
}

// answer handles a push and returns its status and error; written: it
// wrote the answer itself (a success, a proxy's page).
func (s *Server) answer(w http.ResponseWriter, r *http.Request, key string) (status int, _ apiError, written bool) {
	if f, ok := s.takeFault(); ok {
		if f.message == "" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(f.status)
			_, _ = fmt.Fprintf(w, "%d %s\n", f.status, http.StatusText(f.status))
			return f.status, apiError{Message: http.StatusText(f.status)}, true
		}
		return f.status, apiError{Message: f.message}, false
	}
	if r.Header.Get("Authorization") != "Bearer "+s.opts.Token {
		return http.StatusUnauthorized, apiError{Message: "Authentication failed. Confirm that the access token in the authorization header is valid."}, false
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return http.StatusUnsupportedMediaType, apiError{Message: "The request body must be JSON (Content-Type: application/json)"}, false
	}
	if key != "" {
		if _, err := uuid.Parse(key); err != nil {
			return http.StatusBadRequest, apiError{Message: "The value of the X-Line-Retry-Key header is invalid"}, false
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 2<<20))
	if err != nil {
		return http.StatusBadRequest, apiError{Message: "The request body could not be read"}, false
	}
	var req struct {
		To       string            `json:"to"`
		Messages []json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return http.StatusBadRequest, apiError{Message: "The request body has 1 error(s)", Details: []detail{{Message: "Invalid JSON", Property: ""}}}, false
	}
	if !slices.Contains(s.opts.To, req.To) {
		return http.StatusBadRequest, apiError{Message: "The property, 'to', in the request body is invalid (line: -, column: -)"}, false
	}
	if len(req.Messages) < 1 || len(req.Messages) > 5 {
		return http.StatusBadRequest, apiError{
			Message: "The request body has 1 error(s)",
			Details: []detail{{Message: "Size must be between 1 and 5", Property: "messages"}},
		}, false
	}
	msgs := make([]Message, 0, len(req.Messages))
	var details []detail
	for i, raw := range req.Messages {
		m, ds := parseMessage(raw, "messages["+strconv.Itoa(i)+"]")
		details = append(details, ds...)
		m.To, m.RetryKey = req.To, key
		msgs = append(msgs, m)
	}
	if len(details) > 0 {
		return http.StatusBadRequest, apiError{Message: fmt.Sprintf("The request body has %d error(s)", len(details)), Details: details}, false
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if accepted, ok := s.keys[key]; ok && key != "" {
		w.Header().Set("X-Line-Accepted-Request-Id", accepted)
		return http.StatusConflict, apiError{Message: "The retry key is already accepted"}, false
	}
	requestID := uuid.NewString()
	if key != "" {
		s.keys[key] = requestID
	}
	sent := make([]map[string]string, 0, len(msgs))
	for _, m := range msgs {
		s.lastID++
		m.ID = strconv.FormatInt(s.lastID, 10)
		s.messages = append(s.messages, m)
		sent = append(sent, map[string]string{"id": m.ID, "quoteToken": "q" + m.ID})
	}
	close(s.changed)
	s.changed = make(chan struct{})
	w.Header().Set("X-Line-Request-Id", requestID)
	writeJSON(w, http.StatusOK, map[string]any{"sentMessages": sent})
	return http.StatusOK, apiError{}, true
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

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
