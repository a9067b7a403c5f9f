package route_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/notify/route"
)

// fv is a server.FieldViolation, short for the tables.
type fv struct{ Field, Description string }

func violations(t *testing.T, err error) []fv {
	t.Helper()
	if err == nil {
		return nil
	}
	var bad *server.BadRequestError
	require.ErrorAs(t, err, &bad)
	out := make([]fv, len(bad.Violations))
	for i, v := range bad.Violations {
		out[i] = fv(v)
	}
	return out
}

func TestCompileRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mutate func(*notifyv1.RoutingConfig)
		want   []fv
	}{
		{"valid", nil, nil},
		{"no root", func(c *notifyv1.RoutingConfig) { c.Route = nil }, []fv{
			{"route", "is required: the root route, whose receivers hear what no other route takes"},
		}},
		{"conditions on the root", func(c *notifyv1.RoutingConfig) {
			c.Route.Teams = []string{"x"}
			c.Route.Matchers = []string{`a="b"`}
		}, []fv{
			{"route.teams", "the root route matches everything: put conditions on its routes"},
			{"route.matchers", "the root route matches everything: put conditions on its routes"},
		}},
		{"unknown channel", func(c *notifyv1.RoutingConfig) { c.Route.Routes[1].Receivers = []string{"team-b", "nope"} }, []fv{
			{"route.routes[1].receivers[1]", "no channel named nope"},
		}},
		{"channel twice, empty channel", func(c *notifyv1.RoutingConfig) { c.Route.Receivers = []string{"default", "default", ""} }, []fv{
			{"route.receivers[1]", "default is listed twice"},
			{"route.receivers[2]", "is empty"},
		}},
		{"bad matchers", func(c *notifyv1.RoutingConfig) {
			c.Route.Routes[0].Matchers = []string{`alertname="X"`, `alertname=~"("`, `=x`, ``}
		}, []fv{
			{"route.routes[0].matchers[1]", `"alertname=~\"(\"": `},
			{"route.routes[0].matchers[2]", `"=x": `},
			{"route.routes[0].matchers[3]", `"": no matcher`},
		}},
		{"bad duration", func(c *notifyv1.RoutingConfig) { c.Route.Routes[0].RepeatInterval = "4 hours" }, []fv{
			{"route.routes[0].repeat_interval", `"4 hours": want a duration as 30m, 4h or 1d (0: never)`},
		}},
		{"bad priority, severity, kind", func(c *notifyv1.RoutingConfig) {
			c.Route.Routes[0].Priorities = []string{"P1", "high"}
			c.Route.Routes[0].Severities = []string{"Critical"}
			c.Route.Routes[0].Kinds = []string{"incident.opened", "incident.closed", "repair.*", "cluster.*"}
		}, []fv{
			{"route.routes[0].priorities[1]", `"high": want one of [P0 P1 P2 P3]`},
			{"route.routes[0].severities[0]", `"Critical": want one of [critical warning info]`},
			{"route.routes[0].kinds[1]", `unknown kind "incident.closed": `},
			{"route.routes[0].kinds[3]", `unknown kind "cluster.*": `},
		}},
		{"empty team, app, namespace", func(c *notifyv1.RoutingConfig) {
			c.Route.Routes[0].Teams = []string{""}
			c.Route.Routes[0].Apps = []string{"shop", ""}
			c.Route.Routes[0].Namespaces = []string{""}
		}, []fv{
			{"route.routes[0].teams[0]", "is empty"},
			{"route.routes[0].apps[1]", "is empty"},
			{"route.routes[0].namespaces[0]", "is empty"},
		}},
		{"bad language and zone", func(c *notifyv1.RoutingConfig) {
			c.Route.Language = "fr"
			c.Route.Routes[1].TimeZone = "Mars/Olympus"
		}, []fv{
			{"route.language", `"fr": want one of [en zh-TW]`},
			{"route.routes[1].time_zone", `"Mars/Olympus": not an IANA time zone (as Asia/Taipei)`},
		}},
		{"unknown template set", func(c *notifyv1.RoutingConfig) {
			c.Route.Templates = "terse"
			c.Route.Routes[0].Templates = "shouty"
		}, []fv{
			{"route.routes[0].templates", `"shouty": no such template set`},
		}},
		{"too deep", func(c *notifyv1.RoutingConfig) {
			r := c.Route.Routes[0]
			for range 20 {
				child := &notifyv1.Route{Kinds: []string{"incident.*"}}
				r.Routes = []*notifyv1.Route{child}
				r = child
			}
		}, []fv{
			{"route.routes[0]" + strings.Repeat(".routes[0]", 14) + ".routes", "routes nest at most 16 deep"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := base()
			if tc.mutate != nil {
				tc.mutate(cfg)
			}
			tree, err := route.Compile(cfg, channels, sets)
			got := violations(t, err)
			require.Len(t, got, len(tc.want), "%v", got)
			for i := range tc.want {
				require.Equal(t, tc.want[i].Field, got[i].Field)
				require.True(t, strings.HasPrefix(got[i].Description, tc.want[i].Description), "%s: %q", got[i].Field, got[i].Description)
			}
			if tc.want != nil {
				require.Nil(t, tree)
			} else {
				require.NotNil(t, tree)
			}
		})
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	cfg, err := route.Parse([]byte(`
route:
  receivers: [default]
  repeat_interval: 4h
  routes:
    - name: payments
      teams: [team-a]
      matchers: ['severity=~"critical|warning"']
      receivers: [team-a]
      continue: true
      routes:
        - priorities: [P0]
          receivers: [pager]
`))
	require.NoError(t, err)
	require.Equal(t, "payments", cfg.GetRoute().GetRoutes()[0].GetName())
	require.True(t, cfg.GetRoute().GetRoutes()[0].GetContinue())
	require.Equal(t, []string{"pager"}, cfg.GetRoute().GetRoutes()[0].GetRoutes()[0].GetReceivers())
	_, err = route.Compile(cfg, channels, sets)
	require.NoError(t, err)
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, doc string
		want      []fv
	}{
		{"unknown fields with their path", `
route:
  receiver: default
  routes:
    - teams: [a]
    - team: b
      routes:
        - match_re: {a: b}
extra: 1
`, []fv{
			{"extra", "unknown field"},
			{"route.receiver", "unknown field"},
			{"route.routes[1].routes[0].match_re", "unknown field"},
			{"route.routes[1].team", "unknown field"},
		}},
		{"wrong type", "route:\n  teams: a\n", []fv{{"route", "proto"}}},
		{"not YAML", "route: [\n", []fv{{"route", "yaml: line 1"}}},
		{"too large", "route: {}\n#" + strings.Repeat("x", route.MaxFileSize), []fv{{"route", "the document is larger than"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := route.Parse([]byte(tc.doc))
			require.Nil(t, cfg)
			got := violations(t, err)
			require.Len(t, got, len(tc.want), "%v", got)
			for i := range tc.want {
				require.Equal(t, tc.want[i].Field, got[i].Field)
				require.Contains(t, got[i].Description, tc.want[i].Description)
			}
		})
	}
}
