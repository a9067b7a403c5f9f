package slack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// ErrInvalidMessage is returned for a message Slack would refuse, found
// before sending it. It is permanent.
var ErrInvalidMessage = errors.New("invalid message")

// ErrUnreadableAnswer is returned when Slack (or something in front of
// it) answered 2xx with a body that is not a Web API answer, or one
// without what the method returns: a write may have been done (a message
// posted), its result unknown.
var ErrUnreadableAnswer = errors.New("unreadable answer")

// APIError is an error answer from the Web API (ok:false), or an HTTP
// error from something in front of it.
type APIError struct {
	Method string
	// StatusCode is the HTTP status: 200 for most ok:false answers.
	StatusCode int
	// Code is Slack's error string ("channel_not_found", "invalid_blocks");
	// empty when the body was not a Web API answer.
	Code string
	// Messages explain the error (response_metadata.messages: which block
	// is invalid, and why).
	Messages []string
	// RetryAfter is how long Slack asked to wait (429, Retry-After).
	RetryAfter time.Duration
}

// maxMessagesShown bounds what Error quotes of Messages.
const maxMessagesShown = 5

func (e *APIError) Error() string {
	what := e.Code
	if what == "" {
		what = fmt.Sprintf("HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	msg := "slack: " + e.Method + ": " + what
	if len(e.Messages) > 0 {
		shown := e.Messages[:min(len(e.Messages), maxMessagesShown)]
		msg += " (" + strings.Join(shown, "; ")
		if more := len(e.Messages) - len(shown); more > 0 {
			msg += fmt.Sprintf("; %d more", more)
		}
		msg += ")"
	}
	return msg
}

// retryableCodes are the ok:false errors Slack documents as temporary.
var retryableCodes = map[string]bool{
	"ratelimited":         true,
	"rate_limited":        true,
	"internal_error":      true,
	"fatal_error":         true,
	"service_unavailable": true,
	"request_timeout":     true,
}

func (e *APIError) retryable() bool {
	if e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500 {
		return true
	}
	return retryableCodes[e.Code]
}

// IsRetryable reports whether sending again may succeed: Slack was rate
// limiting or failing, or it could not be reached or answered too late. A
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
// succeed: Slack refused it (a bad token, an unknown channel, invalid
// blocks), or it was found invalid before sending.
func IsPermanent(err error) bool {
	if errors.Is(err, ErrInvalidMessage) {
		return true
	}
	if apiErr, ok := errors.AsType[*APIError](err); ok {
		return !apiErr.retryable()
	}
	return false
}

// IsNotFound reports whether Slack does not know the message named (it
// was deleted): an update must then post anew.
func IsNotFound(err error) bool {
	apiErr, ok := errors.AsType[*APIError](err)
	return ok && (apiErr.Code == "message_not_found" || apiErr.Code == "thread_not_found")
}

// RetryAfter is the wait Slack asked for before the next request, or 0.
func RetryAfter(err error) time.Duration {
	if apiErr, ok := errors.AsType[*APIError](err); ok {
		return apiErr.RetryAfter
	}
	return 0
}

// transportError is a failure to reach Slack or to read its answer. The
// token travels in a header, never in the URL, so no message quotes it.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }
