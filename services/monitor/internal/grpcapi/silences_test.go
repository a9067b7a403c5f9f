package grpcapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/appteam"
	"github.com/vigil-ops/vigil/pkg/auth"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/pkg/subject"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/monitor/internal/grpcapi"
	"github.com/vigil-ops/vigil/services/monitor/internal/monitortest"
	silencepkg "github.com/vigil-ops/vigil/services/monitor/internal/silence"
)

// TestMain is the package's only one: testkit stops the shared Postgres.
func TestMain(m *testing.M) { testkit.Main(m) }

func silenceServer(t *testing.T) *grpcapi.SilenceServer {
	t.Helper()
	pool, _ := monitortest.Pool(t)
	return grpcapi.NewSilenceServer(pool, silencepkg.Limits{})
}

// as is a request context authenticated as name, of every team (what a
// silence may select is TestSilencesBelongToTeams').
func as(name string) context.Context {
	return auth.WithPrincipal(context.Background(), auth.Principal{Name: name, Role: auth.RoleOperator, AllTeams: true, Unowned: true})
}

// requireInvalid checks err is InvalidArgument naming exactly fields.
func requireInvalid(t *testing.T, err error, fields ...string) {
	t.Helper()
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
	var got []string
	for _, v := range server.Violations(st) {
		require.NotEmpty(t, v.Description, v.Field)
		got = append(got, v.Field)
	}
	require.ElementsMatch(t, fields, got)
}

func create(t *testing.T, s *grpcapi.SilenceServer, req *monitorv1.CreateSilenceRequest) *monitorv1.Silence {
	t.Helper()
	resp, err := s.CreateSilence(as("alice"), req)
	require.NoError(t, err)
	return resp.GetSilence()
}

func TestCreateSilenceWithDuration(t *testing.T) {
	t.Parallel()
	s := silenceServer(t)
	before := time.Now()
	got := create(t, s, &monitorv1.CreateSilenceRequest{
		Matchers: []string{`alertname="HighLatency"`, `{namespace="shop", instance=~"web-.*"}`},
		Duration: durationpb.New(2 * time.Hour),
		Comment:  "deploying checkout",
	})
	require.NotEmpty(t, got.GetId())
	require.Equal(t, []string{`alertname="HighLatency"`, `namespace="shop"`, `instance=~"web-.*"`}, got.GetMatchers())
	require.Equal(t, monitorv1.SilenceState_SILENCE_STATE_ACTIVE, got.GetState())
	require.Equal(t, "alice", got.GetCreatedBy(), "the creator is the caller")
	require.Equal(t, "deploying checkout", got.GetComment())
	require.Equal(t, 2*time.Hour, got.GetEndsAt().AsTime().Sub(got.GetStartsAt().AsTime()))
	require.False(t, got.GetStartsAt().AsTime().Before(before.Truncate(time.Microsecond)), "starts now when unset")
	require.Nil(t, got.GetExpiredAt())

	stored, err := s.GetSilence(as("bob"), &monitorv1.GetSilenceRequest{Id: got.GetId()})
	require.NoError(t, err)
	require.Equal(t, got.GetMatchers(), stored.GetSilence().GetMatchers())
	require.Equal(t, got.GetEndsAt().AsTime(), stored.GetSilence().GetEndsAt().AsTime())
}

func TestCreateSilenceWithEndAndSchedule(t *testing.T) {
	t.Parallel()
	s := silenceServer(t)
	start := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	got := create(t, s, &monitorv1.CreateSilenceRequest{
		Matchers: []string{`job="backup"`},
		StartsAt: timestamppb.New(start),
		EndsAt:   timestamppb.New(start.Add(90 * 24 * time.Hour)),
		Schedule: &monitorv1.Schedule{TimeZone: "Europe/Berlin", Windows: []*monitorv1.Window{
			{Days: []string{"Sat", "sun"}, Start: "22:00", End: "02:00"},
		}},
	})
	require.Equal(t, monitorv1.SilenceState_SILENCE_STATE_PENDING, got.GetState())
	require.Equal(t, start, got.GetStartsAt().AsTime())
	require.Equal(t, "Europe/Berlin", got.GetSchedule().GetTimeZone())
	require.Equal(t, []string{"sat", "sun"}, got.GetSchedule().GetWindows()[0].GetDays())
	require.Equal(t, "22:00", got.GetSchedule().GetWindows()[0].GetStart())
	require.Equal(t, "02:00", got.GetSchedule().GetWindows()[0].GetEnd())
}

func TestCreateSilenceInvalid(t *testing.T) {
	t.Parallel()
	s := silenceServer(t)
	now := time.Now()
	dur := durationpb.New(time.Hour)
	tests := []struct {
		name   string
		req    *monitorv1.CreateSilenceRequest
		fields []string
	}{
		{"bad matcher", &monitorv1.CreateSilenceRequest{Matchers: []string{`a="b"`, `c=~"("`}, Duration: dur}, []string{"matchers[1]"}},
		{"no matchers", &monitorv1.CreateSilenceRequest{Duration: dur}, []string{"matchers"}},
		{"matches everything", &monitorv1.CreateSilenceRequest{Matchers: []string{`foo=~".*"`}, Duration: dur}, []string{"matchers"}},
		{"no end", &monitorv1.CreateSilenceRequest{Matchers: []string{`a="b"`}}, []string{"ends_at"}},
		{"end and duration", &monitorv1.CreateSilenceRequest{
			Matchers: []string{`a="b"`}, Duration: dur, EndsAt: timestamppb.New(now.Add(time.Hour)),
		}, []string{"duration"}},
		{"negative duration", &monitorv1.CreateSilenceRequest{Matchers: []string{`a="b"`}, Duration: durationpb.New(-time.Hour)}, []string{"duration"}},
		{"ends before start", &monitorv1.CreateSilenceRequest{
			Matchers: []string{`a="b"`}, StartsAt: timestamppb.New(now.Add(2 * time.Hour)), EndsAt: timestamppb.New(now.Add(time.Hour)),
		}, []string{"ends_at"}},
		{"ends in the past", &monitorv1.CreateSilenceRequest{
			Matchers: []string{`a="b"`}, StartsAt: timestamppb.New(now.Add(-2 * time.Hour)), EndsAt: timestamppb.New(now.Add(-time.Hour)),
		}, []string{"ends_at"}},
		{"invalid timestamp", &monitorv1.CreateSilenceRequest{
			Matchers: []string{`a="b"`}, StartsAt: &timestamppb.Timestamp{Seconds: -1 << 62}, Duration: dur,
		}, []string{"starts_at"}},
		{"bad schedule", &monitorv1.CreateSilenceRequest{
			Matchers: []string{`a="b"`}, Duration: dur,
			Schedule: &monitorv1.Schedule{TimeZone: "Europe/Atlantis", Windows: []*monitorv1.Window{
				{Days: []string{"mon", "someday"}, Start: "25:00", End: "02:00"},
			}},
		}, []string{"schedule.time_zone", "schedule.windows[0].days[1]", "schedule.windows[0].start"}},
		{"schedule without windows", &monitorv1.CreateSilenceRequest{
			Matchers: []string{`a="b"`}, Duration: dur, Schedule: &monitorv1.Schedule{},
		}, []string{"schedule.windows"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := s.CreateSilence(as("alice"), tt.req)
			requireInvalid(t, err, tt.fields...)
		})
	}
}

func TestListSilencesByState(t *testing.T) {
	t.Parallel()
	s := silenceServer(t)
	active := create(t, s, &monitorv1.CreateSilenceRequest{Matchers: []string{`a="active"`}, Duration: durationpb.New(time.Hour)})
	pending := create(t, s, &monitorv1.CreateSilenceRequest{
		Matchers: []string{`a="pending"`}, StartsAt: timestamppb.New(time.Now().Add(time.Hour)), Duration: durationpb.New(time.Hour),
	})
	expired := create(t, s, &monitorv1.CreateSilenceRequest{Matchers: []string{`a="expired"`}, Duration: durationpb.New(time.Hour)})
	_, err := s.ExpireSilence(as("bob"), &monitorv1.ExpireSilenceRequest{Id: expired.GetId()})
	require.NoError(t, err)

	list := func(states ...monitorv1.SilenceState) []string {
		t.Helper()
		resp, err := s.ListSilences(as("carol"), &monitorv1.ListSilencesRequest{States: states})
		require.NoError(t, err)
		require.Empty(t, resp.GetNextPageToken())
		var ids []string
		for _, sil := range resp.GetSilences() {
			if len(states) > 0 {
				require.Contains(t, states, sil.GetState())
			}
			ids = append(ids, sil.GetId())
		}
		return ids
	}
	require.Equal(t, []string{expired.GetId(), pending.GetId(), active.GetId()}, list(), "newest first")
	require.Equal(t, []string{active.GetId()}, list(monitorv1.SilenceState_SILENCE_STATE_ACTIVE))
	require.Equal(t, []string{pending.GetId()}, list(monitorv1.SilenceState_SILENCE_STATE_PENDING))
	require.Equal(t, []string{expired.GetId(), pending.GetId()},
		list(monitorv1.SilenceState_SILENCE_STATE_PENDING, monitorv1.SilenceState_SILENCE_STATE_EXPIRED))

	page, err := s.ListSilences(as("carol"), &monitorv1.ListSilencesRequest{PageSize: 2})
	require.NoError(t, err)
	require.Len(t, page.GetSilences(), 2)
	require.NotEmpty(t, page.GetNextPageToken())
	rest, err := s.ListSilences(as("carol"), &monitorv1.ListSilencesRequest{PageSize: 2, PageToken: page.GetNextPageToken()})
	require.NoError(t, err)
	require.Len(t, rest.GetSilences(), 1)
	require.Equal(t, active.GetId(), rest.GetSilences()[0].GetId())
	require.Empty(t, rest.GetNextPageToken())

	_, err = s.ListSilences(as("carol"), &monitorv1.ListSilencesRequest{States: []monitorv1.SilenceState{
		monitorv1.SilenceState_SILENCE_STATE_ACTIVE, monitorv1.SilenceState_SILENCE_STATE_UNSPECIFIED,
	}})
	requireInvalid(t, err, "states[1]")
	_, err = s.ListSilences(as("carol"), &monitorv1.ListSilencesRequest{PageSize: -1})
	requireInvalid(t, err, "page_size")
	_, err = s.ListSilences(as("carol"), &monitorv1.ListSilencesRequest{PageToken: "nonsense"})
	requireInvalid(t, err, "page_token")
}

func TestExpireSilence(t *testing.T) {
	t.Parallel()
	s := silenceServer(t)
	sil := create(t, s, &monitorv1.CreateSilenceRequest{Matchers: []string{`a="b"`}, Duration: durationpb.New(time.Hour)})

	resp, err := s.ExpireSilence(as("bob"), &monitorv1.ExpireSilenceRequest{Id: sil.GetId()})
	require.NoError(t, err)
	got := resp.GetSilence()
	require.Equal(t, monitorv1.SilenceState_SILENCE_STATE_EXPIRED, got.GetState())
	require.Equal(t, "bob", got.GetExpiredBy(), "the expirer is the caller")
	require.NotNil(t, got.GetExpiredAt())
	require.Equal(t, "alice", got.GetCreatedBy())

	_, err = s.ExpireSilence(as("bob"), &monitorv1.ExpireSilenceRequest{Id: sil.GetId()})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)

	stored, err := s.GetSilence(as("bob"), &monitorv1.GetSilenceRequest{Id: sil.GetId()})
	require.NoError(t, err)
	require.Equal(t, monitorv1.SilenceState_SILENCE_STATE_EXPIRED, stored.GetSilence().GetState())
	require.Equal(t, got.GetExpiredAt().AsTime(), stored.GetSilence().GetExpiredAt().AsTime())
}

func TestSilenceNotFound(t *testing.T) {
	t.Parallel()
	s := silenceServer(t)
	const unknown = "0198a0a0-0000-7000-8000-000000000000"
	_, err := s.GetSilence(as("bob"), &monitorv1.GetSilenceRequest{Id: unknown})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	_, err = s.ExpireSilence(as("bob"), &monitorv1.ExpireSilenceRequest{Id: unknown})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)

	_, err = s.GetSilence(as("bob"), &monitorv1.GetSilenceRequest{Id: "silence-1"})
	requireInvalid(t, err, "id")
	_, err = s.ExpireSilence(as("bob"), &monitorv1.ExpireSilenceRequest{})
	requireInvalid(t, err, "id")
}

// An operator's silence is confined to a namespace of their team's: one
// for another team's namespace, or with no namespace at all, or selecting
// by an app label (a sender's choice), is refused and nothing is stored;
// only the owning team (or an admin) expires it. Silences are bounded in
// duration, matchers and size.
func TestSilencesBelongToTeams(t *testing.T) {
	t.Parallel()
	pool, _ := monitortest.Pool(t)
	ctx := context.Background()
	s := grpcapi.NewSilenceServer(pool, silencepkg.Limits{})
	t0 := time.Now()
	require.NoError(t, appteam.SetApp(ctx, pool, appteam.App{Name: "shop", Team: "team-a", Cluster: "kind", Namespace: "shop"}, t0))
	require.NoError(t, appteam.SetApp(ctx, pool, appteam.App{Name: "payments", Team: "team-b", Cluster: "kind", Namespace: "payments"}, t0))
	require.NoError(t, appteam.SetNamespace(ctx, pool, subject.Mapping{Namespace: "logging", Team: "team-a"}, t0))
	operator := func(team string) context.Context {
		return auth.WithPrincipal(ctx, auth.Principal{Kind: auth.KindUser, Name: "op-" + team, Role: auth.RoleOperator, Teams: []string{team}})
	}
	admin := auth.WithPrincipal(ctx, auth.Principal{Kind: auth.KindUser, Name: "root", Role: auth.RoleAdmin, AllTeams: true, Unowned: true})
	count := func() int {
		r, err := s.ListSilences(admin, &monitorv1.ListSilencesRequest{})
		require.NoError(t, err)
		return len(r.GetSilences())
	}
	hour := durationpb.New(time.Hour)

	for name, matchers := range map[string][]string{
		"another team's namespace": {`namespace="payments"`, `alertname="KubePodCrashLooping"`},
		"no namespace at all":      {`alertname="KubePodCrashLooping"`},
		"by the app label only":    {`app="shop"`},
		"a namespace regex":        {`namespace=~"shop|payments"`},
		"nobody's namespace":       {`namespace="ingress-nginx"`},
	} {
		_, err := s.CreateSilence(operator("team-a"), &monitorv1.CreateSilenceRequest{Matchers: matchers, Duration: hour})
		require.Equal(t, codes.PermissionDenied, status.Code(err), "%s: %v", name, err)
	}
	require.Zero(t, count(), "nothing refused was stored")

	own, err := s.CreateSilence(operator("team-a"), &monitorv1.CreateSilenceRequest{
		Matchers: []string{`namespace="shop"`, `alertname="ShopSlow"`}, Duration: hour,
	})
	require.NoError(t, err)
	require.Equal(t, "team-a", own.GetSilence().GetTeam())
	mapped, err := s.CreateSilence(operator("team-a"), &monitorv1.CreateSilenceRequest{Matchers: []string{`namespace="logging"`}, Duration: hour})
	require.NoError(t, err)
	require.Equal(t, "team-a", mapped.GetSilence().GetTeam(), "a namespace mapped to the team")
	global, err := s.CreateSilence(admin, &monitorv1.CreateSilenceRequest{Matchers: []string{`alertname="Watchdog"`}, Duration: hour})
	require.NoError(t, err)
	require.Empty(t, global.GetSilence().GetTeam())

	_, err = s.ExpireSilence(operator("team-b"), &monitorv1.ExpireSilenceRequest{Id: own.GetSilence().GetId()})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	_, err = s.ExpireSilence(operator("team-a"), &monitorv1.ExpireSilenceRequest{Id: global.GetSilence().GetId()})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "an admin's silence of no team: %v", err)
	got, err := s.GetSilence(admin, &monitorv1.GetSilenceRequest{Id: own.GetSilence().GetId()})
	require.NoError(t, err)
	require.Equal(t, monitorv1.SilenceState_SILENCE_STATE_ACTIVE, got.GetSilence().GetState(), "the refused expiry changed nothing")
	_, err = s.ExpireSilence(operator("team-a"), &monitorv1.ExpireSilenceRequest{Id: own.GetSilence().GetId()})
	require.NoError(t, err)

	// Bounds, for everyone.
	_, err = s.CreateSilence(admin, &monitorv1.CreateSilenceRequest{Matchers: []string{`namespace="shop"`}, Duration: durationpb.New(10 * 365 * 24 * time.Hour)})
	requireInvalid(t, err, "ends_at")
	many := make([]string, 17)
	for i := range many {
		many[i] = fmt.Sprintf(`label%d="x"`, i)
	}
	_, err = s.CreateSilence(admin, &monitorv1.CreateSilenceRequest{Matchers: many, Duration: hour})
	requireInvalid(t, err, "matchers")
	_, err = s.CreateSilence(admin, &monitorv1.CreateSilenceRequest{
		Matchers: []string{`namespace="shop"`}, Duration: hour, Comment: strings.Repeat("x", 5000),
	})
	requireInvalid(t, err, "comment")
	require.Equal(t, 3, count())
}
