package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/pkg/pgcluster"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// The dashboard and the alert rules Vigil ships for watching itself (the
// chart mounts both).
const (
	dashboardFile = "../../../../deploy/helm/vigil/files/dashboards/vigil.json"
	rulesFile     = "../../../../deploy/helm/vigil/files/prometheus-rules.yaml"
)

// TestDashboardSchema decodes the shipped Grafana dashboard strictly into
// the Grafana Foundation SDK's dashboard type, with every panel's options
// and every query decoded by its plugin's type: a misspelt or misplaced
// field, a field of the wrong type or a missing required one fails, as the
// broken copies show.
func TestDashboardSchema(t *testing.T) {
	raw, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	plugins.RegisterDefaultPlugins()

	require.NoError(t, decodeDashboard(raw))
	// The SDK leaves a panel it decoded without error out of its value, so
	// what the queries are is read without it.
	d := readDashboard(t)
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
	}
	require.Equal(t, []string{"datasource", "namespace", "job", "instance"}, vars)
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		require.Equal(t, "${datasource}", p.Datasource.UID, "panel %q: the datasource is the variable's", p.Title)
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
	}

	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"unknown panel field", `"gridPos": {`, `"gridPosition": {`, "unexpected field 'gridPosition'"},
		{"unknown query field", `"expr": "sum by (source)`, `"expression": "sum by (source)`, "unexpected field 'expression'"},
		{"wrong type", `"schemaVersion": 39`, `"schemaVersion": "39"`, "schemaVersion"},
		{"unknown option", `"showLegend": true`, `"showLegends": true`, "unexpected field 'showLegends'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			broken := strings.Replace(string(raw), tc.from, tc.to, 1)
			require.NotEqual(t, string(raw), broken, "the dashboard has %s", tc.from)
			require.ErrorContains(t, decodeDashboard([]byte(broken)), tc.want)
		})
	}
}

// decodeDashboard decodes strictly. The SDK returns its error list typed
// even when empty, a non-nil error that reports nothing.
func decodeDashboard(raw []byte) error {
	// The classic dashboard model: what Grafana imports and its sidecar
	// provisions (dashboardv2 is the model of Grafana's resource API).
	var d dashboard.Dashboard //nolint:staticcheck // see above
	err := d.UnmarshalJSONStrict(raw)
	var errs cog.BuildErrors
	if errors.As(err, &errs) && len(errs) == 0 {
		return nil
	}
	return err
}

// grafanaDashboard is the part of the dashboard's JSON that holds PromQL.
type grafanaDashboard struct {
	Panels []struct {
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query string `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func readDashboard(t *testing.T) grafanaDashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	var d grafanaDashboard
	require.NoError(t, json.Unmarshal(raw, &d))
	return d
}

// dashboardExprs is the PromQL of every panel's queries.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	var exprs []string
	for _, p := range readDashboard(t).Panels {
		for _, q := range p.Targets {
			exprs = append(exprs, q.Expr)
		}
	}
	return exprs
}

// TestPrometheusRules checks the shipped alert rules with the real
// promtool (Debian package prometheus, `make deps`) and runs their unit
// tests (prometheus-rules.test.yaml beside them). Every rule has a
// severity, a summary, a description and a runbook entry in
// docs/production.md that its runbook_url points at.
func TestPrometheusRules(t *testing.T) {
	docs, err := os.ReadFile("../../../../docs/production.md")
	require.NoError(t, err)
	const runbooks = "https://github.com/vigil-ops/vigil/blob/main/docs/production.md#"
	for _, r := range readRules(t) {
		require.Contains(t, []string{"critical", "warning"}, r.Labels["severity"], r.Alert)
		require.NotEmpty(t, r.Annotations["summary"], r.Alert)
		require.NotEmpty(t, r.Annotations["description"], r.Alert)
		require.Equal(t, runbooks+strings.ToLower(r.Alert), r.Annotations["runbook_url"], r.Alert)
		require.Contains(t, string(docs), "\n### "+r.Alert+"\n", "%s has no runbook entry", r.Alert)
	}

	promtool, err := exec.LookPath("promtool")
	require.NoError(t, err, "promtool not found on PATH: install it with `apt-get install prometheus` (or run `make deps`)")
	for _, args := range [][]string{
		{"check", "rules", "--lint=all", "--lint-fatal", rulesFile},
		{"test", "rules", strings.TrimSuffix(rulesFile, ".yaml") + ".test.yaml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
		require.Contains(t, string(out), "SUCCESS")
	}
}

// TestMonitoringMetricsExist runs Vigil, takes an alert through to an
// incident and a Telegram message, has a webhook without credentials
// refused, and scrapes /metrics: every metric that a dashboard query, a
// dashboard variable or an alert rule selects, as Prometheus's parser reads
// them, must be one Vigil exported (histograms by their _bucket, _sum and
// _count), or `up`, which Prometheus records for every target it scrapes.
func TestMonitoringMetricsExist(t *testing.T) {
	exprs := slices.Concat(dashboardExprs(t), dashboardVariableExprs(t), ruleExprs(t))
	selected := promqlMetrics(t, exprs)
	for i, e := range exprs {
		require.NotEmpty(t, selected[i], "%q selects no metric", e)
	}

	v := startVigil(t)
	webhook := "http://" + v.HTTPAddr() + "/api/v1/webhooks/alertmanager"
	require.Equal(t, http.StatusAccepted, postWebhook(t, webhook, webhookBody(1, 1), "Bearer "+adminToken))
	require.Equal(t, http.StatusUnauthorized, postWebhook(t, webhook, webhookBody(2, 1), ""))
	require.Eventually(t, func() bool { return len(v.incidents(t)) == 1 }, 30*time.Second, 200*time.Millisecond)
	v.telegram.WaitForMessages(t, 1, 30*time.Second)

	// Counters with labels appear once counted: the scrape is retried until
	// the last of them (the delivery's) is there.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		exported := scrapeMetricNames(c, "http://"+v.HTTPAddr()+"/metrics")
		for i, e := range exprs {
			for _, name := range selected[i] {
				assert.True(c, exported[name] || name == "up", "%s, selected by %q, is not in Vigil's /metrics", name, e)
			}
		}
	}, 30*time.Second, 500*time.Millisecond)
}

// dashboardVariableExprs is the selector of every dashboard variable
// that queries Prometheus (label_values(selector, label)).
func dashboardVariableExprs(t *testing.T) []string {
	t.Helper()
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)
	var exprs []string
	for _, v := range readDashboard(t).Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Query)
		require.NotNil(t, m, "variable %s: want label_values(selector, label), got %q", v.Name, v.Query)
		exprs = append(exprs, m[1])
	}
	return exprs
}

// ruleExprs is the expression of every alert rule.
func ruleExprs(t *testing.T) []string {
	t.Helper()
	var exprs []string
	for _, r := range readRules(t) {
		exprs = append(exprs, r.Expr)
	}
	return exprs
}

type alertRule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func readRules(t *testing.T) []alertRule {
	t.Helper()
	raw, err := os.ReadFile(rulesFile)
	require.NoError(t, err)
	var f struct {
		Groups []struct {
			Name  string      `json:"name"`
			Rules []alertRule `json:"rules"`
		} `json:"groups"`
	}
	require.NoError(t, yaml.UnmarshalStrict(raw, &f))
	var rules []alertRule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	require.NotEmpty(t, rules)
	return rules
}

// grafanaVariable is a variable in a dashboard query: $name or ${name}.
var grafanaVariable = regexp.MustCompile(`\$\{?\w+\}?`)

// promqlMetrics returns, for each expression, the metric names its
// selectors select, read by Prometheus's own parser (tools/promql, a
// module of its own). Dashboard variables are replaced first, as Grafana
// does: its own ($__rate_interval, $__range) by a duration, the
// dashboard's by a regular expression matching anything.
func promqlMetrics(t *testing.T, exprs []string) [][]string {
	t.Helper()
	in := make([]string, len(exprs))
	for i, e := range exprs {
		in[i] = grafanaVariable.ReplaceAllStringFunc(e, func(v string) string {
			if strings.HasPrefix(strings.Trim(v, "${}"), "__") {
				return "5m"
			}
			return ".*"
		})
	}
	body, err := json.Marshal(in)
	require.NoError(t, err)
	cmd := exec.Command("go", "run", ".")
	cmd.Dir = "../../../../tools/promql"
	cmd.Env = append(os.Environ(), "GOWORK=off")
	cmd.Stdin = bytes.NewReader(body)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "tools/promql: %s", stderr.String())
	var names [][]string
	require.NoError(t, json.Unmarshal(out, &names))
	require.Len(t, names, len(exprs))
	return names
}

// scrapeMetricNames is the names of the samples at url, in the
// Prometheus text format.
func scrapeMetricNames(c *assert.CollectT, url string) map[string]bool {
	names := map[string]bool{}
	for series := range scrapeSamples(c, url, "") {
		name, _, _ := strings.Cut(series, "{")
		names[name] = true
	}
	return names
}

// scrapeSamples is the value of each series at url whose metric name is
// name (every series for ""), by the series as exposed.
func scrapeSamples(c *assert.CollectT, url, name string) map[string]string {
	resp, err := http.Get(url)
	require.NoError(c, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(c, err)
	samples := map[string]string{}
	for line := range strings.Lines(string(body)) {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		series := line[:i]
		if n, _, _ := strings.Cut(series, "{"); name == "" || n == name {
			samples[series] = line[i+1:]
		}
	}
	return samples
}

func postWebhook(t *testing.T, url string, body []byte, authorization string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// vigil_dependency_up follows the dependency: 1 while monitor's Postgres
// answers, 0 once it is stopped, and 1 again when it is back; NATS, up all
// along, stays 1.
func TestDependencyUpFollowsPostgres(t *testing.T) {
	// Postgres runs as its own user when the test runs as root: it must be
	// able to enter the directory (t.TempDir's parent is private).
	dir, err := os.MkdirTemp("", "vigil-dependency-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	dataDir := filepath.Join(dir, "data")
	pg, err := pgcluster.Start(t.Context(), pgcluster.Options{DataDir: dataDir, Settings: map[string]string{"fsync": "off"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pg.Stop(context.Background()) })
	dsn := pg.DSN("postgres")
	nc, js := testkit.LockedNATS(t).Conn(t, "monitor")
	a := runApp(t, app.Options{
		Services: []string{"monitor"}, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminToken: adminToken,
	}, app.Deps{DatabaseURL: dsn, NATS: nc, JetStream: js, Logger: testkit.Logger(t), Keys: testKeys(t).Verifier()})
	metrics := "http://" + a.HTTPAddr() + "/metrics"
	up := func(postgres, nats string) func(c *assert.CollectT) {
		return func(c *assert.CollectT) {
			got := scrapeSamples(c, metrics, "vigil_dependency_up")
			assert.Equal(c, map[string]string{
				`vigil_dependency_up{dependency="nats",vigil_service="monitor"}`:     nats,
				`vigil_dependency_up{dependency="postgres",vigil_service="monitor"}`: postgres,
			}, got)
		}
	}
	require.EventuallyWithT(t, up("1", "1"), 10*time.Second, 100*time.Millisecond)

	require.NoError(t, pg.Stop(t.Context()))
	require.EventuallyWithT(t, up("0", "1"), 30*time.Second, 200*time.Millisecond)

	pg, err = pgcluster.Start(t.Context(), pgcluster.Options{DataDir: dataDir, Settings: map[string]string{"fsync": "off"}})
	require.NoError(t, err)
	require.Equal(t, dsn, pg.DSN("postgres"), "back on the same socket")
	require.EventuallyWithT(t, up("1", "1"), 30*time.Second, 200*time.Millisecond)
}
