package line

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
)

const (
	defaultBaseURL = "https://api.line.me"
	defaultTimeout = 30 * time.Second
	// maxResponse bounds what is read of an answer: a push's is the ids
	// of the messages sent.
	maxResponse = 1 << 20
	// RetryKeyHeader makes a push idempotent: LINE accepts a key once in
	// 24 hours and answers a repeat with 409.
	RetryKeyHeader = "X-Line-Retry-Key"
	// AcceptedRequestHeader is, on that 409, the id of the request LINE
	// accepted with the key.
	AcceptedRequestHeader = "X-Line-Accepted-Request-Id"
	// RequestIDHeader is the id LINE gives every request.
	RequestIDHeader = "X-Line-Request-Id"
)

// Options configures a Client.
type Options struct {
	// BaseURL is the Messaging API's address; https://api.line.me if
	// empty.
	BaseURL string
	// Token is the channel access token (Messaging API tab of the
	// channel in the LINE Developers Console).
	Token string
	// HTTPClient sends the requests; if nil, one with a 30s timeout.
	HTTPClient *http.Client
	// Logger gets debug lines about requests; none if nil.
	Logger *slog.Logger
}

// Validate reports what is wrong with o. It never quotes the token.
func (o Options) Validate() error {
	if o.BaseURL != "" {
		u, err := url.Parse(o.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("line: BaseURL %q: want an http or https URL", o.BaseURL)
		}
	}
	if o.Token == "" {
		return errors.New("line: Token: missing")
	}
	for _, c := range o.Token {
		if c <= ' ' || c == 0x7f {
			return errors.New("line: Token: has white space or control characters")
		}
	}
	return nil
}

// Client calls the Messaging API. It is safe for concurrent use.
type Client struct {
	baseURL string
	token   string
	http    *http.Client
	logger  *slog.Logger
}

// New returns a Client for opts.
func New(opts Options) (*Client, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	c := &Client{baseURL: strings.TrimRight(opts.BaseURL, "/"), token: opts.Token, http: opts.HTTPClient, logger: opts.Logger}
	if c.baseURL == "" {
		c.baseURL = defaultBaseURL
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: defaultTimeout}
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	c.logger = c.logger.With("component", "line")
	return c, nil
}

// Push is a push message: up to MaxMessages messages to one user, group
// or room.
type Push struct {
	// To is the recipient's id: a user (U...), group (C...) or room
	// (R...).
	To       string
	Messages []Message
	// RetryKey, a UUID, makes the push idempotent: the same key again
	// within 24 hours is not sent twice. Empty: none.
	RetryKey string
}

// Sent is what a push did.
type Sent struct {
	// MessageIDs are the ids of the messages sent, in order; none when
	// the push was a repeat of an accepted retry key.
	MessageIDs []string
	// RequestID is the request's id at LINE: on a repeat, that of the
	// request accepted first.
	RequestID string
	// Repeat: LINE had accepted the retry key before (409), and sent
	// nothing now.
	Repeat bool
}

type pushRequest struct {
	To       string    `json:"to"`
	Messages []Message `json:"messages"`
}

func (p Push) validate() error {
	if p.To == "" {
		return fmt.Errorf("%w: to: missing", ErrInvalidMessage)
	}
	if len(p.Messages) == 0 || len(p.Messages) > MaxMessages {
		return fmt.Errorf("%w: messages: %d, want 1 to %d", ErrInvalidMessage, len(p.Messages), MaxMessages)
	}
	for i, m := range p.Messages {
		if err := m.validate(); err != nil {
			return fmt.Errorf("messages[%d]: %w", i, err)
		}
	}
	if p.RetryKey != "" {
		if _, err := uuid.Parse(p.RetryKey); err != nil {
			return fmt.Errorf("%w: retry key %q: want a UUID", ErrInvalidMessage, p.RetryKey)
		}
	}
	return nil
}

// Push sends p. A push that can be seen to be invalid is not sent and the
// error wraps ErrInvalidMessage. A 409 for a retry key LINE accepted
// before is no error: the messages went out then (Sent.Repeat).
func (c *Client) Push(ctx context.Context, p Push) (Sent, error) {
	const method = "push"
	if err := p.validate(); err != nil {
		return Sent{}, fmt.Errorf("line: %s: %w", method, err)
	}
	return c.send(ctx, method, "/v2/bot/message/push", pushRequest{To: p.To, Messages: p.Messages}, p.RetryKey)
}

// Reply answers a webhook event with messages, through the event's reply
// token: free of the month's quota, but a token works once and within a
// minute of the event.
func (c *Client) Reply(ctx context.Context, replyToken string, messages ...Message) error {
	const method = "reply"
	if replyToken == "" {
		return fmt.Errorf("line: %s: %w: replyToken: missing", method, ErrInvalidMessage)
	}
	if len(messages) == 0 || len(messages) > MaxMessages {
		return fmt.Errorf("line: %s: %w: messages: %d, want 1 to %d", method, ErrInvalidMessage, len(messages), MaxMessages)
	}
	for i, m := range messages {
		if err := m.validate(); err != nil {
			return fmt.Errorf("line: %s: messages[%d]: %w", method, i, err)
		}
	}
	_, err := c.send(ctx, method, "/v2/bot/message/reply", replyRequest{ReplyToken: replyToken, Messages: messages}, "")
	return err
}

type replyRequest struct {
	ReplyToken string    `json:"replyToken"`
	Messages   []Message `json:"messages"`
}

// send posts a request of messages to path.
func (c *Client) send(ctx context.Context, method, path string, request any, retryKey string) (Sent, error) {
	body, err := json.Marshal(request)
	if err != nil {
		return Sent{}, fmt.Errorf("line: %s: encode request: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+path, bytes.NewReader(body))
	if err != nil {
		return Sent{}, fmt.Errorf("line: %s: build request: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	if retryKey != "" {
		req.Header.Set(RetryKeyHeader, retryKey)
	}

	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.logger.DebugContext(ctx, "line request failed", "method", method, "duration", time.Since(start), "error", err)
		return Sent{}, fmt.Errorf("line: %s: %w", method, &transportError{err})
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return Sent{}, fmt.Errorf("line: %s: read answer (HTTP %d): %w", method, resp.StatusCode, &transportError{err})
	}
	c.logger.DebugContext(ctx, "line request done", "method", method, "status", resp.StatusCode,
		"request_id", resp.Header.Get(RequestIDHeader), "duration", time.Since(start))

	if resp.StatusCode == http.StatusConflict && retryKey != "" {
		if accepted := resp.Header.Get(AcceptedRequestHeader); accepted != "" {
			return Sent{RequestID: accepted, Repeat: true}, nil
		}
	}
	if resp.StatusCode/100 != 2 {
		return Sent{}, apiError(method, resp.StatusCode, data)
	}
	var out struct {
		SentMessages []struct {
			ID string `json:"id"`
		} `json:"sentMessages"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return Sent{}, fmt.Errorf("line: %s: HTTP %d with an answer that is not the Messaging API's", method, resp.StatusCode)
	}
	s := Sent{RequestID: resp.Header.Get(RequestIDHeader)}
	for _, m := range out.SentMessages {
		s.MessageIDs = append(s.MessageIDs, m.ID)
	}
	return s, nil
}

// apiError reads an error answer; a body that is not the API's (a
// proxy's page) is judged by its status alone.
func apiError(method string, status int, data []byte) *APIError {
	var a struct {
		Message string   `json:"message"`
		Details []Detail `json:"details"`
	}
	_ = json.Unmarshal(data, &a)
	e := &APIError{Method: method, StatusCode: status, Message: a.Message, Details: a.Details}
	if e.retryable() && status == http.StatusTooManyRequests {
		e.RetryAfter = RateLimitBackoff
	}
	return e
}
