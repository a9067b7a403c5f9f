// Package fakellm is a fake of the LLM APIs Vigil's analysis calls, one
// server that speaks all four on their own paths: Ollama (POST /api/chat),
// OpenAI and compatible endpoints (POST /v1/chat/completions), Anthropic
// (POST /v1/messages) and Gemini (POST /v1beta/models/{model}:generateContent).
//
// It is strict on purpose, like the real services: it refuses a missing
// or wrong key with each API's status and error body, an unknown model,
// and a request without the fields structured output needs (the schema
// where each API wants it, stream false, max_tokens for Anthropic,
// OpenAI's strict-mode schema rules, Gemini's Schema dialect). Tests
// queue what the model answers (Reply): a JSON answer, a 429 with
// Retry-After, a 500, a truncated or non-JSON body, an answer cut at the
// token limit, or a stall until the client gives up. Every request is
// recorded, with the system and user text pulled out, so tests can assert
// on what left the house.
package fakellm

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Provider names, as in Request.Provider.
const (
	Ollama    = "ollama"
	OpenAI    = "openai"
	Anthropic = "anthropic"
	Gemini    = "gemini"
)

// Defaults used when Options leaves them empty.
const (
	DefaultAPIKey = "test-key-0123456789"
	DefaultModel  = "vigil-test-model"
)

// Options configures a Server.
type Options struct {
	// APIKey is the key OpenAI, Anthropic and Gemini requests must carry;
	// DefaultAPIKey if empty.
	APIKey string
	// OllamaKey, when set, is a bearer token Ollama requests must carry
	// (an Ollama behind an authenticating proxy); by default Ollama takes
	// no credentials, as it does locally.
	OllamaKey string
	// Model is the only model served; DefaultModel if empty.
	Model string
}

// Reply is what the fake answers to one request.
type Reply struct {
	// Answer is the model's output: the JSON text of the answer (for
	// Anthropic, the tool call's input, which must then be a JSON object).
	Answer string
	// Status, when not 0 or 200, answers with that status and the API's
	// error body instead.
	Status int
	// RetryAfter is sent as Retry-After (seconds) with a 429 or 5xx; for
	// Gemini as the RetryInfo detail too.
	RetryAfter time.Duration
	// Truncated sends half of the body and breaks the connection.
	Truncated bool
	// NonJSON answers 200 with an HTML page, as a proxy might.
	NonJSON bool
	// MaxTokens reports that the model stopped at the token limit
	// (finish/stop reason "length", "max_tokens", "MAX_TOKENS").
	MaxTokens bool
	// Stall waits until the client gives up (its context ends) or the
	// server closes, without answering.
	Stall bool
	// InputTokens and OutputTokens are the usage reported; 1000 and 200
	// if zero.
	InputTokens, OutputTokens int
}

// Request is one request the fake received.
type Request struct {
	Provider string
	Path     string
	Header   http.Header
	// Body is the raw request body.
	Body []byte
	// Model as requested; System and User the instructions and the user
	// messages' text as the API carried them; Schema the answer's schema
	// where that API takes it.
	Model, System, User string
	Schema              json.RawMessage
	// Status is what the fake answered.
	Status int
}

// Server is the fake. It is safe for concurrent use.
type Server struct {
	srv    *httptest.Server
	apiKey string
	ollKey string
	model  string
	done   chan struct{}

	mu       sync.Mutex
	replies  []Reply
	fallback Reply
	requests []Request
}

// New starts a Server, closed when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{apiKey: opts.APIKey, ollKey: opts.OllamaKey, model: opts.Model, done: make(chan struct{})}
	if s.apiKey == "" {
		s.apiKey = DefaultAPIKey
	}
	if s.model == "" {
		s.model = DefaultModel
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/chat", s.serve(Ollama, s.ollama))
	mux.HandleFunc("/v1/chat/completions", s.serve(OpenAI, s.openai))
	mux.HandleFunc("/v1/messages", s.serve(Anthropic, s.anthropic))
	mux.HandleFunc("/v1beta/models/", s.serve(Gemini, s.gemini))
	s.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		close(s.done)
		s.srv.Close()
	})
	return s
}

// URL is the server's base URL (http://127.0.0.1:port), without a path.
func (s *Server) URL() string { return s.srv.URL }

// APIKey is the key the server expects.
func (s *Server) APIKey() string { return s.apiKey }

// Model is the model the server serves.
func (s *Server) Model() string { return s.model }

// Reply queues replies, used one per request in order; when the queue is
// empty the last one given to Always (or an error) answers.
func (s *Server) Reply(r ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replies = append(s.replies, r...)
}

// Always sets the reply used when the queue is empty.
func (s *Server) Always(r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fallback = r
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

func (s *Server) next() Reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.replies) > 0 {
		r := s.replies[0]
		s.replies = s.replies[1:]
		return r
	}
	return s.fallback
}

// apiError is a refusal in a provider's words.
type apiError struct {
	status int
	body   any
	header http.Header
}

// handler validates a request of one API; it returns what it read, or the
// API's refusal. The answer is written by the provider's reply function.
type handler func(w http.ResponseWriter, r *http.Request, req *Request, body map[string]any) (reply func(Reply) (int, any), refusal *apiError)

const maxBody = 8 << 20

func (s *Server) serve(provider string, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req := Request{Provider: provider, Path: r.URL.Path, Header: r.Header.Clone()}
		status := s.handle(w, r, &req, h)
		req.Status = status
		s.mu.Lock()
		s.requests = append(s.requests, req)
		s.mu.Unlock()
	}
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request, req *Request, h handler) int {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return http.StatusMethodNotAllowed
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return http.StatusBadRequest
	}
	req.Body = raw
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		body = nil
	}
	reply, refusal := h(w, r, req, body)
	if refusal != nil {
		writeJSON(w, refusal.status, refusal.header, refusal.body)
		return refusal.status
	}
	rep := s.next()
	switch {
	case rep.Stall:
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return 0
	case rep.NonJSON:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "<html><body><h1>200 OK</h1>upstream says hello</body></html>")
		return http.StatusOK
	}
	if rep.InputTokens == 0 {
		rep.InputTokens = 1000
	}
	if rep.OutputTokens == 0 {
		rep.OutputTokens = 200
	}
	status, out := reply(rep)
	var header http.Header
	// Gemini says when to retry in a RetryInfo detail, not a header.
	if rep.RetryAfter > 0 && req.Provider != Gemini && (status == http.StatusTooManyRequests || status >= 500) {
		header = http.Header{"Retry-After": {fmt.Sprint(int((rep.RetryAfter + time.Second - 1) / time.Second))}}
	}
	if rep.Truncated {
		b, _ := json.Marshal(out)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.WriteHeader(status)
		_, _ = w.Write(b[:len(b)/2])
		// Break the connection: the client sees an unexpected EOF.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
			}
		}
		return status
	}
	writeJSON(w, status, header, out)
	return status
}

func writeJSON(w http.ResponseWriter, status int, header http.Header, v any) {
	for k, vs := range header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// answerObject parses an Answer as a JSON object, for APIs that carry it
// as one (Anthropic's tool input).
func answerObject(answer string) (map[string]any, error) {
	var v map[string]any
	if err := json.Unmarshal([]byte(answer), &v); err != nil {
		return nil, fmt.Errorf("fakellm: Reply.Answer must be a JSON object for this API: %w", err)
	}
	return v, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// messagesText joins the text of chat messages by role: system ones and
// the others.
func messagesText(msgs []any) (system, user string) {
	var sys, usr []string
	for _, m := range msgs {
		mm, _ := m.(map[string]any)
		text := contentText(mm["content"])
		if str(mm["role"]) == "system" || str(mm["role"]) == "developer" {
			sys = append(sys, text)
		} else {
			usr = append(usr, text)
		}
	}
	return strings.Join(sys, "\n"), strings.Join(usr, "\n")
}

// contentText is a message's text: a string, or blocks of {type:text,text}.
func contentText(c any) string {
	switch c := c.(type) {
	case string:
		return c
	case []any:
		var parts []string
		for _, b := range c {
			bm, _ := b.(map[string]any)
			parts = append(parts, str(bm["text"]))
		}
		return strings.Join(parts, "\n")
	}
	return ""
}
