package app_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
)

// An alert sent to the API that fires and resolves five times (Vigil's
// defaults: more than 4 cycles in 15 minutes) is told in Telegram as the
// incident opening, four resolutions and then once as flapping, in the
// incident's thread; two more cycles tell nothing more and leave the
// incident open and flapping.
func TestFlappingAlertToTelegram(t *testing.T) {
	v := startVigil(t)
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	send := func(cycle int, resolved bool) {
		t.Helper()
		status := `"status": "ALERT_STATUS_FIRING"`
		if resolved {
			status = `"status": "ALERT_STATUS_RESOLVED", "ends_at": "` + time.Now().UTC().Format(time.RFC3339) + `"`
		}
		body := fmt.Sprintf(`{"alerts": [{"labels": {"alertname": "Flaky", "namespace": "shop", "severity": "warning"},
			"starts_at": %q, %s}]}`, start.Add(time.Duration(cycle)*time.Second).Format(time.RFC3339), status)
		req, err := http.NewRequest(http.MethodPost, "http://"+v.HTTPAddr()+"/api/v1/alerts", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Less(t, resp.StatusCode, 300, "POST /api/v1/alerts")
	}
	type state struct {
		Status      string `json:"status"`
		FiringCount int    `json:"firing_count"`
		Flapping    bool   `json:"flapping"`
	}
	now := func() state {
		var list struct {
			Incidents []state `json:"incidents"`
		}
		require.Equal(t, http.StatusOK, v.get(t, "/api/v1/incidents", adminToken, &list))
		if len(list.Incidents) != 1 {
			return state{}
		}
		return list.Incidents[0]
	}
	// cycle fires and resolves the alert, each applied before the next
	// is sent.
	cycle := func(i int, after state) {
		t.Helper()
		send(i, false)
		require.Eventually(t, func() bool { return now().FiringCount == 1 }, 30*time.Second, 50*time.Millisecond, "cycle %d fired", i)
		send(i, true)
		require.Eventually(t, func() bool { return now() == after }, 30*time.Second, 50*time.Millisecond, "cycle %d resolved", i)
	}
	for i := 1; i <= 4; i++ {
		cycle(i, state{Status: "INCIDENT_STATUS_RESOLVED"})
	}
	cycle(5, state{Status: "INCIDENT_STATUS_OPEN", Flapping: true})

	told := func(prefix string) []faketelegram.Message {
		var out []faketelegram.Message
		for _, m := range v.telegram.Messages() {
			if strings.Contains(m.PlainText, prefix) {
				out = append(out, m)
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(told("Flapping: Flaky in shop")) == 1 }, 30*time.Second, 50*time.Millisecond)
	opened := told("Incident opened: Flaky in shop")
	require.Len(t, opened, 1)
	assert.Equal(t, opened[0].MessageID, told("Flapping: Flaky in shop")[0].ReplyToMessageID, "in the incident's thread")
	require.Eventually(t, func() bool { return len(told("Incident resolved: Flaky in shop")) == 4 }, 30*time.Second, 50*time.Millisecond)

	cycle(6, state{Status: "INCIDENT_STATUS_OPEN", Flapping: true})
	cycle(7, state{Status: "INCIDENT_STATUS_OPEN", Flapping: true})
	require.Never(t, func() bool {
		return len(told("Incident resolved: Flaky in shop")) != 4 || len(told("Flapping: Flaky in shop")) != 1
	}, 3*time.Second, 100*time.Millisecond, "nothing more told while it flaps")
}
