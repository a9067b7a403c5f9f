package route_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	"github.com/vigil-ops/vigil/services/notify/route"
)

// channels are the channels that exist in these tests.
// sets are the template sets the tests know.
func sets(name string) bool { return name == "terse" || name == "verbose" }

func channels(name string) bool {
	switch name {
	case "default", "team-a", "team-b", "pager", "deploys", "audit":
		return true
	}
	return false
}

// base is a tree with a default receiver and one route per team.
func base() *notifyv1.RoutingConfig {
	return &notifyv1.RoutingConfig{Route: &notifyv1.Route{
		Receivers: []string{"default"},
		Routes: []*notifyv1.Route{
			{Name: "a", Teams: []string{"team-a"}, Receivers: []string{"team-a"}},
			{Name: "b", Teams: []string{"team-b"}, Receivers: []string{"team-b"}},
		},
	}}
}

func opened(team string) route.Event {
	return route.Event{Kind: route.IncidentOpened, Team: team, Labels: map[string]string{"alertname": "KubePodCrashLooping", "namespace": "payments"}}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mutate func(*notifyv1.Route)
		event  route.Event
		// want is the matched paths and the channels they name.
		want     []string
		channels []string
	}{
		{"team a", nil, opened("team-a"), []string{"route.routes[0]"}, []string{"team-a"}},
		{"team b", nil, opened("team-b"), []string{"route.routes[1]"}, []string{"team-b"}},
		{"no team: the default route", nil, opened(""), []string{"route"}, []string{"default"}},
		{"a team label does not make the team", nil, func() route.Event {
			e := opened("team-b")
			e.Labels["team"] = "team-a"
			return e
		}(), []string{"route.routes[1]"}, []string{"team-b"}},
		{"first match wins", func(r *notifyv1.Route) {
			r.Routes = append([]*notifyv1.Route{{Matchers: []string{`alertname="KubePodCrashLooping"`}, Receivers: []string{"pager"}}}, r.Routes...)
		}, opened("team-a"), []string{"route.routes[0]"}, []string{"pager"}},
		{"continue goes on to the next", func(r *notifyv1.Route) {
			r.Routes = append([]*notifyv1.Route{{Matchers: []string{`alertname="KubePodCrashLooping"`}, Receivers: []string{"pager"}, Continue: true}}, r.Routes...)
		}, opened("team-a"), []string{"route.routes[0]", "route.routes[1]"}, []string{"pager", "team-a"}},
		{"continue on the last match changes nothing", func(r *notifyv1.Route) { r.Routes[0].Continue = true }, opened("team-a"), []string{"route.routes[0]"}, []string{"team-a"}},
		{"regex matcher is anchored", func(r *notifyv1.Route) {
			r.Routes[0].Matchers = []string{`namespace=~"pay"`}
		}, opened("team-a"), []string{"route"}, []string{"default"}},
		{"regex matcher", func(r *notifyv1.Route) {
			r.Routes[0].Matchers = []string{`namespace=~"pay.*"`}
		}, opened("team-a"), []string{"route.routes[0]"}, []string{"team-a"}},
		{"negative matchers", func(r *notifyv1.Route) {
			r.Routes[0].Matchers = []string{`namespace!="payments"`}
			r.Routes[1].Teams = nil
			r.Routes[1].Matchers = []string{`alertname!~"Watchdog|InfoInhibitor"`}
		}, opened("team-a"), []string{"route.routes[1]"}, []string{"team-b"}},
		{"a missing label is empty", func(r *notifyv1.Route) {
			r.Routes[0].Matchers = []string{`severity=""`}
		}, opened("team-a"), []string{"route.routes[0]"}, []string{"team-a"}},
		{"nested: the deepest match", func(r *notifyv1.Route) {
			r.Routes[0].Routes = []*notifyv1.Route{
				{Priorities: []string{"P0"}, Receivers: []string{"pager"}},
				{Kinds: []string{"deploy.*"}, Receivers: []string{"deploys"}},
			}
		}, func() route.Event { e := opened("team-a"); e.Priority = "P0"; return e }(), []string{"route.routes[0].routes[0]"}, []string{"pager"}},
		{"nested: no child matches, the parent", func(r *notifyv1.Route) {
			r.Routes[0].Routes = []*notifyv1.Route{{Priorities: []string{"P0"}, Receivers: []string{"pager"}}}
		}, func() route.Event { e := opened("team-a"); e.Priority = "P1"; return e }(), []string{"route.routes[0]"}, []string{"team-a"}},
		{"unknown priority matches no priority list", func(r *notifyv1.Route) {
			r.Routes[0].Priorities = []string{"P0", "P1", "P2", "P3"}
		}, opened("team-a"), []string{"route"}, []string{"default"}},
		{"severity", func(r *notifyv1.Route) {
			r.Routes[0].Teams = nil
			r.Routes[0].Severities = []string{"critical"}
		}, func() route.Event { e := opened("team-b"); e.Severity = "critical"; return e }(), []string{"route.routes[0]"}, []string{"team-a"}},
		{"kind", func(r *notifyv1.Route) {
			r.Routes[0].Kinds = []string{"incident.resolved"}
		}, opened("team-a"), []string{"route"}, []string{"default"}},
		{"kind family", func(r *notifyv1.Route) {
			r.Routes[0].Kinds = []string{"incident.*"}
		}, opened("team-a"), []string{"route.routes[0]"}, []string{"team-a"}},
		{"app and namespace", func(r *notifyv1.Route) {
			r.Routes[0].Teams = nil
			r.Routes[0].Apps = []string{"shop"}
			r.Routes[0].Namespaces = []string{"prod"}
		}, route.Event{Kind: route.DeployFailed, App: "shop", Namespace: "prod"}, []string{"route.routes[0]"}, []string{"team-a"}},
		{"receivers are inherited", func(r *notifyv1.Route) {
			r.Routes[0].Routes = []*notifyv1.Route{{Kinds: []string{"incident.opened"}}}
		}, opened("team-a"), []string{"route.routes[0].routes[0]"}, []string{"team-a"}},
		{"a route without receivers takes the event from everyone", func(r *notifyv1.Route) {
			r.Receivers = nil
			r.Routes[0].Receivers = nil
		}, opened("team-a"), []string{"route.routes[0]"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := base()
			if tc.mutate != nil {
				tc.mutate(cfg.GetRoute())
			}
			tree, err := route.Compile(cfg, channels, sets)
			require.NoError(t, err)
			ms := tree.Match(tc.event)
			paths := make([]string, 0, len(ms))
			for _, m := range ms {
				paths = append(paths, m.Path)
				require.NotEmpty(t, m.Why, m.Path)
			}
			require.Equal(t, tc.want, paths)
			require.Equal(t, tc.channels, route.Receivers(ms))
		})
	}
}

func TestMatchWhy(t *testing.T) {
	t.Parallel()
	cfg := base()
	cfg.Route.Routes[0].Routes = []*notifyv1.Route{{Matchers: []string{`alertname=~"Kube.*"`}, Kinds: []string{"incident.opened"}, Receivers: []string{"pager"}}}
	tree, err := route.Compile(cfg, channels, sets)
	require.NoError(t, err)
	ms := tree.Match(opened("team-a"))
	require.Len(t, ms, 1)
	require.Equal(t, []string{"team is team-a", "kind is incident.opened", `labels match alertname=~"Kube.*"`}, ms[0].Why)
	require.Equal(t, []string{"default route"}, tree.Match(opened("team-c"))[0].Why)
}

func TestMatchInherits(t *testing.T) {
	t.Parallel()
	cfg := base()
	cfg.Route.RepeatInterval = "4h"
	cfg.Route.Language = "zh-TW"
	cfg.Route.Routes[1].RepeatInterval = "0"
	cfg.Route.Routes[1].TimeZone = "Asia/Taipei"
	cfg.Route.Templates = "verbose"
	cfg.Route.Routes[1].Templates = "terse"
	tree, err := route.Compile(cfg, channels, sets)
	require.NoError(t, err)

	a := tree.Match(opened("team-a"))[0]
	require.Equal(t, 4*time.Hour, a.RepeatInterval)
	require.Equal(t, "zh-TW", a.Language)
	require.Empty(t, a.TimeZone)
	b := tree.Match(opened("team-b"))[0]
	require.Zero(t, b.RepeatInterval)
	require.Equal(t, "zh-TW", b.Language)
	require.Equal(t, "Asia/Taipei", b.TimeZone)
	require.Equal(t, "verbose", a.Templates, "the root's set")
	require.Equal(t, "terse", b.Templates, "its own set over the root's")
}

func TestNilTreeRoutesNothing(t *testing.T) {
	t.Parallel()
	var tree *route.Tree
	require.Nil(t, tree.Match(opened("team-a")))
}

func TestKindOf(t *testing.T) {
	t.Parallel()
	require.Equal(t, route.DeployStarted, route.KindOf("deploy.requested"))
	require.Equal(t, route.RepairFailed, route.KindOf("repair.failed"))
}
