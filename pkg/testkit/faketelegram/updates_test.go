package faketelegram_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
)

// updateIDs returns the update_id of each update.
func updateIDs(t *testing.T, updates []any) []int64 {
	t.Helper()
	ids := make([]int64, len(updates))
	for i, u := range updates {
		id, err := u.(map[string]any)["update_id"].(json.Number).Int64()
		require.NoError(t, err)
		ids[i] = id
	}
	return ids
}

// polled is the outcome of a getUpdates call made in the background.
type polled struct {
	status int
	body   map[string]any
	err    error
}

// pollAsync starts getUpdates in the background and waits until the fake
// holds it. The request outlives the test that started it.
func pollAsync(t *testing.T, s *faketelegram.Server, fields map[string]any) <-chan polled {
	t.Helper()
	done := startPoll(s, fields)
	require.Eventually(t, s.PollHeld, 5*time.Second, time.Millisecond)
	return done
}

// startPoll calls getUpdates in the background.
func startPoll(s *faketelegram.Server, fields map[string]any) <-chan polled {
	done := make(chan polled, 1)
	go func() {
		var p polled
		body, err := json.Marshal(fields)
		var req *http.Request
		if err == nil {
			// Not the test's context: the request outlives the test on purpose.
			req, err = http.NewRequestWithContext(context.Background(), http.MethodPost, s.URL()+"/bot"+s.Token()+"/getUpdates", bytes.NewReader(body))
		}
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			var resp *http.Response
			resp, err = http.DefaultClient.Do(req)
			if err == nil {
				p.status = resp.StatusCode
				dec := json.NewDecoder(resp.Body)
				dec.UseNumber()
				err = errors.Join(dec.Decode(&p.body), resp.Body.Close())
			}
		}
		p.err = err
		done <- p
	}()
	return done
}

func TestGetUpdatesOffsetAndLimit(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	card := sendCard(t, s, chatID)
	var ids []int64
	for range 4 {
		ids = append(ids, s.Press(t, card, "approve:7", alice).UpdateID)
	}
	require.Greater(t, ids[0], int64(1), "update ids do not start at 1")
	require.Equal(t, []int64{ids[0] + 1, ids[0] + 2, ids[0] + 3}, ids[1:])

	require.Equal(t, ids, updateIDs(t, getUpdates(t, s, map[string]any{})), "unconfirmed updates come again")
	require.Equal(t, ids[:2], updateIDs(t, getUpdates(t, s, map[string]any{"limit": 2})))
	require.Equal(t, ids[:1], updateIDs(t, getUpdates(t, s, map[string]any{"limit": 0})), "limit is at least 1")
	require.Equal(t, ids[1:], updateIDs(t, getUpdates(t, s, map[string]any{"offset": ids[1]})), "offset confirms what came before")
	require.Equal(t, ids[1:], updateIDs(t, getUpdates(t, s, map[string]any{})), "confirmed updates are forgotten")
	require.Equal(t, ids[1:], updateIDs(t, getUpdates(t, s, map[string]any{"offset": ids[3] + 5})), "an offset past the end reads from the oldest and confirms nothing")
	require.Equal(t, ids[3:], updateIDs(t, getUpdates(t, s, map[string]any{"offset": -1})), "a negative offset keeps the last updates")
	require.Empty(t, getUpdates(t, s, map[string]any{"offset": ids[3] + 1}))
	require.Empty(t, getUpdates(t, s, map[string]any{}), "all confirmed")
}

func TestLongPoll(t *testing.T) {
	t.Parallel()

	t.Run("held until a press", func(t *testing.T) {
		t.Parallel()
		s := newServer(t)
		card := sendCard(t, s, chatID)
		done := pollAsync(t, s, map[string]any{"timeout": 30})
		q := s.Press(t, card, "reject:7", alice)
		select {
		case got := <-done:
			require.NoError(t, got.err)
			require.Equal(t, 200, got.status, "%v", got.body)
			require.Equal(t, []int64{q.UpdateID}, updateIDs(t, got.body["result"].([]any)))
		case <-time.After(10 * time.Second):
			t.Fatal("the long poll was not woken by the press")
		}
	})

	t.Run("answers empty at the timeout", func(t *testing.T) {
		t.Parallel()
		s := newServer(t)
		start := time.Now()
		require.Empty(t, getUpdates(t, s, map[string]any{"timeout": 1}))
		require.GreaterOrEqual(t, time.Since(start), time.Second)
	})

	t.Run("a second long poll ends the first with 409", func(t *testing.T) {
		t.Parallel()
		s := newServer(t)
		card := sendCard(t, s, chatID)
		first := pollAsync(t, s, map[string]any{"timeout": 30})
		second := startPoll(s, map[string]any{"timeout": 30})
		got := <-first
		require.NoError(t, got.err)
		require.Equal(t, 409, got.status)
		require.Equal(t, errorBody(409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"), got.body)

		require.Eventually(t, s.PollHeld, 5*time.Second, time.Millisecond)
		q := s.Press(t, card, "approve:7", alice)
		got = <-second
		require.NoError(t, got.err)
		require.Equal(t, 200, got.status, "the newer poll goes on: %v", got.body)
		require.Equal(t, []int64{q.UpdateID}, updateIDs(t, got.body["result"].([]any)))
	})

	t.Run("setWebhook ends it with 409", func(t *testing.T) {
		t.Parallel()
		s := newServer(t)
		done := pollAsync(t, s, map[string]any{"timeout": 30})
		status, body := callMethod(t, s, "setWebhook", map[string]any{"url": "https://vigil.example.com/telegram"})
		require.Equal(t, 200, status, "%v", body)
		got := <-done
		require.NoError(t, got.err)
		require.Equal(t, errorBody(409, "Conflict: terminated by setWebhook request"), got.body)
	})

	t.Run("released when the test ends", func(t *testing.T) {
		t.Parallel()
		var done <-chan polled
		t.Run("inner", func(t *testing.T) {
			s := newServer(t)
			done = pollAsync(t, s, map[string]any{"timeout": 50})
		})
		select {
		case got := <-done:
			require.NoError(t, got.err)
			require.Equal(t, 200, got.status)
		case <-time.After(10 * time.Second):
			t.Fatal("a held poll kept the server from closing")
		}
	})
}

func TestGetUpdatesWhileWebhookIsSet(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	status, body := callMethod(t, s, "setWebhook", map[string]any{"url": "https://vigil.example.com/telegram"})
	require.Equal(t, 200, status, "%v", body)

	status, body = callMethod(t, s, "getUpdates", map[string]any{})
	require.Equal(t, 409, status)
	require.Equal(t, errorBody(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"), body)

	status, body = callMethod(t, s, "deleteWebhook", map[string]any{})
	require.Equal(t, 200, status, "%v", body)
	require.Empty(t, getUpdates(t, s, map[string]any{}))
}
