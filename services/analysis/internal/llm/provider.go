// Package llm is the analysis engine backed by a language model: it turns
// an evidence bundle into a redacted prompt in which the evidence is a
// data document, asks a Provider for an answer constrained by a JSON
// schema, and parses that answer strictly into an engine.Result. The
// providers (ollama, openai, anthropic, gemini) live in sub-packages, each
// behind Provider; this package holds what they share: the request, the
// errors, the HTTP call, the budget.
package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-ops/vigil/services/analysis/internal/engine"
)

// Provider sends one request to a model and returns its answer.
type Provider interface {
	Complete(ctx context.Context, req Request) (Response, error)
}

// Request is one call to a model.
type Request struct {
	Model string
	// System is the instructions; User the message holding the evidence.
	System, User string
	// Schema is the JSON schema of the answer (JSON Schema, in the subset
	// OpenAI's strict mode accepts; a provider translates it if its API
	// wants another dialect). SchemaName names it where the API asks.
	Schema     json.RawMessage
	SchemaName string
	MaxTokens  int
}

// Response is a model's answer.
type Response struct {
	// Text is the answer: a JSON document that should match the schema.
	Text string
	// Model as the provider reports it (may carry a version).
	Model                     string
	InputTokens, OutputTokens int
}

// The kinds of failure a provider reports; every error a Provider returns
// wraps one of them, context.DeadlineExceeded / context.Canceled, or
// engine.ErrUnusable (a truncated, empty or non-JSON answer).
var (
	// ErrAuth: the provider refused the credentials (401, 403).
	ErrAuth = errors.New("provider refused the credentials")
	// ErrRateLimited: 429 (see RateLimitError for when to retry).
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable: the provider failed (5xx, overloaded) or could not
	// be reached.
	ErrUnavailable = errors.New("provider unavailable")
	// ErrRejected: the provider refused the request itself (4xx other than
	// the above: an unknown model, a schema it does not take).
	ErrRejected = errors.New("provider rejected the request")
	// ErrBudget: the daily token or cost budget is spent; no call was made.
	ErrBudget = errors.New("daily LLM budget exhausted")
)

// StatusError is a provider's answer with a status other than 2xx.
type StatusError struct {
	Provider string
	Status   int
	// Message is the provider's own explanation, from its error body (its
	// start: see Excerpt).
	Message string
	// RetryAfter is how long the provider asked to wait (429, 503, 529),
	// zero when it did not say or when waiting will not help.
	RetryAfter time.Duration
	// Kind is ErrAuth, ErrRateLimited, ErrUnavailable or ErrRejected.
	Kind error
}

// NewStatusError classifies a non-2xx answer by its status; a provider
// may correct Kind (Gemini answers 400 to a bad key) or RetryAfter.
func NewStatusError(provider string, status int, header http.Header, message string) *StatusError {
	e := &StatusError{Provider: provider, Status: status, Message: Excerpt(message)}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.Kind = ErrAuth
	case status == http.StatusTooManyRequests:
		e.Kind = ErrRateLimited
	case status >= 500:
		e.Kind = ErrUnavailable
	default:
		e.Kind = ErrRejected
	}
	if status == http.StatusTooManyRequests || status >= 500 {
		e.RetryAfter = RetryAfter(header, time.Now())
	}
	return e
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s: HTTP %d", e.Provider, e.Status)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return msg
}

// Unwrap lets errors.Is see the kind.
func (e *StatusError) Unwrap() error { return e.Kind }

// RetryAfter reads how long to wait from retry-after-ms (OpenAI) or
// Retry-After (seconds or an HTTP date); zero when absent or invalid.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 && ms < 1e9 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 || s > 86400 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// MaxResponseBytes bounds what is read of a provider's answer.
const MaxResponseBytes = 4 << 20

// Post sends body as JSON and returns the answer of a 2xx response. On
// another status it returns the *StatusError that errorMessage (the
// provider's reading of its error body) and the status make; transport
// failures wrap ErrUnavailable, or the context's error when it ended.
func Post(ctx context.Context, c *http.Client, provider, url string, header http.Header, body any,
	errorMessage func([]byte) string,
) ([]byte, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("%s: encode request: %w", provider, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", provider, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("%s: %w", provider, ctxErr)
		}
		return nil, fmt.Errorf("%s: %w: %w", provider, ErrUnavailable, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("%s: read answer: %w", provider, ctxErr)
		}
		// The connection broke mid-answer: a truncated body.
		return nil, fmt.Errorf("%s: read answer: %w: %w", provider, engine.ErrUnusable, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// A refusal is a refusal however long its page: the status says
		// what to do, the start of the body why.
		raw = raw[:min(len(raw), MaxResponseBytes)]
		msg := ""
		if errorMessage != nil {
			msg = errorMessage(raw)
		}
		if msg == "" {
			msg = string(raw)
		}
		return nil, NewStatusError(provider, resp.StatusCode, resp.Header, msg)
	}
	if len(raw) > MaxResponseBytes {
		return nil, fmt.Errorf("%s: answer larger than %d bytes: %w", provider, MaxResponseBytes, engine.ErrUnusable)
	}
	return raw, nil
}

// Decode unmarshals a provider's 2xx body; a body that is not the JSON
// the API promises (truncated, an HTML page from a proxy) is unusable.
func Decode(provider string, raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		// Not %w: encoding/json quotes a number it cannot store whole,
		// and a body of digits is megabytes.
		return fmt.Errorf("%s: answer is not the API's JSON (%s): %w: %s", provider, Excerpt(string(raw)), engine.ErrUnusable, Excerpt(err.Error()))
	}
	return nil
}

// Bounds of what a provider reports about a call besides the answer.
const (
	// maxTokens is a thousand times the largest context window, and
	// small enough that no sum of counts overflows.
	maxTokens = 1 << 30
	maxModel  = 256
)

// Reported is the Response to a call as its provider reported it, without
// the answer: the model, and the tokens of each side as the sum of its
// parts (input and cached input; answer and thinking). A negative or
// absurd count, or a model's name longer than any, is not an API's: the
// error wraps engine.ErrUnusable and the Response is empty, so that
// nothing absurd is recorded or charged to the budget.
func Reported(provider, model string, input, output []int) (Response, error) {
	if len(model) > maxModel {
		return Response{}, fmt.Errorf("%s: model name of %d bytes: %w", provider, len(model), engine.ErrUnusable)
	}
	in, err := sumTokens(input)
	if err != nil {
		return Response{}, fmt.Errorf("%s: input %w: %w", provider, err, engine.ErrUnusable)
	}
	out, err := sumTokens(output)
	if err != nil {
		return Response{}, fmt.Errorf("%s: output %w: %w", provider, err, engine.ErrUnusable)
	}
	return Response{Model: model, InputTokens: in, OutputTokens: out}, nil
}

func sumTokens(counts []int) (int, error) {
	sum := 0
	for _, n := range counts {
		if n < 0 || n > maxTokens-sum {
			return 0, fmt.Errorf("token count %d is not between 0 and %d", n, maxTokens-sum)
		}
		sum += n
	}
	return sum, nil
}

// maxExcerpt bounds an Excerpt.
const maxExcerpt = 512

// Excerpt is the start of what a provider or a model wrote, fit for an
// error message: errors are logged and kept with the analysis (a proto
// string: valid UTF-8), and what is quoted in them may be megabytes of
// anything.
func Excerpt(s string) string {
	suffix := ""
	if len(s) > maxExcerpt {
		cut := maxExcerpt
		// Not inside a character (at most UTFMax-1 bytes back: invalid
		// bytes are ToValidUTF8's).
		for i := 0; i < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(s[cut]); i++ {
			cut--
		}
		s, suffix = s[:cut], "..."
	}
	return strings.TrimSpace(strings.ToValidUTF8(s, "?")) + suffix
}
