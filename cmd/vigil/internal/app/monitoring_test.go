package app_test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/stretchr/testify/require"
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
	var d dashboard.Dashboard
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
// tests (prometheus-rules.test.yaml beside them).
func TestPrometheusRules(t *testing.T) {
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
