package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// DefaultResponseURLBase is where Slack's response_urls are: Slack gives
// https://hooks.slack.com/actions/... with an interaction, and
// https://hooks.slack.com/commands/... with a slash command.
const DefaultResponseURLBase = "https://hooks.slack.com/"

// IsResponseURL reports whether raw is under base ("" is
// DefaultResponseURLBase): the same scheme and host, a path below base's,
// and no user info, port or host other than base's. A response_url comes
// in the payload of a request; even a signed one should not make Vigil
// post anywhere else.
func IsResponseURL(raw, base string) bool {
	if base == "" {
		base = DefaultResponseURLBase
	}
	b, err := url.Parse(base)
	if err != nil {
		return false
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Opaque != "" {
		return false
	}
	// A path with dot segments could climb out of base's path.
	if strings.Contains(u.EscapedPath(), "/..") || strings.Contains(u.EscapedPath(), "/.") {
		return false
	}
	prefix := b.EscapedPath()
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return u.Scheme == b.Scheme && strings.EqualFold(u.Host, b.Host) && strings.HasPrefix(u.EscapedPath(), prefix)
}

// maxResponseAnswer bounds what is read of a response_url's answer: "ok",
// or an error.
const maxResponseAnswer = 1024

type ephemeral struct {
	ResponseType    string `json:"response_type"`
	ReplaceOriginal bool   `json:"replace_original"`
	Text            string `json:"text"`
}

// Respond posts text, mrkdwn, to responseURL, a response_url Slack gave
// with an interaction or a slash command: a message only the person who
// acted sees, next to the one they acted on (not replacing it). It needs
// no token: the URL is the capability, and so no error quotes it. A
// refusal is an *APIError of method "response_url". hc sends the post
// (http.DefaultClient if nil).
func Respond(ctx context.Context, hc *http.Client, responseURL, text string) error {
	const method = "response_url"
	if hc == nil {
		hc = http.DefaultClient
	}
	u, err := url.Parse(responseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("slack: %s: %w: want an http or https URL", method, ErrInvalidMessage)
	}
	body, err := json.Marshal(ephemeral{ResponseType: "ephemeral", Text: truncateRunes(text, MaxTextLength)})
	if err != nil {
		return fmt.Errorf("slack: %s: encode request: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, responseURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("slack: %s: build request: %w", method, ErrInvalidMessage)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("slack: %s: %w", method, &transportError{hideURL(err, responseURL)})
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseAnswer))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	apiErr := &APIError{Method: method, StatusCode: resp.StatusCode, Code: responseError(data)}
	if resp.StatusCode == http.StatusTooManyRequests {
		apiErr.RetryAfter = retryAfter(resp.Header.Get("Retry-After"))
	}
	return apiErr
}

// responseError is the error code of a response_url's answer: Slack
// answers in plain text ("expired_url"), or as the Web API does.
func responseError(data []byte) string {
	var a answer
	if json.Unmarshal(data, &a) == nil && a.Error != "" {
		return a.Error
	}
	code := strings.TrimSpace(string(data))
	if strings.ContainsFunc(code, func(r rune) bool { return r <= ' ' || r == '<' }) {
		return "" // an error page, not a code
	}
	return code
}

// hideURL takes raw, a capability, out of err: from the URL of a
// *url.Error, which net/http puts in every error it returns, and from the
// message, in case a transport quoted it too.
func hideURL(err error, raw string) error {
	hidden := "<response_url>"
	if u, perr := url.Parse(raw); perr == nil {
		hidden = u.Scheme + "://" + u.Host + "/<redacted>"
	}
	if urlErr, ok := errors.AsType[*url.Error](err); ok {
		urlErr.URL = hidden
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), raw, hidden), err: err}
}

// redactedError is err with a secret taken out of its message; the
// errors it wraps are kept for errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
