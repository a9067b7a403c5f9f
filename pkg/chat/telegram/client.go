package telegram

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
)

const (
	defaultBaseURL = "https://api.telegram.org"
	defaultTimeout = 30 * time.Second
	// maxResponse bounds what is read of an answer: a getUpdates answer
	// holds up to 100 updates, each a few kilobytes.
	maxResponse = 8 << 20
)

// Options configures a Client.
type Options struct {
	// BaseURL is the Bot API's address; https://api.telegram.org if empty.
	BaseURL string
	// Token is the bot token from @BotFather.
	Token string
	// HTTPClient sends the requests; if nil, one without a timeout of its
	// own: each call is bounded by its context (or Timeout), and a long
	// poll of getUpdates is held longer than a client-wide timeout allows.
	HTTPClient *http.Client
	// Timeout bounds a call whose context has no deadline; 30s if zero.
	Timeout time.Duration
	// Logger gets debug lines about requests; none if nil.
	Logger *slog.Logger
}

// Validate reports what is wrong with o. It never quotes the token.
func (o Options) Validate() error {
	if o.BaseURL != "" {
		u, err := url.Parse(o.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("telegram: BaseURL %q: want an http or https URL", o.BaseURL)
		}
	}
	if o.Token == "" {
		return errors.New("telegram: Token: missing")
	}
	for _, c := range o.Token {
		if !isTokenChar(c) {
			return errors.New("telegram: Token: has characters other than letters, digits, ':', '_' and '-'")
		}
	}
	return nil
}

// Bot tokens look like 123456789:AAE-bx_..., which needs no escaping in a URL path.
func isTokenChar(c rune) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == ':' || c == '_' || c == '-'
}

// Client calls the Bot API. It is safe for concurrent use.
type Client struct {
	baseURL string
	token   string
	http    *http.Client
	timeout time.Duration
	logger  *slog.Logger
}

// New returns a Client for opts.
func New(opts Options) (*Client, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	c := &Client{
		baseURL: strings.TrimRight(opts.BaseURL, "/"),
		token:   opts.Token,
		http:    opts.HTTPClient,
		timeout: opts.Timeout,
		logger:  opts.Logger,
	}
	if c.baseURL == "" {
		c.baseURL = defaultBaseURL
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.timeout <= 0 {
		c.timeout = defaultTimeout
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	c.logger = c.logger.With("component", "telegram")
	return c, nil
}

// SendMessage sends m. A message that can be seen to be invalid is not
// sent and the error wraps ErrInvalidMessage.
func (c *Client) SendMessage(ctx context.Context, m Message) (Sent, error) {
	call, err := m.Call()
	if err != nil {
		return Sent{}, err
	}
	var msg sentMessage
	if err := c.Do(ctx, call, &msg); err != nil {
		return Sent{}, err
	}
	if msg.MessageID == 0 {
		return Sent{}, fmt.Errorf("telegram: %s: the answer has no message id: %w", call.Method, ErrUnreadableAnswer)
	}
	return Sent{MessageID: msg.MessageID, ChatID: msg.Chat.ID, Date: time.Unix(msg.Date, 0)}, nil
}

// EditMessageText replaces the text of a message the bot sent, and its
// inline keyboard: e.ReplyMarkup nil removes the keyboard. An edit that
// changes nothing fails with an error IsNotModified reports.
func (c *Client) EditMessageText(ctx context.Context, e Edit) error {
	call, err := e.Call()
	if err != nil {
		return err
	}
	// The result is the edited message, or true for inline messages.
	var result json.RawMessage
	return c.Do(ctx, call, &result)
}

// AnswerCallbackQuery answers a press of an inline button.
func (c *Client) AnswerCallbackQuery(ctx context.Context, a Answer) error {
	return c.Do(ctx, a.Call(), nil)
}

// Call is a Bot API method call: made with Client.Do, or handed to
// Telegram as the answer to the update a webhook received, which saves a
// request.
type Call struct {
	Method string
	// Params marshal to a JSON object; nil is none.
	Params any
}

// MarshalJSON is the call as a webhook's answer: the parameters, and
// "method".
func (c *Call) MarshalJSON() ([]byte, error) {
	fields, err := c.params()
	if err != nil {
		return nil, err
	}
	m, _ := json.Marshal(c.Method)
	fields["method"] = m
	return json.Marshal(fields)
}

func (c *Call) params() (map[string]json.RawMessage, error) {
	fields := map[string]json.RawMessage{}
	if c.Params == nil {
		return fields, nil
	}
	raw, err := json.Marshal(c.Params)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("parameters: want a JSON object: %w", err)
	}
	if fields == nil {
		fields = map[string]json.RawMessage{}
	}
	return fields, nil
}

// Do makes call and decodes its result into out (nil: the result is not
// read).
func (c *Client) Do(ctx context.Context, call *Call, out any) error {
	body := []byte("{}")
	if call.Params != nil {
		var err error
		if body, err = json.Marshal(call.Params); err != nil {
			return fmt.Errorf("telegram: %s: encode request: %w", call.Method, err)
		}
	}
	return c.call(ctx, call.Method, body, out)
}

// envelope is the Bot API's answer to every method.
type envelope struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  struct {
		RetryAfter      int   `json:"retry_after"`
		MigrateToChatID int64 `json:"migrate_to_chat_id"`
	} `json:"parameters"`
}

// call posts body to method and decodes the result into out.
func (c *Client) call(ctx context.Context, method string, body []byte, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+"/bot"+c.token+"/"+method, bytes.NewReader(body))
	if err != nil {
		// Not a network failure, so not retryable; the message may quote the URL.
		return fmt.Errorf("telegram: %s: build request: %s", method, redact(err.Error(), c.token))
	}
	req.Header.Set("Content-Type", "application/json")

	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		err = newTransportError(err, c.token)
		c.logger.DebugContext(ctx, "telegram request failed", "method", method, "duration", time.Since(start), "error", err)
		return fmt.Errorf("telegram: %s: %w", method, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		err = newTransportError(err, c.token)
		return fmt.Errorf("telegram: %s: read answer (HTTP %d): %w", method, resp.StatusCode, err)
	}
	c.logger.DebugContext(ctx, "telegram request done", "method", method, "status", resp.StatusCode, "duration", time.Since(start))

	var env envelope
	if err := json.Unmarshal(data, &env); err != nil || (!env.OK && env.ErrorCode == 0) {
		if resp.StatusCode/100 == 2 {
			return fmt.Errorf("telegram: %s: HTTP %d with an answer that is not the Bot API's: %w", method, resp.StatusCode, ErrUnreadableAnswer)
		}
		// A proxy's error page (nginx answers 502 with HTML): judge by the status.
		return &APIError{Method: method, StatusCode: resp.StatusCode, Description: http.StatusText(resp.StatusCode)}
	}
	if !env.OK {
		return &APIError{
			Method:          method,
			StatusCode:      resp.StatusCode,
			Code:            env.ErrorCode,
			Description:     redact(env.Description, c.token),
			RetryAfter:      time.Duration(env.Parameters.RetryAfter) * time.Second,
			MigrateToChatID: env.Parameters.MigrateToChatID,
		}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(env.Result, out); err != nil {
		return fmt.Errorf("telegram: %s: decode result: %w: %w", method, ErrUnreadableAnswer, err)
	}
	return nil
}
