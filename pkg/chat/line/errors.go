package line

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// ErrInvalidMessage is returned for a push LINE would refuse, found
// before sending it. It is permanent.
var ErrInvalidMessage = errors.New("invalid message")

// RateLimitBackoff is the wait suggested after a 429: LINE sends no
// Retry-After, and its limits are per second (2,000 pushes a second), so
// a few seconds let a burst pass without holding news back for long.
const RateLimitBackoff = 5 * time.Second

// maxDetailsShown bounds what Error quotes of Details.
const maxDetailsShown = 5

// APIError is an error answer from the Messaging API, or an HTTP error
// from something in front of it.
type APIError struct {
	Method     string
	StatusCode int
	// Message is LINE's message ("The request body has 1 error(s)");
	// empty when the body was not the API's.
	Message string
	// Details say which property is wrong, and why.
	Details []Detail
	// RetryAfter is the wait before trying again after a 429 (LINE names
	// none: RateLimitBackoff).
	RetryAfter time.Duration
}

// Detail is one reason LINE gives for refusing a request.
type Detail struct {
	Message  string `json:"message"`
	Property string `json:"property"`
}

func (e *APIError) Error() string {
	what := e.Message
	if what == "" {
		what = fmt.Sprintf("HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	} else {
		what = fmt.Sprintf("HTTP %d: %s", e.StatusCode, what)
	}
	msg := "line: " + e.Method + ": " + what
	if len(e.Details) > 0 {
		shown := e.Details[:min(len(e.Details), maxDetailsShown)]
		parts := make([]string, 0, len(shown))
		for _, d := range shown {
			parts = append(parts, d.Property+": "+d.Message)
		}
		msg += " (" + strings.Join(parts, "; ")
		if more := len(e.Details) - len(shown); more > 0 {
			msg += fmt.Sprintf("; %d more", more)
		}
		msg += ")"
	}
	return msg
}

// quotaExceeded is a 429 for the month's message quota, not the rate:
// no retry helps before the quota is raised or the month ends.
func (e *APIError) quotaExceeded() bool {
	return e.StatusCode == http.StatusTooManyRequests && strings.Contains(strings.ToLower(e.Message), "monthly limit")
}

func (e *APIError) retryable() bool {
	if e.quotaExceeded() {
		return false
	}
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// IsRetryable reports whether sending again may succeed: LINE was rate
// limiting or failing, or could not be reached or answered too late. A
// request the caller cancelled is not retryable.
func IsRetryable(err error) bool {
	if apiErr, ok := errors.AsType[*APIError](err); ok {
		return apiErr.retryable()
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	_, ok := errors.AsType[*transportError](err)
	return ok
}

// IsPermanent reports whether sending the same request again cannot
// succeed: LINE refused it (a bad token, an unknown recipient, an invalid
// message, the month's quota), or it was found invalid before sending.
func IsPermanent(err error) bool {
	if errors.Is(err, ErrInvalidMessage) {
		return true
	}
	if apiErr, ok := errors.AsType[*APIError](err); ok {
		return !apiErr.retryable()
	}
	return false
}

// RetryAfter is the wait before the next request, or 0.
func RetryAfter(err error) time.Duration {
	if apiErr, ok := errors.AsType[*APIError](err); ok && apiErr.retryable() {
		return apiErr.RetryAfter
	}
	return 0
}

// transportError is a failure to reach LINE or to read its answer. The
// token travels in a header, never in the URL, so no message quotes it.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }
