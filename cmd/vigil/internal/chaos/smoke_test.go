package chaos_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"

	"github.com/vigil-ops/vigil/pkg/testkit"
)

// amAlert is one alert of an Alertmanager webhook (payload version 4).
type amAlert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
}

// postAlerts posts alerts of one group (alertname, namespace) to the
// gateways' Alertmanager webhook and returns the HTTP status, 0 when no
// answer came.
func postAlerts(client *http.Client, url, name, ns string, alerts []amAlert) int {
	status := "firing"
	if alerts[0].Status == "resolved" {
		status = "resolved"
	}
	body, _ := json.Marshal(map[string]any{
		"version": "4", "status": status, "receiver": "vigil",
		"groupKey":     fmt.Sprintf(`{}:{alertname=%q, namespace=%q}`, name, ns),
		"groupLabels":  map[string]string{"alertname": name, "namespace": ns},
		"commonLabels": map[string]string{"alertname": name, "namespace": ns},
		"externalURL":  "http://alertmanager.example.com", "alerts": alerts,
	})
	req, err := http.NewRequest(http.MethodPost, url+"/api/v1/webhooks/alertmanager", bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestSplitModeSmoke runs Vigil as a cluster would (every service its own
// `vigil serve` process, two replicas each, an external nats-server with
// the shipped config and Postgres): an alert at either gateway becomes an
// incident, announced once in Telegram and once in Slack.
func TestSplitModeSmoke(t *testing.T) {
	s := StartSplit(t, SplitOptions{Replicas: 2, Binary: vigilBinary(t, testkit.RepoRoot(t))})
	conn, ctx := s.Conn(t)

	require.Equal(t, http.StatusAccepted, postAlerts(http.DefaultClient, s.GatewayURL(), "SmokeTest", "shop", []amAlert{{
		Status: "firing", Labels: map[string]string{"alertname": "SmokeTest", "namespace": "shop", "pod": "a"}, StartsAt: time.Now(),
	}}))

	incidents := monitorv1.NewIncidentServiceClient(conn)
	var inc *typesv1.Incident
	require.Eventually(t, func() bool {
		resp, err := incidents.ListIncidents(ctx, &monitorv1.ListIncidentsRequest{})
		if err != nil || len(resp.GetIncidents()) != 1 {
			return false
		}
		inc = resp.GetIncidents()[0]
		return true
	}, time.Minute, 100*time.Millisecond, "the incident, through either gateway")
	require.Equal(t, "SmokeTest in shop", inc.GetTitle())
	require.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_OPEN, inc.GetStatus())

	require.Eventually(t, func() bool {
		n := s.announced(inc.GetTitle())
		return n["telegram"] > 0 && n["slack"] > 0
	}, time.Minute, 100*time.Millisecond, "announced in Telegram and Slack")
	// Nothing more comes: two replicas of notify announce it once.
	time.Sleep(2 * time.Second)
	require.Equal(t, map[string]int{"telegram": 1, "slack": 1}, s.announced(inc.GetTitle()))
}

// post is a message a chat accepted, whichever the chat.
type post struct {
	// ID is the message's id as notify records it.
	ID, Text, Thread string
}

// Posts are the messages each fake chat accepted, by channel name.
func (s *Split) Posts() map[string][]post {
	out := map[string][]post{}
	for _, m := range s.Telegram.Messages() {
		out["telegram"] = append(out["telegram"], post{ID: fmt.Sprint(m.MessageID), Text: m.PlainText, Thread: fmt.Sprint(m.ReplyToMessageID)})
	}
	for _, m := range s.Slack.Messages() {
		out["slack"] = append(out["slack"], post{ID: m.TS, Text: m.Text, Thread: m.ThreadTS})
	}
	return out
}

// announced is how many messages in each chat contain text.
func (s *Split) announced(text string) map[string]int {
	out := map[string]int{"telegram": 0, "slack": 0}
	for ch, ps := range s.Posts() {
		for _, p := range ps {
			if strings.Contains(p.Text, text) {
				out[ch]++
			}
		}
	}
	return out
}
