package testkit_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit"
)

// The real Prometheus scrapes the target it is given and answers queries
// about it.
func TestPrometheusScrapes(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "testkit_answer", Help: "the answer"})
	g.Set(42)
	reg.MustRegister(g)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)

	p := testkit.Prometheus(t, testkit.PrometheusScrapeConfig(srv.Listener.Addr().String(), "200ms"))
	require.Eventually(t, func() bool {
		resp, err := http.Get(p.URL + "/api/v1/query?query=" + url.QueryEscape(`testkit_answer{job="test"}`))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct {
			Data struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if json.NewDecoder(resp.Body).Decode(&body) != nil || len(body.Data.Result) != 1 {
			return false
		}
		return body.Data.Result[0].Value[1] == "42"
	}, 30*time.Second, 100*time.Millisecond)
}
