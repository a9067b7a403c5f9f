package grpcapi_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

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
	"github.com/vigil-ops/vigil/services/monitor/internal/silence"
)

// alertAPI is the incident API over a database holding, in namespace
// "shop", 30 HighLatency alerts (instances web-0..web-29, the even ones
// resolved later) and 5 DiskFull alerts (db-0..db-4), plus one silenced
// Watchdog; each alert seen one second after the previous.
func alertAPI(t *testing.T) (*grpcapi.IncidentServer, time.Time) {
	t.Helper()
	pool, _ := monitortest.Pool(t)
	clock := time.Now().UTC().Truncate(time.Second)
	start := clock
	c := incident.NewCorrelator(postgres.Store{}, incident.Options{
		UpdateInterval: -1, Now: func() time.Time { return clock },
		Silences: func(ctx context.Context, tx pgx.Tx, now time.Time) (incident.Muter, error) {
			return postgres.Silences{}.Active(ctx, tx, now)
		},
	}, testkit.Logger(t))
	s, err := silence.New(silence.Params{Matchers: []string{`alertname="Watchdog"`}, EndsAt: clock.Add(time.Hour)}, clock)
	require.NoError(t, err)
	require.NoError(t, postgres.Silences{}.Create(context.Background(), pool, s))

	apply := func(name, instance string, resolved bool) {
		a := &typesv1.Alert{
			Fingerprint: name + "/" + instance,
			Labels:      map[string]string{"alertname": name, "namespace": "shop", "instance": instance},
			StartsAt:    timestamppb.New(start.Add(-time.Hour)),
		}
		ctx := context.Background()
		require.NoError(t, db.InTx(ctx, pool, func(tx pgx.Tx) error {
			if resolved {
				a.EndsAt = timestamppb.New(clock)
				return c.AlertResolved(ctx, tx, &eventsv1.AlertResolved{Meta: bus.NewMeta("test", nil), Alert: a})
			}
			return c.AlertFired(ctx, tx, &eventsv1.AlertFired{Meta: bus.NewMeta("test", nil), Alert: a})
		}))
		clock = clock.Add(time.Second)
	}
	for i := range 30 {
		apply("HighLatency", fmt.Sprintf("web-%d", i), false)
	}
	for i := range 5 {
		apply("DiskFull", fmt.Sprintf("db-%d", i), false)
	}
	for i := 0; i < 30; i += 2 {
		apply("HighLatency", fmt.Sprintf("web-%d", i), true)
	}
	apply("Watchdog", "w", false)
	return grpcapi.NewIncidentServer(pool, c), start
}

// list pages through ListAlerts with req and returns the instances, in
// order, checking that pages are no larger than asked.
func list(t *testing.T, api *grpcapi.IncidentServer, req *monitorv1.ListAlertsRequest) []string {
	t.Helper()
	var out []string
	for {
		resp, err := api.ListAlerts(context.Background(), req)
		require.NoError(t, err)
		if req.GetPageSize() > 0 {
			require.LessOrEqual(t, len(resp.GetAlerts()), int(req.GetPageSize()))
		}
		for _, a := range resp.GetAlerts() {
			out = append(out, a.GetAlert().GetLabels()["instance"])
		}
		if resp.GetNextPageToken() == "" {
			return out
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

func instances(prefix string, from, to, step int) []string {
	var out []string
	for i := from; i != to; i += step {
		out = append(out, fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}

func TestListAlertsFiltersAndPages(t *testing.T) {
	t.Parallel()
	api, start := alertAPI(t)
	// Most recently seen first: the resolutions of even web-N were seen
	// last, then db-4..db-0, then the odd web-N.
	resolvedWeb := instances("web", 28, -2, -2)
	firingWeb := instances("web", 29, -1, -2)
	db := instances("db", 4, -1, -1)

	tests := []struct {
		name string
		req  *monitorv1.ListAlertsRequest
		want []string
	}{
		{
			"everything, in pages of 7", &monitorv1.ListAlertsRequest{PageSize: 7},
			slices.Concat([]string{"w"}, resolvedWeb, db, firingWeb),
		},
		{"equal", &monitorv1.ListAlertsRequest{Filter: []string{`alertname="DiskFull"`}, PageSize: 2}, db},
		{
			"not equal, several in one filter", &monitorv1.ListAlertsRequest{Filter: []string{`{namespace="shop", alertname!="HighLatency"}`}},
			slices.Concat([]string{"w"}, db),
		},
		{
			"regexp", &monitorv1.ListAlertsRequest{Filter: []string{`instance=~"web-1[0-2]|db-[34]"`}},
			[]string{"web-12", "web-10", "db-4", "db-3", "web-11"},
		},
		{
			"not regexp and a missing label", &monitorv1.ListAlertsRequest{Filter: []string{`instance!~"web-.*"`, `team=""`}},
			slices.Concat([]string{"w"}, db),
		},
		{
			"firing", &monitorv1.ListAlertsRequest{States: []monitorv1.AlertState{monitorv1.AlertState_ALERT_STATE_FIRING}, PageSize: 4},
			slices.Concat(db, firingWeb),
		},
		{"resolved", &monitorv1.ListAlertsRequest{States: []monitorv1.AlertState{monitorv1.AlertState_ALERT_STATE_RESOLVED}}, resolvedWeb},
		{"silenced", &monitorv1.ListAlertsRequest{States: []monitorv1.AlertState{monitorv1.AlertState_ALERT_STATE_SILENCED}}, []string{"w"}},
		{"firing or silenced, with a matcher", &monitorv1.ListAlertsRequest{
			States: []monitorv1.AlertState{monitorv1.AlertState_ALERT_STATE_FIRING, monitorv1.AlertState_ALERT_STATE_SILENCED},
			Filter: []string{`instance=~"w|db-0"`},
		}, []string{"w", "db-0"}},
		{"time range", &monitorv1.ListAlertsRequest{
			Since: timestamppb.New(start.Add(30 * time.Second)), Until: timestamppb.New(start.Add(35 * time.Second)),
		}, instances("db", 4, -1, -1)},
		{"no match", &monitorv1.ListAlertsRequest{Filter: []string{`alertname="Nothing"`}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, list(t, api, tc.req))
		})
	}
}

func TestGetIncidentPagesItsAlerts(t *testing.T) {
	t.Parallel()
	api, _ := alertAPI(t)
	incs, err := api.ListIncidents(context.Background(), &monitorv1.ListIncidentsRequest{})
	require.NoError(t, err)
	var id string
	for _, i := range incs.GetIncidents() {
		if i.GetGroupLabels()["alertname"] == "HighLatency" {
			id = i.GetId()
			assert.Equal(t, int32(30), i.GetAlertCount())
			assert.Equal(t, int32(15), i.GetFiringCount())
		}
	}
	require.NotEmpty(t, id)
	got, err := api.GetIncident(context.Background(), &monitorv1.GetIncidentRequest{Id: id, AlertsPageSize: 10})
	require.NoError(t, err)
	assert.Len(t, got.GetIncident().GetAlerts(), 10)
	assert.Equal(t, int32(30), got.GetIncident().GetAlertCount())
	require.NotEmpty(t, got.GetAlertsNextPageToken())
	first := got.GetIncident().GetAlerts()[0].GetAlert().GetLabels()["instance"]
	rest := list(t, api, &monitorv1.ListAlertsRequest{IncidentId: id, PageToken: got.GetAlertsNextPageToken()})
	assert.Len(t, rest, 20, "the rest of the incident's alerts, none twice")
	assert.NotContains(t, rest, first)

	// The default page is 50: all of them, no token.
	got, err = api.GetIncident(context.Background(), &monitorv1.GetIncidentRequest{Id: id})
	require.NoError(t, err)
	assert.Len(t, got.GetIncident().GetAlerts(), 30)
	assert.Empty(t, got.GetAlertsNextPageToken())
}

func TestListAlertsRejectsBadInput(t *testing.T) {
	t.Parallel()
	api, _ := alertAPI(t)
	now := time.Now()
	for name, tc := range map[string]struct {
		req   *monitorv1.ListAlertsRequest
		field string
	}{
		"bad matcher":     {&monitorv1.ListAlertsRequest{Filter: []string{`alertname="X"`, `foo=~"(`}}, "filter[1]"},
		"empty filter":    {&monitorv1.ListAlertsRequest{Filter: []string{""}}, "filter[0]"},
		"bad incident id": {&monitorv1.ListAlertsRequest{IncidentId: "42"}, "incident_id"},
		"bad state":       {&monitorv1.ListAlertsRequest{States: []monitorv1.AlertState{monitorv1.AlertState(9)}}, "states[0]"},
		"negative size":   {&monitorv1.ListAlertsRequest{PageSize: -1}, "page_size"},
		"bad token":       {&monitorv1.ListAlertsRequest{PageToken: "bm90IGEgdG9rZW4"}, "page_token"},
		"empty range": {&monitorv1.ListAlertsRequest{
			Since: timestamppb.New(now), Until: timestamppb.New(now.Add(-time.Minute)),
		}, "until"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := api.ListAlerts(context.Background(), tc.req)
			requireInvalid(t, err, tc.field)
		})
	}
	_, err := api.GetIncident(context.Background(), &monitorv1.GetIncidentRequest{Id: "01a20236-f568-7af1-9546-d3f52f62c45a"})
	assert.Equal(t, codes.NotFound, status.Code(err))
}
