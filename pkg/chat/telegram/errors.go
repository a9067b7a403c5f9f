package telegram

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrUnreadableAnswer is returned when Telegram (or something in front
// of it) answered 2xx with a body that is not a Bot API answer, or one
// without what the method returns: a message may have been sent, its id
// unknown.
var ErrUnreadableAnswer = errors.New("unreadable answer")

// APIError is an error answer from the Bot API, or an HTTP error from
// something in front of it.
type APIError struct {
	Method string
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is the Bot API's error_code; 0 when the body was not a Bot API answer
	// (an HTML page from a proxy, say).
	Code        int
	Description string
	// RetryAfter is how long Telegram asked to wait (429 Too Many Requests).
	RetryAfter time.Duration
	// MigrateToChatID is set when a group became a supergroup: the message
	// must go to this chat id instead.
	MigrateToChatID int64
}

func (e *APIError) Error() string {
	return fmt.Sprintf("telegram: %s: %d %s", e.Method, e.code(), e.Description)
}

// code is the error code to judge the error by.
func (e *APIError) code() int {
	if e.Code != 0 {
		return e.Code
	}
	return e.StatusCode
}

// IsRetryable reports whether sending again may succeed: Telegram was
// rate limiting (429) or failing (5xx), or it could not be reached or
// answered too late. A request the caller cancelled is not retryable.
func IsRetryable(err error) bool {
	if apiErr, ok := errors.AsType[*APIError](err); ok {
		code := apiErr.code()
		return code == http.StatusTooManyRequests || code >= 500
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	_, ok := errors.AsType[*transportError](err)
	return ok
}

// IsPermanent reports whether sending the same message again cannot
// succeed: Telegram refused it (400 Bad Request, 401 Unauthorized,
// 403 Forbidden, 404 Not Found and the other 4xx but 429), or it was found
// invalid before sending. Errors that are neither permanent nor retryable
// (a cancelled request, an unreadable 2xx answer) leave the outcome open.
func IsPermanent(err error) bool {
	if errors.Is(err, ErrInvalidMessage) {
		return true
	}
	if apiErr, ok := errors.AsType[*APIError](err); ok {
		code := apiErr.code()
		return code >= 400 && code < 500 && code != http.StatusTooManyRequests
	}
	return false
}

// IsNotModified reports whether Telegram refused an edit because the
// message already is as asked: an edit made before (and not recorded)
// did the work.
func IsNotModified(err error) bool {
	apiErr, ok := errors.AsType[*APIError](err)
	return ok && apiErr.code() == http.StatusBadRequest && strings.Contains(apiErr.Description, "message is not modified")
}

// IsMessageNotFound reports whether Telegram refused an edit because the
// message is gone (people deleted it).
func IsMessageNotFound(err error) bool {
	apiErr, ok := errors.AsType[*APIError](err)
	return ok && apiErr.code() == http.StatusBadRequest && strings.Contains(apiErr.Description, "message to edit not found")
}

// RetryAfter is the wait Telegram asked for before the next request, or 0.
func RetryAfter(err error) time.Duration {
	if apiErr, ok := errors.AsType[*APIError](err); ok {
		return apiErr.RetryAfter
	}
	return 0
}

// transportError is a failure to reach Telegram or to read its answer. Its
// message has the token removed; the errors it wraps are kept for
// errors.Is and errors.As (context.DeadlineExceeded, *url.Error, net.Error).
type transportError struct {
	msg string
	err error
}

func (e *transportError) Error() string { return e.msg }
func (e *transportError) Unwrap() error { return e.err }

// newTransportError redacts the token from err: from the URL of a
// *url.Error, which net/http puts in every error it returns, and from the
// message, in case a transport quoted the URL too.
func newTransportError(err error, token string) *transportError {
	if urlErr, ok := errors.AsType[*url.Error](err); ok {
		urlErr.URL = redact(urlErr.URL, token)
	}
	return &transportError{msg: redact(err.Error(), token), err: err}
}

const redacted = "<redacted>"

// redact removes the token from s. The token only appears in a URL path,
// after "bot" and unescaped (Options.Validate allows no character that
// would be escaped), so that is what is replaced: a bare token could occur
// by chance in any text.
func redact(s, token string) string {
	return strings.ReplaceAll(s, "bot"+token, "bot"+redacted)
}
