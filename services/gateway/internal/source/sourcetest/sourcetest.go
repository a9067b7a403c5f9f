// Package sourcetest holds what the tests of every webhook source do the
// same way: post a body to a source.Handler, read the answer's problem
// document, edit a fixture, read what reached the ALERTS stream.
package sourcetest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/server"
)

// Post sends body to h as a webhook, with setAuth's credentials (none when
// nil). An answer of 400 and above must be problem JSON; it is returned
// decoded.
func Post(t *testing.T, h http.Handler, body string, setAuth func(*http.Request)) (*httptest.ResponseRecorder, server.Problem) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/v1/webhooks/test", strings.NewReader(body))
	if setAuth != nil {
		setAuth(req)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var p server.Problem
	if rec.Code >= 400 {
		require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
		assert.Equal(t, rec.Code, p.Status)
	}
	return rec, p
}

// Bearer sets tok as the Bearer token.
func Bearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

// Edit decodes a JSON body, lets change modify it, and encodes it again.
func Edit(t testing.TB, body []byte, change func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	change(m)
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

// AlertAt is alert i of a body Edit decoded.
func AlertAt(m map[string]any, i int) map[string]any { return m["alerts"].([]any)[i].(map[string]any) }

// Stored is every event on the ALERTS stream, unwrapped from their
// batches, in order.
func Stored(t *testing.T, js jetstream.JetStream) []bus.Event {
	t.Helper()
	ctx := context.Background()
	stream, err := js.Stream(ctx, "ALERTS")
	require.NoError(t, err)
	c, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	msgs, err := c.FetchNoWait(1000)
	require.NoError(t, err)
	var events []bus.Event
	for msg := range msgs.Messages() {
		es, err := bus.Decode(msg.Subject(), msg.Data())
		require.NoError(t, err)
		events = append(events, es...)
	}
	return events
}
