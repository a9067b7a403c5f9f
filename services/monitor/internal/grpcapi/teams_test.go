package grpcapi_test

import (
	"context"
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
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/monitor/internal/grpcapi"
	"github.com/vigil-ops/vigil/services/monitor/internal/incident"
	"github.com/vigil-ops/vigil/services/monitor/internal/monitortest"
	"github.com/vigil-ops/vigil/services/monitor/internal/postgres"
)

// An incident belongs to its app's team, as app_teams (the projection of
// the deploy service's app events) says: other teams do not list it and
// are refused it; an incident of an app no team claims is for admins and
// the default team; the newest event wins, whatever order they arrive in.
func TestIncidentsBelongToTheirAppsTeam(t *testing.T) {
	t.Parallel()
	pool, _ := monitortest.Pool(t)
	ctx := context.Background()
	c := incident.NewCorrelator(postgres.Store{}, incident.Options{UpdateInterval: -1}, testkit.Logger(t))
	api := grpcapi.NewIncidentServer(pool, c)
	t0 := time.Now()
	require.NoError(t, appteam.Set(ctx, pool, "shop", "payments", t0))
	require.NoError(t, appteam.Set(ctx, pool, "blog", "web", t0))
	// An older event arriving late changes nothing.
	require.NoError(t, appteam.Set(ctx, pool, "shop", "web", t0.Add(-time.Minute)))

	fire := func(app string) string {
		a := &typesv1.Alert{
			Fingerprint: "fp-" + app, Labels: map[string]string{"alertname": "Down", "namespace": app, "app": app},
			StartsAt: timestamppb.New(t0.Add(-time.Minute)),
		}
		require.NoError(t, db.InTx(ctx, pool, func(tx pgx.Tx) error {
			return c.AlertFired(ctx, tx, &eventsv1.AlertFired{Meta: bus.NewMeta("test", nil), Alert: a})
		}))
		r, err := api.ListIncidents(ctx, &monitorv1.ListIncidentsRequest{App: app})
		require.NoError(t, err)
		require.Len(t, r.GetIncidents(), 1)
		return r.GetIncidents()[0].GetId()
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
	require.NoError(t, appteam.Set(ctx, pool, "shop", "web", t0.Add(time.Minute)))
	require.ElementsMatch(t, []string{shop, blog}, listed(web))
	require.Empty(t, listed(payments))
	require.NoError(t, appteam.Delete(ctx, pool, "shop", t0.Add(2*time.Minute)))
	require.NoError(t, appteam.Set(ctx, pool, "shop", "payments", t0.Add(90*time.Second)))
	require.ElementsMatch(t, []string{blog}, listed(web))
	require.ElementsMatch(t, []string{shop, stray}, listed(defaultTeam))
}
