package ingest_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/alertlabel"
	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/subject"
	"github.com/vigil-ops/vigil/services/gateway/internal/ingest"
)

// published records what would be on the bus.
type published struct{ events []bus.Event }

func (p *published) Publish(_ context.Context, es ...bus.Event) error {
	p.events = append(p.events, es...)
	return nil
}

// owners knows two teams' apps, as the gateway's projection would.
func owners(context.Context, ...map[string]string) (*subject.Index, error) {
	return subject.NewIndex([]subject.App{
		{Name: "shop", Team: "team-a", Cluster: "kind", Namespace: "shop"},
		{Name: "payments", Team: "team-b", Cluster: "kind", Namespace: "payments"},
	}, nil), nil
}

func alert(labels map[string]string) *typesv1.Alert {
	return &typesv1.Alert{Labels: labels, StartsAt: timestamppb.Now()}
}

// A team's key sends its team's alerts and nobody's; one alert of another
// team's subject — whatever app label it carries — refuses the batch,
// nothing is published, and the refusal is counted. A key of every team
// sends anything. The fingerprint is the labels', whatever was sent.
func TestIngestKeysStayInTheirTeam(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	pub := &published{}
	in := ingest.New(pub, owners, reg)
	teamA := auth.WithPrincipal(context.Background(), auth.Principal{Kind: auth.KindKey, Name: "a-alerts", Scopes: []auth.Scope{auth.ScopeIngest}, Teams: []string{"team-a"}})
	admin := auth.WithPrincipal(context.Background(), auth.Principal{Kind: auth.KindKey, Name: "am", Scopes: []auth.Scope{auth.ScopeIngest}, AllTeams: true})

	own := alert(map[string]string{"alertname": "ShopSlow", "namespace": "shop"})
	stray := alert(map[string]string{"alertname": "NginxDown", "namespace": "ingress-nginx"})
	require.NoError(t, in.Ingest(teamA, []*typesv1.Alert{own, stray}))
	require.Len(t, pub.events, 2)

	spoofed := alert(map[string]string{"alertname": "KubePodCrashLooping", "namespace": "payments", "deployment": "payments", "app": "shop"})
	spoofed.Fingerprint = "0123456789abcdef"
	err := in.Ingest(teamA, []*typesv1.Alert{alert(map[string]string{"alertname": "X", "namespace": "shop"}), spoofed})
	var fe *ingest.ForeignError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, 1, fe.Index)
	require.Equal(t, "team-b", fe.Subject.GetTeam())
	require.Contains(t, err.Error(), "key:a-alerts may send only its own team's alerts")
	require.Len(t, pub.events, 2, "nothing of the refused batch is published")
	require.InDelta(t, 2.0, refused(t, reg), 0, "the batch's alerts counted")

	require.NoError(t, in.Ingest(admin, []*typesv1.Alert{spoofed}))
	require.Len(t, pub.events, 3, "a key of every team sends anything")
	require.Equal(t, alertlabel.Fingerprint(spoofed.GetLabels()), spoofed.GetFingerprint(), "the labels' fingerprint, not the sender's")
}

func refused(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "vigil_gateway_alerts_refused_foreign_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("no refusal counter")
	return 0
}
