package fakewebhook_test

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/chat/webhook"
	"github.com/vigil-ops/vigil/pkg/testkit/fakewebhook"
)

// The sink accepts a signed request and refuses, recording nothing, one
// signed with another secret, a stale one, an unsigned one, and one whose
// delivery header is not its id.
func TestSinkVerifies(t *testing.T) {
	t.Parallel()
	const secret = "k"
	body := []byte(`{"version":1,"id":"a","kind":"incident.opened","text":"x"}`)
	for _, tc := range []struct {
		name     string
		sig      string
		delivery string
		want     int
	}{
		{"signed", webhook.Sign(secret, body, time.Now()), "a", http.StatusNoContent},
		{"other secret", webhook.Sign("other", body, time.Now()), "a", http.StatusUnauthorized},
		{"stale", webhook.Sign(secret, body, time.Now().Add(-10*time.Minute)), "a", http.StatusUnauthorized},
		{"unsigned", "", "a", http.StatusUnauthorized},
		{"delivery is not the id", webhook.Sign(secret, body, time.Now()), "b", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sink := fakewebhook.New(t, secret)
			req, err := http.NewRequest(http.MethodPost, sink.URL, bytes.NewReader(body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(webhook.SignatureHeader, tc.sig)
			req.Header.Set(webhook.DeliveryHeader, tc.delivery)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, tc.want, resp.StatusCode)
			if tc.want == http.StatusNoContent {
				require.Len(t, sink.Accepted(), 1)
				assert.Equal(t, "a", sink.Accepted()[0].Body.ID)
				return
			}
			assert.Empty(t, sink.Accepted())
		})
	}
}
