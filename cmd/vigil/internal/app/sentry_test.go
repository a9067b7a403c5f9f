package app_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/pkg/testkit/fakesentry"
)

// sentryFixtures are the Sentry payloads of the gateway's tests: one
// issue's life, written from Sentry's documented webhook examples.
const sentryFixtures = "../../../../services/gateway/internal/source/sentry/testdata/"

const sentrySecret = "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f"

// postSentry sends a fixture as Sentry would: signed with the
// integration's client secret, stamped now.
func (v *vigil) postSentry(t *testing.T, resource, fixture string) {
	t.Helper()
	body, err := os.ReadFile(sentryFixtures + fixture)
	require.NoError(t, err)
	status, out := fakesentry.Post(t, "http://"+v.HTTPAddr()+"/api/v1/webhooks/sentry", sentrySecret, resource, body)
	require.Equal(t, http.StatusAccepted, status, "%s: %s", fixture, out)
}

// onlyIncident waits until Vigil has one incident and it is as want says,
// and returns it.
func (v *vigil) onlyIncident(t *testing.T, want func(incidentJSON) bool, msg string) incidentJSON {
	t.Helper()
	var inc incidentJSON
	require.Eventually(t, func() bool {
		incs := v.incidents(t)
		if len(incs) == 1 {
			inc = incs[0]
		}
		return len(incs) == 1 && want(inc)
	}, 30*time.Second, 200*time.Millisecond, msg)
	return inc
}

// TestSentryIssueToIncident: one Sentry issue's life through the running
// pipeline: created, an alert rule's event and another error event of it
// are one alert of one incident (repeats deduplicated), the issue's
// resolution in Sentry resolves the incident, and its regression reopens
// it.
func TestSentryIssueToIncident(t *testing.T) {
	v := startVigil(t, func(o *app.Options) { o.Gateway.SentryClientSecret = sentrySecret })
	v.postSentry(t, "issue", "issue_created.json")
	v.postSentry(t, "event_alert", "event_alert_triggered.json")
	v.postSentry(t, "error", "error_created.json")

	// The three requests are counted on the one alert.
	inc := v.onlyIncident(t, func(inc incidentJSON) bool {
		var got struct {
			Incident struct {
				Alerts []struct {
					Count int `json:"count"`
				} `json:"alerts"`
			} `json:"incident"`
		}
		return v.get(t, "/api/v1/incidents/"+inc.ID, adminToken, &got) == http.StatusOK &&
			len(got.Incident.Alerts) == 1 && got.Incident.Alerts[0].Count == 3
	}, "want one incident of one alert, seen three times")
	assert.Equal(t, "INCIDENT_STATUS_OPEN", inc.Status)
	assert.Equal(t, 1, inc.AlertCount)
	assert.Equal(t, "SentryIssue", inc.Title)
	var got struct {
		Incident incidentJSON `json:"incident"`
	}
	require.Equal(t, http.StatusOK, v.get(t, "/api/v1/incidents/"+inc.ID, adminToken, &got))
	require.Len(t, got.Incident.Alerts, 1)
	assert.Equal(t, map[string]string{
		"alertname": "SentryIssue", "sentry_issue_id": "1170820242", "project": "payments", "app": "payments", "severity": "critical",
	}, got.Incident.Alerts[0].Alert.Labels)

	v.postSentry(t, "issue", "issue_resolved.json")
	v.onlyIncident(t, func(inc incidentJSON) bool {
		return inc.Status == "INCIDENT_STATUS_RESOLVED" && inc.FiringCount == 0
	}, "the issue's resolution resolves the incident")

	// The issue regresses (a new event after the resolution): the
	// incident reopens. The old resolution sent again (a replay) starts
	// before that firing: the monitor ignores it.
	v.postSentry(t, "issue", "issue_unresolved.json")
	v.onlyIncident(t, func(inc incidentJSON) bool {
		return inc.Status == "INCIDENT_STATUS_OPEN" && inc.FiringCount == 1
	}, "the regression reopens the incident")
	v.postSentry(t, "issue", "issue_resolved.json")
	require.Never(t, func() bool {
		incs := v.incidents(t)
		return len(incs) != 1 || incs[0].FiringCount != 1
	}, 3*time.Second, 200*time.Millisecond, "a replayed resolution does not resolve the regression")
}

// sentryBenchEvent is an alert rule's event as Sentry sends it.
var sentryBenchEvent = sync.OnceValue(func() []byte {
	b, err := os.ReadFile(sentryFixtures + "event_alert_triggered.json")
	if err != nil {
		panic(err)
	}
	return b
})

// sentryBenchBody is request n: an alert rule's event of issue n, so
// that each request is an alert of its own. Sentry sends one per request.
func sentryBenchBody(n int64, _ int) []byte {
	return bytes.Replace(sentryBenchEvent(), []byte(`"issue_id": "1170820242"`), []byte(fmt.Sprintf(`"issue_id": "%d"`, n)), 1)
}

// sentryBenchSign signs body as Sentry does.
func sentryBenchSign(r *http.Request, body []byte) {
	r.Header = fakesentry.Request(r.Context(), r.URL.String(), sentrySecret, "event_alert", body, time.Now()).Header
}
