package fakeslack

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// AckTimeout is how long Slack waits for the app to answer an interaction
// with HTTP 200; after that the person who pressed sees an error.
const AckTimeout = 3 * time.Second

var userIDPattern = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

// User is a person in the workspace.
type User struct {
	// ID is the user's id, "U" or "W" and upper-case letters and digits.
	ID       string
	Username string
}

// Interaction is a block_actions interaction Press posted, and how the app
// answered it.
type Interaction struct {
	User      User
	Channel   string
	MessageTS string
	// Button is the button pressed.
	Button      Button
	ActionTS    string
	TriggerID   string
	ResponseURL string
	// Payload is the block_actions JSON; Body is the form body posted,
	// "payload=" and the payload URL-encoded.
	Payload json.RawMessage
	Body    string
	// Timestamp and Signature are the X-Slack-Request-Timestamp and
	// X-Slack-Signature headers sent; empty with Unsigned.
	Timestamp string
	Signature string
	// StatusCode is the app's HTTP status, 0 when there was none within
	// AckTimeout.
	StatusCode   int
	ResponseBody string
	Elapsed      time.Duration
	// Err is why no answer came (a timeout after AckTimeout, a refused
	// connection), empty when one did.
	Err string
}

// Acknowledged reports whether the app answered 200 in time, which is
// what Slack requires.
func (i Interaction) Acknowledged() bool { return i.Err == "" && i.StatusCode == http.StatusOK }

// PressOption changes how Press signs the request, for tests of an app's
// verification.
type PressOption func(*pressConfig)

type pressConfig struct {
	secret      string
	signedAt    time.Time
	unsigned    bool
	responseURL string
}

// ResponseURLAt gives the interaction a response_url of base (a URL
// prefix such as "https://attacker.example/") instead of the fake's own,
// in a payload signed as any other: what an app sees when its signing
// secret leaked, and which it must not post to.
func ResponseURLAt(base string) PressOption {
	return func(c *pressConfig) { c.responseURL = base }
}

// SignWith signs with secret instead of the server's signing secret: a
// forged request.
func SignWith(secret string) PressOption { return func(c *pressConfig) { c.secret = secret } }

// SignedAt signs with the timestamp of t instead of now: a stale or
// replayed request when t is more than five minutes away.
func SignedAt(t time.Time) PressOption { return func(c *pressConfig) { c.signedAt = t } }

// Unsigned sends the request without X-Slack-Request-Timestamp and
// X-Slack-Signature.
func Unsigned() PressOption { return func(c *pressConfig) { c.unsigned = true } }

// Press simulates user pressing the button with actionID on msg (only its
// Channel and TS are read; the button must be on the message as it is
// now). It posts a block_actions payload to the interactivity URL the way
// Slack does: form-encoded as payload=<json>, signed with
// X-Slack-Signature v0 over "v0:<timestamp>:<body>", with a response_url
// served by the fake. It waits at most AckTimeout for the answer and
// reports a test error if the app took longer, since Slack gives up then;
// another status than 200 is recorded, not an error, so that tests of
// refusals can use Press. It fails the test if the press is impossible:
// no interactivity URL, no such message or button, or a bad user id.
func (s *Server) Press(t testing.TB, msg Message, actionID string, user User, opts ...PressOption) Interaction {
	t.Helper()
	cfg := pressConfig{secret: s.opts.SigningSecret, signedAt: time.Now()}
	for _, opt := range opts {
		opt(&cfg)
	}
	if !userIDPattern.MatchString(user.ID) {
		t.Fatalf("fakeslack: Press: user ID %q: want U or W and upper-case letters and digits", user.ID)
		return Interaction{}
	}
	in, payload, target, problem := s.prepareInteraction(msg, actionID, user)
	if problem != "" {
		t.Fatalf("fakeslack: Press: %s", problem)
		return Interaction{}
	}
	if cfg.responseURL != "" {
		in.ResponseURL = strings.TrimSuffix(cfg.responseURL, "/") + "/actions/" + s.opts.TeamID + "/1/" + randomToken()
		payload["response_url"] = in.ResponseURL
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		t.Fatalf("fakeslack: Press: %v", err)
		return Interaction{}
	}
	in.Payload = raw
	in.Body = "payload=" + url.QueryEscape(string(raw))
	if !cfg.unsigned {
		in.Timestamp = strconv.FormatInt(cfg.signedAt.Unix(), 10)
		in.Signature = sign(cfg.secret, in.Timestamp, in.Body)
	}
	late := s.post(t.Context(), target, &in)

	s.mu.Lock()
	s.interactions = append(s.interactions, in)
	s.notifyLocked()
	s.mu.Unlock()
	if late {
		t.Errorf("fakeslack: the app did not answer the interaction within %s; Slack requires HTTP 200 within 3 s and shows the user an error otherwise",
			AckTimeout)
	}
	return in
}

// prepareInteraction finds the message and button, registers a
// response_url, and builds the payload; it returns where to post it, or
// why the press is impossible.
func (s *Server) prepareInteraction(msg Message, actionID string, user User) (in Interaction, payload map[string]any, target, problem string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	target = s.opts.InteractivityURL
	if target == "" {
		return Interaction{}, nil, "", "no interactivity URL: set Options.InteractivityURL or call SetInteractivityURL"
	}
	m := s.messageLocked(msg.Channel, msg.TS)
	if m == nil || m.Deleted {
		return Interaction{}, nil, "", fmt.Sprintf("no message %s in channel %s", msg.TS, msg.Channel)
	}
	button, ok := m.Button(actionID)
	if !ok {
		ids := make([]string, len(m.Buttons))
		for i, b := range m.Buttons {
			ids[i] = strconv.Quote(b.ActionID)
		}
		return Interaction{}, nil, "", fmt.Sprintf("message %s in channel %s has no button with action_id %q; its buttons: [%s]",
			msg.TS, msg.Channel, actionID, strings.Join(ids, ", "))
	}
	ch, _ := s.channel(m.Channel)
	now := time.Now()
	s.lastTrigger++
	token := randomToken()
	s.responseURLs[token] = &responseURL{channel: m.Channel, ts: m.TS, created: now}
	in = Interaction{
		User: user, Channel: m.Channel, MessageTS: m.TS, Button: button,
		ActionTS:    fmt.Sprintf("%d.%06d", now.Unix(), now.Nanosecond()/1000),
		TriggerID:   fmt.Sprintf("%d.%d.%s", 7000000000+s.lastTrigger, 1000000000, token[:16]),
		ResponseURL: fmt.Sprintf("%s/actions/%s/%d/%s", s.srv.URL, s.opts.TeamID, 8000000000+s.lastTrigger, token),
	}
	container := map[string]any{"type": "message", "message_ts": m.TS, "channel_id": m.Channel, "is_ephemeral": false}
	if m.ThreadTS != "" {
		container["thread_ts"] = m.ThreadTS
	}
	action := map[string]any{
		"type": "button", "action_id": button.ActionID, "block_id": button.BlockID, "action_ts": in.ActionTS,
		"text": map[string]any{"type": "plain_text", "text": button.Text, "emoji": true},
	}
	if button.Value != "" {
		action["value"] = button.Value
	}
	if button.Style != "" {
		action["style"] = button.Style
	}
	payload = map[string]any{
		"type":                  "block_actions",
		"user":                  map[string]any{"id": user.ID, "username": user.Username, "name": user.Username, "team_id": s.opts.TeamID},
		"api_app_id":            s.opts.AppID,
		"token":                 DefaultVerificationToken,
		"container":             container,
		"trigger_id":            in.TriggerID,
		"team":                  map[string]any{"id": s.opts.TeamID, "domain": "vigil-test"},
		"enterprise":            nil,
		"is_enterprise_install": false,
		"channel":               map[string]any{"id": ch.ID, "name": ch.Name},
		"message":               s.messageJSON(*m),
		"state":                 map[string]any{"values": map[string]any{}},
		"response_url":          in.ResponseURL,
		"actions":               []any{action},
	}
	return in, payload, target, ""
}

// post sends the interaction and records the answer in in. It reports
// whether the app was too late: no answer within AckTimeout.
func (s *Server) post(ctx context.Context, target string, in *Interaction) (late bool) {
	ctx, cancel := context.WithTimeout(ctx, AckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(in.Body))
	if err != nil {
		in.Err = err.Error()
		return false
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	if in.Signature != "" {
		req.Header.Set("X-Slack-Request-Timestamp", in.Timestamp)
		req.Header.Set("X-Slack-Signature", in.Signature)
	}
	start := time.Now()
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		in.Elapsed, in.Err = time.Since(start), err.Error()
		return errors.Is(ctx.Err(), context.DeadlineExceeded)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	in.Elapsed, in.StatusCode, in.ResponseBody = time.Since(start), resp.StatusCode, string(body)
	if err != nil {
		in.Err = err.Error()
	}
	return in.Elapsed > AckTimeout
}

// Interactions returns the interactions Press posted, oldest first.
func (s *Server) Interactions() []Interaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Interaction(nil), s.interactions...)
}

// sign is Slack's request signature: v0= and the hex HMAC-SHA256, keyed
// with the signing secret, of "v0:<timestamp>:<body>".
func sign(secret, timestamp, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	_, _ = io.WriteString(mac, "v0:"+timestamp+":"+body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

func randomToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
