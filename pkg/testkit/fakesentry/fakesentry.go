// Package fakesentry sends webhooks as Sentry's integration platform
// sends them, for tests of what receives them: a JSON body, the resource
// in Sentry-Hook-Resource, the time of sending in Sentry-Hook-Timestamp
// (Unix seconds) and Sentry-Hook-Signature, the hex HMAC-SHA256 of the
// raw body under the internal integration's client secret. Sentry signs
// the body alone, not the headers.
package fakesentry

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Sign is the Sentry-Hook-Signature of body under secret.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Request is a webhook of resource carrying body, sent at at and signed
// with secret ("": unsigned), to url.
func Request(ctx context.Context, url, secret, resource string, body []byte, at time.Time) *http.Request {
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		panic(err) // a test's own URL
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Request-ID", "c2d7ad6d-1ed1-4bd5-9ef4-4b0b7b5d3e43")
	r.Header.Set("Sentry-Hook-Resource", resource)
	r.Header.Set("Sentry-Hook-Timestamp", strconv.FormatInt(at.Unix(), 10))
	if secret != "" {
		r.Header.Set("Sentry-Hook-Signature", Sign(secret, body))
	}
	return r
}

// Post sends a webhook of resource to url, as Sentry does now, and
// returns the answer's status and body.
func Post(t testing.TB, url, secret, resource string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(Request(t.Context(), url, secret, resource, body, time.Now()))
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(out)
}
