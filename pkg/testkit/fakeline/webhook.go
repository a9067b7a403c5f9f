package fakeline

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Send posts events to handler as LINE posts a webhook: {"destination",
// "events"} signed with X-Line-Signature, the channel secret's
// HMAC-SHA256 of the body in base64. It returns the handler's answer.
func (s *Server) Send(t testing.TB, handler http.Handler, destination string, events ...map[string]any) *httptest.ResponseRecorder {
	t.Helper()
	body, err := json.Marshal(map[string]any{"destination": destination, "events": events})
	if err != nil {
		t.Fatalf("fakeline: encode webhook: %v", err)
		return nil
	}
	return s.SendRaw(handler, body, Sign(s.opts.ChannelSecret, body))
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

// Sign is LINE's signature of body with secret.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
