// Package webhook is notify's generic outgoing webhook: every message is
// one signed JSON POST to a URL of the user's (pkg/chat/webhook defines
// the body and the signature), for whatever a receiver does with it --
// an in-house chat bot, a ticketing system, a pager. A webhook has no
// thread or message to edit: a reply names its parent, a redrawn card
// names the message it edits, and the receiver does the rest.
package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	hook "github.com/vigil-ops/vigil/pkg/chat/webhook"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
)

// Name is the channel's name in the delivery log.
const Name = "webhook"

// DefaultTimeout bounds one request: a receiver that hangs costs this,
// then the message is retried.
const DefaultTimeout = 10 * time.Second

// maxResponse caps the response body read: only its start goes into the
// error, and a receiver answering with gigabytes gets no more attention.
const maxResponse = 64 << 10

// Options configure the webhook channel; it is off without a URL.
type Options struct {
	// URL receives the POSTs; https, except to localhost.
	URL string
	// Secret signs every request (X-Vigil-Signature).
	Secret string
	// Timeout bounds one request (default DefaultTimeout).
	Timeout time.Duration
}

// Validate reports options a user must fix.
func (o Options) Validate() error {
	switch {
	case o.URL == "" && o.Secret != "":
		return errors.New("VIGIL_WEBHOOK_URL: missing (VIGIL_WEBHOOK_SECRET is set)")
	case o.URL == "":
		return nil
	case o.Secret == "":
		return errors.New("VIGIL_WEBHOOK_SECRET: missing (VIGIL_WEBHOOK_URL is set): receivers verify every request with it")
	case o.Timeout < 0:
		return errors.New("webhook: Timeout: must not be negative")
	}
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" {
		// The URL may hold a token: it is not repeated.
		return errors.New("VIGIL_WEBHOOK_URL: not an absolute URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		return errors.New("VIGIL_WEBHOOK_URL: want https (http only to localhost): the messages name your systems and their failures")
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Open builds the channel; nil without a URL.
func (o Options) Open(deps channel.Deps) (*channel.Endpoint, error) {
	if o.URL == "" {
		return nil, nil
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, errors.New("VIGIL_WEBHOOK_URL: not an absolute URL")
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	client := http.Client{Timeout: timeout}
	if deps.HTTPClient != nil {
		client.Transport = deps.HTTPClient.Transport
	}
	// A redirect could take the signed messages somewhere the user did
	// not choose; it is answered as the failure it is.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	sum := sha256.Sum256([]byte(o.URL))
	return &channel.Endpoint{
		Name: Name,
		// The delivery log keeps the target: the URL itself may hold a
		// token, so it is its host and a digest.
		Target: u.Host + "#" + hex.EncodeToString(sum[:6]),
		// Every message's id is its delivery key's, which receivers
		// dedupe by (the body's id).
		Idempotent: true,
		Channel:    &Channel{url: o.URL, host: u.Host, secret: o.Secret, client: &client, now: time.Now},
	}, nil
}

// Channel POSTs to one URL.
type Channel struct {
	url, host, secret string
	client            *http.Client
	now               func() time.Time
}

// Send posts m, naming parent when it is a reply, and returns the id it
// carried.
func (c *Channel) Send(ctx context.Context, m message.Message, parent string) (string, error) {
	b, err := body(ctx, m)
	if err != nil {
		return "", err
	}
	b.Parent = parent
	return b.ID, c.post(ctx, b)
}

// Edit posts m as the redrawing of message id.
func (c *Channel) Edit(ctx context.Context, id string, m message.Message) error {
	b, err := body(ctx, m)
	if err != nil {
		return err
	}
	b.Edits = id
	return c.post(ctx, b)
}

// body is m as the webhook's JSON says it, under the id of its delivery.
func body(ctx context.Context, m message.Message) (hook.Body, error) {
	a := m.About
	id, err := messageID(ctx)
	if err != nil {
		return hook.Body{}, err
	}
	b := hook.Body{
		Version: hook.Version, ID: id, Kind: string(a.Kind), IncidentID: a.IncidentID, RepairID: a.RepairID,
		Severity: a.Severity, Title: a.Title, Broadcast: m.Broadcast,
	}
	text, card, ok := m.TextAndCard(Plain)
	b.Text = text
	if ok {
		b.Card = &hook.Card{
			Title: card.Title, Facts: fields(card.Facts), Figures: fields(card.Figures), Why: card.Why,
			Until: card.Until, Engine: card.Engine, Action: card.Action, Outcome: card.Outcome,
		}
		if b.Title == "" {
			b.Title = card.Title
		}
	}
	return b, nil
}

// idSpace is the namespace of the ids derived from delivery keys.
var idSpace = uuid.MustParse("0196f0c4-3a51-7d2e-9b1a-5f3c8e2d4a70")

// messageID is the id of the message ctx's delivery sends: derived from
// the delivery's key, the same on every attempt at it, so a receiver
// drops a repeat (one whose answer was lost); a message sent outside a
// delivery gets a new one.
func messageID(ctx context.Context) (string, error) {
	if key := channel.DeliveryKey(ctx); key != "" {
		return uuid.NewSHA1(idSpace, []byte(key)).String(), nil
	}
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("webhook: message id: %w", err)
	}
	return id.String(), nil
}

func fields(fs []message.Fact) []hook.Field {
	out := make([]hook.Field, 0, len(fs))
	for _, f := range fs {
		out = append(out, hook.Field{Label: f.Label, Value: f.Value})
	}
	return out
}

// post sends b, signed, and judges the answer: 2xx is sent; 429, 5xx and
// no answer may pass on a retry; anything else (a 4xx, a redirect) will
// not.
func (c *Channel) post(ctx context.Context, b hook.Body) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// "<" stays "<": the body is data for a program, not HTML.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b); err != nil {
		return fmt.Errorf("webhook: encode: %w", err)
	}
	payload := buf.Bytes()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("webhook: request to %s: %w", c.host, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Vigil-Webhook/1")
	req.Header.Set(hook.DeliveryHeader, b.ID)
	req.Header.Set(hook.SignatureHeader, hook.Sign(c.secret, payload, c.now()))
	resp, err := c.client.Do(req)
	if err != nil {
		// *url.Error repeats the URL, which may hold a token.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &channel.Error{Err: fmt.Errorf("webhook: POST to %s: %w", c.host, err), Retry: true}
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	e := &channel.Error{
		Err:    fmt.Errorf("webhook: POST to %s: %s: %s", c.host, resp.Status, firstLine(snippet)),
		Status: resp.StatusCode,
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		e.Retry = true
		e.RetryAfter = RetryAfter(resp.Header.Get("Retry-After"), c.now())
	}
	return e
}

// firstLine is the start of a receiver's answer, for the attempt log.
func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// RetryAfter is how long a Retry-After value asks to wait from now: a
// number of seconds or an HTTP date; 0 when there is none or it is past.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(s, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}
