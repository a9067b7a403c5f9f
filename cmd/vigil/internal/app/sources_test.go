package app_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/pkg/chat/webhook"
)

// TestDeclaredSourceOpensAnIncident is a declared source end to end: an
// admin declares the shipped Uptime Kuma mapping through the API, Uptime
// Kuma's down heartbeat, signed with the source's secret, opens an
// incident and its up heartbeat resolves it.
func TestDeclaredSourceOpensAnIncident(t *testing.T) {
	v := startVigil(t, func(o *app.Options) { o.Gateway.EncryptionKey = testKey() })
	const secret = "uptime-kuma-secret-0123456789"
	examples := "../../../../docs/sources/examples/uptime-kuma/"
	mappingYAML, err := os.ReadFile(examples + "mapping.yaml")
	require.NoError(t, err)
	var mapping map[string]any
	require.NoError(t, yaml.Unmarshal(mappingYAML, &mapping))

	post := func(path, token string, headers map[string]string, body []byte) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, "http://"+v.HTTPAddr()+path, bytes.NewReader(body))
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for k, val := range headers {
			req.Header.Set(k, val)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		return resp.StatusCode
	}
	declare, err := json.Marshal(map[string]any{
		"source": map[string]any{"name": "uptime", "type": "generic", "team": "payments", "auth": "hmac", "generic": map[string]any{"mapping": mapping}},
		"secret": secret,
	})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, post("/api/v1/sources", adminToken, nil, declare))

	deliver := func(file string) int {
		body, err := os.ReadFile(examples + file)
		require.NoError(t, err)
		return post("/api/v1/webhooks/sources/uptime", "", map[string]string{
			webhook.SignatureHeader: webhook.Sign(secret, body, time.Now()), "Content-Type": "application/json",
		}, body)
	}
	require.Equal(t, http.StatusAccepted, deliver("down.json"))
	var opened incidentJSON
	require.Eventually(t, func() bool {
		incs := v.incidents(t)
		if len(incs) != 1 {
			return false
		}
		opened = incs[0]
		return opened.Status == "INCIDENT_STATUS_OPEN"
	}, 30*time.Second, 50*time.Millisecond, "the down heartbeat opens an incident")
	var inc incidentJSON
	require.Equal(t, http.StatusOK, v.get(t, "/api/v1/incidents/"+opened.ID, adminToken, &struct {
		Incident *incidentJSON `json:"incident"`
	}{&inc}))
	require.Len(t, inc.Alerts, 1)
	require.Equal(t, "shop API", inc.Alerts[0].Alert.Labels["monitor"])

	// A repeat is the same alert (its labels); the up heartbeat resolves it.
	require.Equal(t, http.StatusAccepted, deliver("down.json"))
	require.Equal(t, http.StatusAccepted, deliver("up.json"))
	require.Eventually(t, func() bool {
		incs := v.incidents(t)
		return len(incs) == 1 && incs[0].Status == "INCIDENT_STATUS_RESOLVED" && incs[0].AlertCount == 1
	}, 30*time.Second, 50*time.Millisecond, "the up heartbeat resolves the incident; the repeat made no second alert")
}
