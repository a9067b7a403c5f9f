package telegram

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
	"time"
)

// Client calls the Bot API as Vigil's bot. Its errors never carry the
// token, which is part of every request's URL.
type Client struct {
	// BaseURL is https://api.telegram.org, or a fake's.
	BaseURL string
	Token   string
	// HTTP makes the requests; each is bounded by its context, so the
	// client needs no timeout of its own (a long poll is held 30 s).
	HTTP *http.Client
}

// callTimeout bounds a call that is not a long poll.
const callTimeout = 10 * time.Second

// APIError is an answer of the Bot API with ok false.
type APIError struct {
	Method      string
	Code        int
	Description string
	// RetryAfter is how long to wait after a 429.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	return fmt.Sprintf("telegram %s: %d %s", e.Method, e.Code, e.Description)
}

// answer is the Bot API's envelope.
type answer struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
}

// Call calls method with params (JSON) and decodes its result into out
// (nil: ignored). ctx bounds it; without a deadline, callTimeout does.
func (c *Client) Call(ctx context.Context, method string, params, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, callTimeout)
		defer cancel()
	}
	body, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("telegram %s: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		strings.TrimRight(c.BaseURL, "/")+"/bot"+c.Token+"/"+method, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("telegram %s: bad request (check VIGIL_TELEGRAM_API_URL)", method)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		// A *url.Error names the URL, and the URL holds the token.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("telegram %s: %w", method, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("telegram %s: read answer: %w", method, err)
	}
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		return &APIError{Method: method, Code: resp.StatusCode, Description: "not a Bot API answer (" + http.StatusText(resp.StatusCode) + ")"}
	}
	if !a.OK {
		code := a.ErrorCode
		if code == 0 {
			code = resp.StatusCode
		}
		return &APIError{Method: method, Code: code, Description: a.Description, RetryAfter: time.Duration(a.Parameters.RetryAfter) * time.Second}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(a.Result, out); err != nil {
		return fmt.Errorf("telegram %s: decode result: %w", method, err)
	}
	return nil
}

// Do makes call.
func (c *Client) Do(ctx context.Context, call *Call) error {
	return c.Call(ctx, call.Method, call.Params, nil)
}

// Call is a Bot API method call: made by a request, or by answering a
// webhook with it.
type Call struct {
	Method string
	// Params marshal to a JSON object.
	Params any
}

// MarshalJSON is the call as a webhook's answer: the parameters, and
// "method".
func (c *Call) MarshalJSON() ([]byte, error) {
	raw, err := json.Marshal(c.Params)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	m, _ := json.Marshal(c.Method)
	fields["method"] = m
	return json.Marshal(fields)
}

// updateTypes are the updates Vigil's bot asks for.
var updateTypes = []string{"message", "callback_query"}

// SetWebhook points the bot's updates at url, each with secret in
// SecretHeader.
func (c *Client) SetWebhook(ctx context.Context, url, secret string) error {
	return c.Call(ctx, "setWebhook", map[string]any{
		"url": url, "secret_token": secret, "allowed_updates": updateTypes,
	}, nil)
}
