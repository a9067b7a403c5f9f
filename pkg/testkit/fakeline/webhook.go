package fakeline

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ReplyTokenTTL is how long a reply token works after its event.
const ReplyTokenTTL = time.Minute

// Event is a webhook event as LINE sends it (a JSON object).
type Event map[string]any

// EventID is the event's webhookEventId.
func (e Event) EventID() string { id, _ := e["webhookEventId"].(string); return id }

// ReplyToken is the event's reply token.
func (e Event) ReplyToken() string { tok, _ := e["replyToken"].(string); return tok }

// Redelivered is e sent again, as LINE does when it did not see the
// webhook answered: the same webhookEventId, deliveryContext.isRedelivery.
func (e Event) Redelivered() Event {
	r := maps.Clone(e)
	r["deliveryContext"] = map[string]any{"isRedelivery": true}
	return r
}

// Text is a text message event from user in a 1:1 chat with the bot,
// with a reply token of its own.
func (s *Server) Text(user, text string) Event {
	e := s.event("message", user)
	e["message"] = map[string]any{"type": "text", "id": s.nextID(), "quoteToken": "q", "text": text}
	return e
}

// Postback is a postback event: user pressed a button carrying data, in
// a 1:1 chat with the bot, or, with group set, in that group.
func (s *Server) Postback(user, data string, group ...string) Event {
	e := s.event("postback", user)
	if len(group) > 0 {
		e["source"] = map[string]any{"type": "group", "groupId": group[0], "userId": user}
	}
	e["postback"] = map[string]any{"data": data}
	return e
}

func (s *Server) event(kind, user string) Event {
	tok := randomHex(16)
	s.mu.Lock()
	s.replyTokens[tok] = &replyToken{issued: s.now(), to: user}
	s.mu.Unlock()
	return Event{
		"type": kind, "mode": "active", "timestamp": time.Now().UnixMilli(),
		"webhookEventId": "01" + strings.ToUpper(randomHex(12)), "deliveryContext": map[string]any{"isRedelivery": false},
		"source": map[string]any{"type": "user", "userId": user}, "replyToken": tok,
	}
}

func (s *Server) nextID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastID++
	return strconv.FormatInt(s.lastID, 10)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// body is the webhook body of events, as LINE posts it.
func body(t testing.TB, events []Event) []byte {
	t.Helper()
	if events == nil {
		events = []Event{}
	}
	b, err := json.Marshal(map[string]any{"destination": "U0123456789abcdef0123456789abcdef", "events": events})
	if err != nil {
		t.Fatalf("fakeline: encode webhook: %v", err)
	}
	return b
}

// Send posts events to handler as LINE posts a webhook: {"destination",
// "events"} signed with X-Line-Signature, the channel secret's
// HMAC-SHA256 of the body in base64. It returns the handler's answer.
func (s *Server) Send(t testing.TB, handler http.Handler, events ...Event) *httptest.ResponseRecorder {
	t.Helper()
	b := body(t, events)
	return s.SendRaw(handler, b, Sign(s.opts.ChannelSecret, b))
}

// SendRaw posts body to handler with signature as X-Line-Signature (""
// for none): for tests of bad and tampered signatures.
func (s *Server) SendRaw(handler http.Handler, body []byte, signature string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if signature != "" {
		req.Header.Set("X-Line-Signature", signature)
	}
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	return rec
}

// Post posts events to url over HTTP, signed, as LINE's platform does,
// and returns the status and body of the answer.
func (s *Server) Post(t testing.TB, url string, events ...Event) (int, string) {
	t.Helper()
	b := body(t, events)
	return s.PostRaw(t, url, b, Sign(s.opts.ChannelSecret, b))
}

// PostRaw posts body to url with signature as X-Line-Signature ("" for
// none).
func (s *Server) PostRaw(t testing.TB, url string, body []byte, signature string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("fakeline: %v", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "LineBotWebhook/2.0")
	if signature != "" {
		req.Header.Set("X-Line-Signature", signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("fakeline: post webhook: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// Sign is LINE's signature of body with secret.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
