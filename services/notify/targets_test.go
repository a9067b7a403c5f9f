package notify

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/route"
)

// endpoints is a Directory of channels, none of them anyone's own.
type endpoints []*channel.Endpoint

func (es endpoints) All() []*channel.Endpoint { return es }

func (es endpoints) Channel(name string) (*channel.Endpoint, bool) {
	i := slices.IndexFunc(es, func(e *channel.Endpoint) bool { return e.Name == name })
	if i < 0 {
		return nil, false
	}
	return es[i], true
}

func (endpoints) Personal(string) []*channel.Endpoint { return nil }

// directory is a Directory with personal channels.
type directory struct {
	endpoints
	personal map[string][]*channel.Endpoint
}

func (d directory) Personal(user string) []*channel.Endpoint { return d.personal[user] }

func names(eps []*channel.Endpoint) []string {
	out := make([]string, 0, len(eps))
	for _, ep := range eps {
		out = append(out, ep.Name)
	}
	return out
}

func TestTargets(t *testing.T) {
	t.Parallel()
	ep := func(name string) *channel.Endpoint { return &channel.Endpoint{Name: name} }
	dir := directory{
		endpoints: endpoints{ep("telegram"), ep("slack"), ep("webhook")},
		personal:  map[string][]*channel.Endpoint{"alice": {ep("alice-line"), ep("slack")}},
	}
	tree, err := route.Compile(parseDoc(t, `
route:
  receivers: [telegram]
  routes:
    - kinds: [deploy.*]
      apps: [shop]
      receivers: [slack, gone]
      language: zh-TW
      time_zone: Asia/Taipei
`), func(string) bool { return true }, nil)
	require.NoError(t, err)

	escalated := &eventsv1.IncidentEscalated{
		Meta: bus.NewMeta("monitor", nil), Incident: &typesv1.Incident{Id: "i1", Team: "payments"},
		Channels: []string{"webhook", "nope", "webhook"}, Users: []string{"alice", "bob"},
	}
	deploy := &eventsv1.DeployFailed{Meta: bus.NewMeta("deploy", nil), App: "shop"}
	for _, tc := range []struct {
		name  string
		tree  *route.Tree
		event bus.Event
		want  []string
	}{
		{"no routes: every channel", nil, deploy, []string{"telegram", "slack", "webhook"}},
		{"escalation: its channels and its users' own, once each", tree, escalated, []string{"webhook", "alice-line", "slack"}},
		{"escalation without routes too", nil, escalated, []string{"webhook", "alice-line", "slack"}},
		{"a deploy by its app; a channel gone is skipped", tree, deploy, []string{"slack"}},
		{"another app's deploy: the default route", tree, &eventsv1.DeployFailed{Meta: bus.NewMeta("deploy", nil), App: "cart"}, []string{"telegram"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &Service{log: testkit.Logger(t), dir: dir}
			s.routes.current.Store(&routing{version: 1, tree: tc.tree})
			subject, err := bus.SubjectOf(tc.event)
			require.NoError(t, err)
			got, err := s.targets(context.Background(), note{event: tc.event, route: routeOf(subject, tc.event)})
			require.NoError(t, err)
			require.Equal(t, tc.want, names(got))
		})
	}

	// A route's locale is put on a copy of the channel, not on it.
	s := &Service{log: testkit.Logger(t), dir: dir}
	s.routes.current.Store(&routing{version: 1, tree: tree})
	got, err := s.targets(context.Background(), note{event: deploy, route: routeOf(bus.SubjectDeployFailed, deploy)})
	require.NoError(t, err)
	require.Equal(t, "zh-TW", got[0].Locale.Language)
	require.Equal(t, "Asia/Taipei", got[0].Locale.Zone.String())
	require.Empty(t, dir.endpoints[1].Locale.Language)
}

func TestRouteOf(t *testing.T) {
	t.Parallel()
	e := &eventsv1.IncidentOpened{Incident: &typesv1.Incident{
		Team: "payments", App: "shop", Namespace: "prod", Priority: typesv1.Priority_PRIORITY_P1, Severity: typesv1.Severity_SEVERITY_WARNING,
		GroupLabels: map[string]string{"alertname": "X", "namespace": "prod"},
		Alerts:      []*typesv1.IncidentAlert{{Alert: &typesv1.Alert{Labels: map[string]string{"alertname": "X", "pod": "p-1", "namespace": "other"}}}},
	}}
	require.Equal(t, route.Event{
		Kind: route.IncidentOpened, Team: "payments", App: "shop", Namespace: "prod", Priority: "P1", Severity: "warning",
		Labels: map[string]string{"alertname": "X", "namespace": "prod", "pod": "p-1"},
	}, routeOf(bus.SubjectIncidentOpened, e))
	require.Equal(t, route.Event{Kind: route.DeployStarted, App: "shop", Team: "payments"},
		routeOf("deploy.requested", &eventsv1.DeployRequested{App: "shop", Team: "payments"}))
	require.Equal(t, route.Event{Kind: route.Analysis}, routeOf(bus.SubjectAnalysisCompleted, &eventsv1.AnalysisCompleted{IncidentId: "i"}))
}
