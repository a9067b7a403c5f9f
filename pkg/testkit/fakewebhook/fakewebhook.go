// Package fakewebhook is a receiver of Vigil's outgoing webhook for
// tests: it refuses what a careful receiver refuses (a request whose
// signature does not verify or is outside the timestamp window: 401; not
// a POST of JSON: 405/415; a delivery header that is not the body's id:
// 400), records what it accepts, and can be told to answer 429 with
// Retry-After, to fail with 500, or to hang.
package fakewebhook

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/chat/webhook"
)

// Request is an accepted request.
type Request struct {
	Body webhook.Body
	Raw  []byte
	// Delivery is its X-Vigil-Delivery header.
	Delivery string
}

// Sink is a running receiver.
type Sink struct {
	// URL is where to POST.
	URL    string
	secret string
	srv    *httptest.Server

	mu       sync.Mutex
	accepted []Request
	refused  int
	attempts int
	// deliveries are the X-Vigil-Delivery of every verified request.
	deliveries []string
	// fail answers the next requests with status (and Retry-After).
	fail       []failure
	hang       chan struct{}
	hangingNow int
}

type failure struct {
	status     int
	retryAfter string
}

// New starts a sink that verifies with secret; it stops with the test.
func New(t testing.TB, secret string) *Sink {
	t.Helper()
	s := &Sink{secret: secret}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(func() {
		s.Release()
		s.srv.Close()
	})
	return s
}

func (s *Sink) serve(w http.ResponseWriter, r *http.Request) {
	// The body is read first: net/http watches the connection (and cancels
	// r.Context when the sender hangs up) only once the body is consumed,
	// so a held request learns of a sender that gave up.
	raw, readErr := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	s.mu.Lock()
	s.attempts++
	hang := s.hang
	if hang != nil {
		s.hangingNow++
	}
	s.mu.Unlock()
	if hang != nil {
		// Held until released or until the sender gives up.
		select {
		case <-hang:
		case <-r.Context().Done():
		}
		s.mu.Lock()
		s.hangingNow--
		s.mu.Unlock()
		if r.Context().Err() != nil {
			return
		}
	}
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		http.Error(w, "want application/json", http.StatusUnsupportedMediaType)
		return
	}
	if readErr != nil {
		http.Error(w, readErr.Error(), http.StatusBadRequest)
		return
	}
	if err := webhook.Verify(s.secret, r.Header.Get(webhook.SignatureHeader), raw, time.Now()); err != nil {
		s.mu.Lock()
		s.refused++
		s.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var b webhook.Body
	if err := json.Unmarshal(raw, &b); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if d := r.Header.Get(webhook.DeliveryHeader); d == "" || d != b.ID {
		http.Error(w, "X-Vigil-Delivery is not the body's id", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.deliveries = append(s.deliveries, b.ID)
	if len(s.fail) > 0 {
		f := s.fail[0]
		s.fail = s.fail[1:]
		s.mu.Unlock()
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		http.Error(w, http.StatusText(f.status), f.status)
		return
	}
	s.accepted = append(s.accepted, Request{Body: b, Raw: raw, Delivery: r.Header.Get(webhook.DeliveryHeader)})
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// RateLimit answers the next verified request with 429 and Retry-After:
// retryAfter (seconds or an HTTP date, as given).
func (s *Sink) RateLimit(retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = append(s.fail, failure{status: http.StatusTooManyRequests, retryAfter: retryAfter})
}

// Fail answers the next verified request with status.
func (s *Sink) Fail(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = append(s.fail, failure{status: status})
}

// Hang holds every request from now on, unanswered, until Release or
// until its sender gives up.
func (s *Sink) Hang() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hang == nil {
		s.hang = make(chan struct{})
	}
}

// Release lets the held requests through and stops hanging.
func (s *Sink) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hang != nil {
		close(s.hang)
		s.hang = nil
	}
}

// Hanging is how many requests are held now.
func (s *Sink) Hanging() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hangingNow
}

// Accepted are the requests accepted so far, oldest first.
func (s *Sink) Accepted() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.accepted...)
}

// Refused is how many requests failed verification.
func (s *Sink) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// Deliveries are the ids of the verified requests so far, oldest first,
// answered with a failure or not: a retry shows as a repeat.
func (s *Sink) Deliveries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.deliveries...)
}

// Attempts is how many requests arrived, whatever their answer.
func (s *Sink) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

// WaitFor waits until n requests are accepted and returns them; it fails
// the test after timeout.
func (s *Sink) WaitFor(t testing.TB, n int, timeout time.Duration) []Request {
	t.Helper()
	require.Eventually(t, func() bool { return len(s.Accepted()) >= n }, timeout, 10*time.Millisecond,
		"want %d accepted requests, have %d", n, len(s.Accepted()))
	return s.Accepted()
}
