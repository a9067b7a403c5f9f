package grpcapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/appteam"
	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/subject"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/monitor/internal/grpcapi"
	"github.com/vigil-ops/vigil/services/monitor/internal/incident"
	"github.com/vigil-ops/vigil/services/monitor/internal/monitortest"
	"github.com/vigil-ops/vigil/services/monitor/internal/postgres"
)

// An incident belongs to its subject's team: for an app Vigil deploys, its
// app's, as app_teams (the projection of the deploy service's app events)
// says: other teams do not list it and are refused it; an incident of a
// namespace no team claims is for admins and the default team; the newest
// event wins, whatever order they arrive in.
func TestIncidentsBelongToTheirAppsTeam(t *testing.T) {
	t.Parallel()
	pool, _ := monitortest.Pool(t)
	ctx := context.Background()
	c := incident.NewCorrelator(postgres.Store{}, incident.Options{UpdateInterval: -1}, testkit.Logger(t))
	api := grpcapi.NewIncidentServer(pool, c)
	t0 := time.Now()
	require.NoError(t, appteam.SetApp(ctx, pool, appteam.App{Name: "shop", Team: "payments", Cluster: "kind", Namespace: "shop"}, t0))
	require.NoError(t, appteam.SetApp(ctx, pool, appteam.App{Name: "blog", Team: "web", Cluster: "kind", Namespace: "blog"}, t0))
	// An older event arriving late changes nothing.
	require.NoError(t, appteam.SetApp(ctx, pool, appteam.App{Name: "shop", Team: "web", Cluster: "kind", Namespace: "shop"}, t0.Add(-time.Minute)))

	fire := func(app string) string {
		a := &typesv1.Alert{
			Fingerprint: "fp-" + app, Labels: map[string]string{"alertname": "Down", "namespace": app, "app": app},
			StartsAt: timestamppb.New(t0.Add(-time.Minute)),
		}
		require.NoError(t, db.InTx(ctx, pool, func(tx pgx.Tx) error {
			return c.AlertFired(ctx, tx, &eventsv1.AlertFired{Meta: bus.NewMeta("test", nil), Alert: a})
		}))
		var id string
		require.NoError(t, pool.QueryRow(ctx, `SELECT id::text FROM incidents WHERE namespace = $1`, app).Scan(&id))
		return id
	}
	shop, blog, stray := fire("shop"), fire("blog"), fire("stray")

	as := func(p auth.Principal) context.Context { return auth.WithPrincipal(ctx, p) }
	payments := as(auth.Principal{Kind: auth.KindUser, Name: "olga", Role: auth.RoleOperator, Teams: []string{"payments"}})
	web := as(auth.Principal{Kind: auth.KindUser, Name: "oscar", Role: auth.RoleOperator, Teams: []string{"web"}})
	defaultTeam := as(auth.Principal{Kind: auth.KindUser, Name: "dora", Role: auth.RoleViewer, Teams: []string{"sre"}, Unowned: true})
	admin := as(auth.Principal{Kind: auth.KindUser, Name: "alice", Role: auth.RoleAdmin, AllTeams: true, Unowned: true})

	listed := func(ctx context.Context) []string {
		r, err := api.ListIncidents(ctx, &monitorv1.ListIncidentsRequest{})
		require.NoError(t, err)
		var ids []string
		for _, i := range r.GetIncidents() {
			ids = append(ids, i.GetId())
		}
		return ids
	}
	require.ElementsMatch(t, []string{shop}, listed(payments))
	require.ElementsMatch(t, []string{blog}, listed(web))
	require.ElementsMatch(t, []string{stray}, listed(defaultTeam))
	require.ElementsMatch(t, []string{shop, blog, stray}, listed(admin))

	_, err := api.GetIncident(payments, &monitorv1.GetIncidentRequest{Id: shop})
	require.NoError(t, err)
	_, err = api.GetIncident(web, &monitorv1.GetIncidentRequest{Id: shop})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	require.ErrorContains(t, err, "team payments")
	_, err = api.AcknowledgeIncident(web, &monitorv1.AcknowledgeIncidentRequest{Id: shop})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	_, err = api.ResolveIncident(web, &monitorv1.ResolveIncidentRequest{Id: shop})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	_, err = api.ListAlerts(web, &monitorv1.ListAlertsRequest{IncidentId: shop})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	_, err = api.ListAlerts(payments, &monitorv1.ListAlertsRequest{IncidentId: shop})
	require.NoError(t, err)
	_, err = api.ListAlerts(payments, &monitorv1.ListAlertsRequest{})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "searching every alert needs every team")
	_, err = api.GetIncident(payments, &monitorv1.GetIncidentRequest{Id: stray})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "an app no team claims is nobody's")
	_, err = api.AcknowledgeIncident(payments, &monitorv1.AcknowledgeIncidentRequest{Id: shop})
	require.NoError(t, err)

	// The app moves to web: its incident with it. Then it is deleted: its
	// incident belongs to no team, and a late older event does not bring
	// the app back.
	require.NoError(t, appteam.SetApp(ctx, pool, appteam.App{Name: "shop", Team: "web", Cluster: "kind", Namespace: "shop"}, t0.Add(time.Minute)))
	require.ElementsMatch(t, []string{shop, blog}, listed(web))
	require.Empty(t, listed(payments))
	moved, err := api.GetIncident(admin, &monitorv1.GetIncidentRequest{Id: shop})
	require.NoError(t, err)
	require.Equal(t, "web", moved.GetIncident().GetTeam(), "shown with its owner now")
	require.NoError(t, appteam.Delete(ctx, pool, "shop", t0.Add(2*time.Minute)))
	require.NoError(t, appteam.SetApp(ctx, pool, appteam.App{Name: "shop", Team: "payments", Cluster: "kind", Namespace: "shop"}, t0.Add(90*time.Second)))
	require.ElementsMatch(t, []string{blog}, listed(web))
	require.ElementsMatch(t, []string{shop, stray}, listed(defaultTeam))
}

// Two teams in one cluster: shop is team-a's app, payments team-b's;
// logging is a namespace an admin mapped to team-c. Alerts as
// kube-prometheus sends them (no app label), with spoofed labels, and
// with none that Vigil can place: each incident belongs to its subject's
// owner, whatever the labels claim, and says where they disagreed.
func TestIncidentBelongsToItsSubject(t *testing.T) {
	t.Parallel()
	pool, _ := monitortest.Pool(t)
	ctx := context.Background()
	c := incident.NewCorrelator(postgres.Store{}, incident.Options{UpdateInterval: -1}, testkit.Logger(t))
	api := grpcapi.NewIncidentServer(pool, c)
	t0 := time.Now()
	require.NoError(t, appteam.SetApp(ctx, pool, appteam.App{Name: "shop", Team: "team-a", Cluster: "kind", Namespace: "shop"}, t0))
	require.NoError(t, appteam.SetApp(ctx, pool, appteam.App{Name: "payments", Team: "team-b", Cluster: "kind", Namespace: "payments"}, t0))
	require.NoError(t, appteam.SetNamespace(ctx, pool, subject.Mapping{Namespace: "logging", Team: "team-c"}, t0))

	fire := func(name string, labels map[string]string) *typesv1.Incident {
		labels["alertname"] = name
		a := &typesv1.Alert{Fingerprint: "fp-" + name, Labels: labels, StartsAt: timestamppb.New(t0.Add(-time.Minute))}
		require.NoError(t, db.InTx(ctx, pool, func(tx pgx.Tx) error {
			return c.AlertFired(ctx, tx, &eventsv1.AlertFired{Meta: bus.NewMeta("test", nil), Alert: a})
		}))
		var id string
		require.NoError(t, pool.QueryRow(ctx, `SELECT id::text FROM incidents WHERE group_labels->>'alertname' = $1`, name).Scan(&id))
		r, err := api.GetIncident(ctx, &monitorv1.GetIncidentRequest{Id: id})
		require.NoError(t, err)
		return r.GetIncident()
	}
	plain := fire("KubePodCrashLooping", map[string]string{"namespace": "payments", "deployment": "payments"})
	spoofed := fire("KubeDeploymentReplicasMismatch", map[string]string{"namespace": "payments", "deployment": "payments", "app": "shop"})
	mapped := fire("LokiRequestErrors", map[string]string{"namespace": "logging", "statefulset": "loki", "app": "shop"})
	stray := fire("NginxDown", map[string]string{"namespace": "ingress-nginx", "deployment": "controller"})

	require.Equal(t, "payments", plain.GetApp(), "kube-state-metrics has no app label: the namespace says whose")
	require.Equal(t, "team-b", plain.GetTeam())
	require.Equal(t, typesv1.Ownership_OWNERSHIP_APP_NAMESPACE, plain.GetSubject().GetOwnership())
	require.Equal(t, "Deployment", plain.GetSubject().GetKind())
	require.Equal(t, "kind", plain.GetSubject().GetCluster(), "the app's cluster")
	require.Empty(t, plain.GetSubject().GetMismatch())

	require.Equal(t, "payments", spoofed.GetApp(), "a label does not move an incident to another team")
	require.Equal(t, "team-b", spoofed.GetTeam())
	require.Contains(t, spoofed.GetSubject().GetMismatch(), "label app=shop names app shop (team team-a)")

	require.Empty(t, mapped.GetApp())
	require.Equal(t, "team-c", mapped.GetTeam())
	require.Equal(t, typesv1.Ownership_OWNERSHIP_NAMESPACE_MAPPING, mapped.GetSubject().GetOwnership())

	require.Empty(t, stray.GetTeam())
	require.Equal(t, typesv1.Ownership_OWNERSHIP_NONE, stray.GetSubject().GetOwnership())

	as := func(team string) context.Context {
		return auth.WithPrincipal(ctx, auth.Principal{Kind: auth.KindUser, Name: "op-" + team, Role: auth.RoleOperator, Teams: []string{team}})
	}
	ids := func(ctx context.Context) []string {
		r, err := api.ListIncidents(ctx, &monitorv1.ListIncidentsRequest{})
		require.NoError(t, err)
		var out []string
		for _, i := range r.GetIncidents() {
			out = append(out, i.GetId())
		}
		return out
	}
	require.ElementsMatch(t, []string{plain.GetId(), spoofed.GetId()}, ids(as("team-b")), "team-b sees what is wrong with its own app")
	require.Empty(t, ids(as("team-a")), "team-a sees nothing of payments, spoofed label or not")
	require.ElementsMatch(t, []string{mapped.GetId()}, ids(as("team-c")))
	_, err := api.GetIncident(as("team-a"), &monitorv1.GetIncidentRequest{Id: spoofed.GetId()})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	_, err = api.AcknowledgeIncident(as("team-a"), &monitorv1.AcknowledgeIncidentRequest{Id: spoofed.GetId()})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	got, err := api.GetIncident(ctx, &monitorv1.GetIncidentRequest{Id: spoofed.GetId()})
	require.NoError(t, err)
	require.Nil(t, got.GetIncident().GetAcknowledgedAt(), "the refused acknowledgement changed nothing")

	// The mapping changes: incidents opened before keep their owner; new
	// ones have the new one.
	require.NoError(t, appteam.SetNamespace(ctx, pool, subject.Mapping{Namespace: "logging", Team: "team-d"}, t0.Add(time.Minute)))
	require.ElementsMatch(t, []string{mapped.GetId()}, ids(as("team-c")))
	later := fire("LokiIngesterDown", map[string]string{"namespace": "logging", "statefulset": "loki"})
	require.Equal(t, "team-d", later.GetTeam())
}

// ListIncidents filters by team (the owner Vigil knows, never a label)
// and by text (title, app, team, namespace, a group label, case aside; a
// LIKE wildcard in the text is itself), within the caller's reach; an
// over-long text is refused with its field.
func TestListIncidentsByTeamAndText(t *testing.T) {
	t.Parallel()
	pool, _ := monitortest.Pool(t)
	ctx := context.Background()
	c := incident.NewCorrelator(postgres.Store{}, incident.Options{UpdateInterval: -1}, testkit.Logger(t))
	api := grpcapi.NewIncidentServer(pool, c)
	t0 := time.Now()
	require.NoError(t, appteam.SetApp(ctx, pool, appteam.App{Name: "shop", Team: "payments", Cluster: "kind", Namespace: "shop"}, t0))
	require.NoError(t, appteam.SetApp(ctx, pool, appteam.App{Name: "blog", Team: "web", Cluster: "kind", Namespace: "blog"}, t0))
	fire := func(name, ns string, extra map[string]string) string {
		labels := map[string]string{"alertname": name, "namespace": ns, "team": "payments"}
		for k, v := range extra {
			labels[k] = v
		}
		a := &typesv1.Alert{Fingerprint: "fp-" + name + ns, Labels: labels, StartsAt: timestamppb.New(t0.Add(-time.Minute))}
		require.NoError(t, db.InTx(ctx, pool, func(tx pgx.Tx) error {
			return c.AlertFired(ctx, tx, &eventsv1.AlertFired{Meta: bus.NewMeta("test", nil), Alert: a})
		}))
		var id string
		require.NoError(t, pool.QueryRow(ctx, `SELECT id::text FROM incidents WHERE group_labels->>'alertname' = $1 AND namespace = $2`, name, ns).Scan(&id))
		return id
	}
	// The blog's alert claims team payments in a label: it stays web's.
	checkout := fire("CheckoutLatency", "shop", nil)
	disk := fire("Disk_Full", "blog", nil)
	stray := fire("NodeDown", "kube-node-lease", nil)

	admin := auth.WithPrincipal(ctx, auth.Principal{Kind: auth.KindUser, Name: "alice", Role: auth.RoleAdmin, AllTeams: true, Unowned: true})
	web := auth.WithPrincipal(ctx, auth.Principal{Kind: auth.KindUser, Name: "oscar", Role: auth.RoleOperator, Teams: []string{"web"}})
	listed := func(ctx context.Context, req *monitorv1.ListIncidentsRequest) []string {
		t.Helper()
		r, err := api.ListIncidents(ctx, req)
		require.NoError(t, err)
		var ids []string
		for _, i := range r.GetIncidents() {
			ids = append(ids, i.GetId())
		}
		return ids
	}
	require.ElementsMatch(t, []string{checkout}, listed(admin, &monitorv1.ListIncidentsRequest{Team: "payments"}))
	require.ElementsMatch(t, []string{disk}, listed(admin, &monitorv1.ListIncidentsRequest{Team: "web"}))
	require.Empty(t, listed(web, &monitorv1.ListIncidentsRequest{Team: "payments"}), "a filter never widens the caller's reach")
	require.ElementsMatch(t, []string{checkout}, listed(admin, &monitorv1.ListIncidentsRequest{Text: "checkout"}), "title, case aside")
	require.ElementsMatch(t, []string{disk}, listed(admin, &monitorv1.ListIncidentsRequest{Text: "WEB"}), "team")
	require.ElementsMatch(t, []string{stray}, listed(admin, &monitorv1.ListIncidentsRequest{Text: "namespace=kube-node"}), "a group label")
	require.ElementsMatch(t, []string{disk}, listed(admin, &monitorv1.ListIncidentsRequest{Text: "k_f"}), "an underscore matches itself")
	require.Empty(t, listed(admin, &monitorv1.ListIncidentsRequest{Text: "h_c"}), "_ is a character, not a wildcard (CheckoutLatency has hec)")
	require.Empty(t, listed(admin, &monitorv1.ListIncidentsRequest{Text: "%"}), "% is a character, not a wildcard")
	require.ElementsMatch(t, []string{disk}, listed(admin, &monitorv1.ListIncidentsRequest{Team: "web", Text: "disk"}))

	_, err := api.ListIncidents(admin, &monitorv1.ListIncidentsRequest{Text: strings.Repeat("x", 257)})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.ErrorContains(t, err, "text")
}
