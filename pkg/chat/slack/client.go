package slack

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
	"regexp"
	"strconv"
	"strings"
	"time"
)

const (
	defaultBaseURL = "https://slack.com/api"
	defaultTimeout = 30 * time.Second
	// DefaultMaxWait is how long a 429 is waited out inside the client
	// when Options.MaxWait is zero.
	DefaultMaxWait = 5 * time.Second
	// maxRetryAfter bounds a Retry-After handed back to the caller: a
	// broken header should not park a message for a day.
	maxRetryAfter = 10 * time.Minute
	// maxTries bounds the requests one call makes through 429s.
	maxTries = 3
	// maxResponse bounds what is read of an answer; chat.postMessage
	// answers echo the message, a few kilobytes.
	maxResponse = 1 << 20
)

// Options configures a Client.
type Options struct {
	// BaseURL is the Web API's address; https://slack.com/api if empty.
	BaseURL string
	// Token is the bot token, xoxb-...
	Token string
	// HTTPClient sends the requests; if nil, one with a 30s timeout.
	HTTPClient *http.Client
	// MaxWait is the longest Retry-After of a 429 the client waits out
	// before trying again (DefaultMaxWait if zero, negative: never); a
	// longer one is returned as an error with RetryAfter set.
	MaxWait time.Duration
	// Logger gets debug lines about requests; none if nil.
	Logger *slog.Logger
}

// Validate reports what is wrong with o. It never quotes the token.
func (o Options) Validate() error {
	if o.BaseURL != "" {
		u, err := url.Parse(o.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("slack: BaseURL %q: want an http or https URL", o.BaseURL)
		}
	}
	if o.Token == "" {
		return errors.New("slack: Token: missing")
	}
	if !strings.HasPrefix(o.Token, "xoxb-") {
		return errors.New("slack: Token: want a bot token (xoxb-...)")
	}
	for _, c := range o.Token {
		if c <= ' ' || c == 0x7f {
			return errors.New("slack: Token: has white space or control characters")
		}
	}
	return nil
}

// Client calls the Web API. It is safe for concurrent use.
type Client struct {
	baseURL string
	token   string
	http    *http.Client
	maxWait time.Duration
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
		maxWait: opts.MaxWait,
		logger:  opts.Logger,
	}
	if c.baseURL == "" {
		c.baseURL = defaultBaseURL
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: defaultTimeout}
	}
	if c.maxWait == 0 {
		c.maxWait = DefaultMaxWait
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	c.logger = c.logger.With("component", "slack")
	return c, nil
}

// Message is a message to post.
type Message struct {
	// Channel is the channel's id (C0123ABCD).
	Channel string
	// Text is the message in mrkdwn, or, with blocks, what notifications
	// and screen readers show.
	Text   string
	Blocks []Block
	// ThreadTS, if set, makes the message a reply in the thread of that
	// top-level message.
	ThreadTS string
	// Broadcast shows a reply in the channel too.
	Broadcast bool
	// Metadata, if set, is kept with the message, for the app to find it
	// by (History with IncludeMetadata); people do not see it.
	Metadata *Metadata
}

// Metadata is a message's metadata: an event type (snake_case letters,
// digits, underscores and dots) and a JSON object of strings.
type Metadata struct {
	EventType    string            `json:"event_type"`
	EventPayload map[string]string `json:"event_payload"`
}

var tsPattern = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)

func (m Message) validate() error {
	if m.Channel == "" {
		return fmt.Errorf("%w: channel: missing", ErrInvalidMessage)
	}
	if m.Text == "" && len(m.Blocks) == 0 {
		return fmt.Errorf("%w: text and blocks: missing", ErrInvalidMessage)
	}
	if m.ThreadTS != "" && !tsPattern.MatchString(m.ThreadTS) {
		return fmt.Errorf("%w: thread ts %q: want a message timestamp", ErrInvalidMessage, m.ThreadTS)
	}
	if len(m.Blocks) > maxBlocks {
		return fmt.Errorf("%w: %d blocks: at most %d", ErrInvalidMessage, len(m.Blocks), maxBlocks)
	}
	for i, b := range m.Blocks {
		if err := b.validate(); err != nil {
			return fmt.Errorf("block %d: %w", i, err)
		}
	}
	return nil
}

type postMessageRequest struct {
	Channel        string  `json:"channel"`
	Text           string  `json:"text,omitempty"`
	Blocks         []Block `json:"blocks,omitempty"`
	ThreadTS       string  `json:"thread_ts,omitempty"`
	ReplyBroadcast bool    `json:"reply_broadcast,omitempty"`
	// Links and media in Vigil's messages are not worth a preview.
	UnfurlLinks bool      `json:"unfurl_links"`
	UnfurlMedia bool      `json:"unfurl_media"`
	Metadata    *Metadata `json:"metadata,omitempty"`
}

// updateRequest always sends blocks: an update without them would keep
// the old ones (an approval card's buttons).
type updateRequest struct {
	Channel string  `json:"channel"`
	TS      string  `json:"ts"`
	Text    string  `json:"text"`
	Blocks  []Block `json:"blocks"`
}

// PostMessage posts m and returns its ts, its id in the channel. A message
// that can be seen to be invalid is not sent and the error wraps
// ErrInvalidMessage.
func (c *Client) PostMessage(ctx context.Context, m Message) (string, error) {
	const method = "chat.postMessage"
	if err := m.validate(); err != nil {
		return "", fmt.Errorf("slack: %s: %w", method, err)
	}
	var out struct {
		TS string `json:"ts"`
	}
	err := c.call(ctx, method, postMessageRequest{
		Channel: m.Channel, Text: truncateRunes(m.Text, MaxTextLength), Blocks: m.Blocks,
		ThreadTS: m.ThreadTS, ReplyBroadcast: m.Broadcast && m.ThreadTS != "", Metadata: m.Metadata,
	}, &out)
	if err != nil {
		return "", err
	}
	if out.TS == "" {
		return "", fmt.Errorf("slack: %s: the answer has no ts: %w", method, ErrUnreadableAnswer)
	}
	return out.TS, nil
}

// Posted is a message as History reads it.
type Posted struct {
	TS string `json:"ts"`
	// ThreadTS is the thread's parent's ts: its own on a parent, "" on a
	// message without replies.
	ThreadTS string    `json:"thread_ts"`
	Metadata *Metadata `json:"metadata"`
}

// HistoryQuery is what History reads.
type HistoryQuery struct {
	Channel string
	// Thread, if set, reads the replies in the thread of that message
	// (conversations.replies, the parent first) instead of the channel
	// (conversations.history, newest first).
	Thread string
	// Oldest: messages posted at or after it only.
	Oldest time.Time
	// Cursor is the page after the one that named it (HistoryPage.Next).
	Cursor string
}

// HistoryPage is a page of History.
type HistoryPage struct {
	Messages []Posted
	// Next is the cursor of the next page, "" on the last.
	Next string
}

// historyLimit is a page's size: Slack's advice is at most 200.
const historyLimit = 200

// History reads a page of q's messages, their metadata included. It needs
// the history scope of the conversation's kind (channels:history,
// groups:history, im:history); without it, an *APIError "missing_scope".
func (c *Client) History(ctx context.Context, q HistoryQuery) (HistoryPage, error) {
	method := "conversations.history"
	v := url.Values{
		"channel": {q.Channel}, "include_all_metadata": {"true"}, "inclusive": {"true"},
		"limit": {strconv.Itoa(historyLimit)},
	}
	if q.Thread != "" {
		if !tsPattern.MatchString(q.Thread) {
			return HistoryPage{}, fmt.Errorf("slack: conversations.replies: %w: ts %q: want a message timestamp", ErrInvalidMessage, q.Thread)
		}
		method = "conversations.replies"
		v.Set("ts", q.Thread)
	}
	if !q.Oldest.IsZero() {
		v.Set("oldest", fmt.Sprintf("%d.%06d", q.Oldest.Unix(), q.Oldest.Nanosecond()/1000))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	var out struct {
		Messages         []Posted `json:"messages"`
		ResponseMetadata struct {
			NextCursor string `json:"next_cursor"`
		} `json:"response_metadata"`
	}
	if err := c.send(ctx, method, "application/x-www-form-urlencoded", []byte(v.Encode()), &out); err != nil {
		return HistoryPage{}, err
	}
	return HistoryPage{Messages: out.Messages, Next: out.ResponseMetadata.NextCursor}, nil
}

// Update replaces the text and blocks of message ts of channel (no
// blocks: none).
func (c *Client) Update(ctx context.Context, channel, ts, text string, blocks []Block) error {
	const method = "chat.update"
	m := Message{Channel: channel, Text: text, Blocks: blocks}
	if err := m.validate(); err != nil {
		return fmt.Errorf("slack: %s: %w", method, err)
	}
	if !tsPattern.MatchString(ts) {
		return fmt.Errorf("slack: %s: %w: ts %q: want a message timestamp", method, ErrInvalidMessage, ts)
	}
	if blocks == nil {
		blocks = []Block{}
	}
	return c.call(ctx, method, updateRequest{Channel: channel, TS: ts, Text: truncateRunes(text, MaxTextLength), Blocks: blocks}, &struct{}{})
}

// WorkspaceURL is the URL of the token's workspace
// (https://example.slack.com/), as auth.test names it: the base of its
// messages' links.
func (c *Client) WorkspaceURL(ctx context.Context) (string, error) {
	const method = "auth.test"
	var out struct {
		URL string `json:"url"`
	}
	if err := c.call(ctx, method, struct{}{}, &out); err != nil {
		return "", err
	}
	if out.URL == "" {
		return "", fmt.Errorf("slack: %s: the answer has no url", method)
	}
	return out.URL, nil
}

// answer is the part of every Web API answer Vigil reads.
type answer struct {
	OK               bool   `json:"ok"`
	Error            string `json:"error"`
	Warning          string `json:"warning"`
	ResponseMetadata struct {
		Messages []string `json:"messages"`
	} `json:"response_metadata"`
}

// call posts req to method as JSON and decodes the answer into out,
// waiting out short rate limits.
func (c *Client) call(ctx context.Context, method string, req, out any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("slack: %s: encode request: %w", method, err)
	}
	return c.send(ctx, method, "application/json; charset=utf-8", body, out)
}

// send posts body of contentType to method and decodes the answer into
// out, waiting out short rate limits. The read methods take a form only:
// Slack ignores their arguments in JSON.
func (c *Client) send(ctx context.Context, method, contentType string, body []byte, out any) error {
	for try := 1; ; try++ {
		err := c.do(ctx, method, contentType, body, out)
		wait := RetryAfter(err)
		if wait == 0 || wait > c.maxWait || try == maxTries {
			return err
		}
		c.logger.DebugContext(ctx, "slack rate limited, waiting", "method", method, "retry_after", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("slack: %s: waiting out a rate limit: %w", method, &transportError{ctx.Err()})
		case <-t.C:
		}
	}
}

func (c *Client) do(ctx context.Context, method, contentType string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+"/"+method, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("slack: %s: build request: %w", method, err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+c.token)

	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.logger.DebugContext(ctx, "slack request failed", "method", method, "duration", time.Since(start), "error", err)
		return fmt.Errorf("slack: %s: %w", method, &transportError{err})
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("slack: %s: read answer (HTTP %d): %w", method, resp.StatusCode, &transportError{err})
	}
	c.logger.DebugContext(ctx, "slack request done", "method", method, "status", resp.StatusCode, "duration", time.Since(start))

	var a answer
	decodeErr := json.Unmarshal(data, &a)
	if resp.StatusCode == http.StatusTooManyRequests {
		return &APIError{Method: method, StatusCode: resp.StatusCode, Code: a.Error, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	}
	if decodeErr != nil || (!a.OK && a.Error == "") {
		if resp.StatusCode/100 == 2 {
			return fmt.Errorf("slack: %s: HTTP %d with an answer that is not the Web API's: %w", method, resp.StatusCode, ErrUnreadableAnswer)
		}
		// A proxy's error page: judge by the status.
		return &APIError{Method: method, StatusCode: resp.StatusCode}
	}
	if !a.OK {
		return &APIError{Method: method, StatusCode: resp.StatusCode, Code: a.Error, Messages: a.ResponseMetadata.Messages}
	}
	if a.Warning != "" {
		c.logger.DebugContext(ctx, "slack warning", "method", method, "warning", a.Warning)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("slack: %s: decode result: %w: %w", method, ErrUnreadableAnswer, err)
	}
	return nil
}

// retryAfter reads a Retry-After header in seconds: 1s when it is missing
// or unreadable (Slack always sends one), and never more than
// maxRetryAfter.
func retryAfter(h string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	switch {
	case err != nil || n < 1:
		return time.Second
	case n > int(maxRetryAfter/time.Second):
		return maxRetryAfter
	}
	return time.Duration(n) * time.Second
}
