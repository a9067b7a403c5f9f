package main

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	"github.com/vigil-ops/vigil/pkg/server"
)

// fakeMonitor records the requests the CLI sends and the token they carry.
type fakeMonitor struct {
	monitorv1.UnimplementedSilenceServiceServer
	monitorv1.UnimplementedIncidentServiceServer
	got   proto.Message
	token string
	err   error // returned instead of a response when set
}

func (f *fakeMonitor) record(ctx context.Context, req proto.Message) error {
	f.got = req
	if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) > 0 {
		f.token = v[0]
	}
	return f.err
}

func (f *fakeMonitor) CreateSilence(ctx context.Context, r *monitorv1.CreateSilenceRequest) (*monitorv1.CreateSilenceResponse, error) {
	return &monitorv1.CreateSilenceResponse{Silence: &monitorv1.Silence{Id: "s1"}}, f.record(ctx, r)
}

func (f *fakeMonitor) GetSilence(ctx context.Context, r *monitorv1.GetSilenceRequest) (*monitorv1.GetSilenceResponse, error) {
	return &monitorv1.GetSilenceResponse{Silence: &monitorv1.Silence{Id: r.GetId()}}, f.record(ctx, r)
}

func (f *fakeMonitor) ListSilences(ctx context.Context, r *monitorv1.ListSilencesRequest) (*monitorv1.ListSilencesResponse, error) {
	return &monitorv1.ListSilencesResponse{NextPageToken: "next"}, f.record(ctx, r)
}

func (f *fakeMonitor) ExpireSilence(ctx context.Context, r *monitorv1.ExpireSilenceRequest) (*monitorv1.ExpireSilenceResponse, error) {
	return &monitorv1.ExpireSilenceResponse{Silence: &monitorv1.Silence{Id: r.GetId()}}, f.record(ctx, r)
}

func (f *fakeMonitor) ListAlerts(ctx context.Context, r *monitorv1.ListAlertsRequest) (*monitorv1.ListAlertsResponse, error) {
	return &monitorv1.ListAlertsResponse{}, f.record(ctx, r)
}

// startFake serves a fakeMonitor on loopback and returns it with its
// address. The CLI reads VIGIL_TOKEN, so tests using it are not parallel.
func startFake(t *testing.T) (*fakeMonitor, string) {
	t.Helper()
	t.Setenv("VIGIL_TOKEN", "test-token")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakeMonitor{}
	srv := grpc.NewServer()
	monitorv1.RegisterSilenceServiceServer(srv, f)
	monitorv1.RegisterIncidentServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return f, lis.Addr().String()
}

// runCLI runs a command tree with args against addr.
func runCLI(cmd func() *cobra.Command, addr string, args ...string) error {
	c := cmd()
	c.SetArgs(append(args, "--addr", addr, "-o", "json"))
	return c.ExecuteContext(context.Background())
}

func TestSilencesCreate(t *testing.T) {
	f, addr := startFake(t)
	err := runCLI(silencesCommand, addr, "create",
		"--matcher", `alertname="HighLatency"`, "--matcher", `{namespace="shop", pod=~"web-.*"}`,
		"--duration", "2h", "--comment", "deploying",
		"--schedule-tz", "Europe/Berlin", "--window", "sat,sun 22:00-02:00", "--window", "mon-wed 12:00-12:30", "--window", "03:00-04:00")
	require.NoError(t, err)
	require.Equal(t, "Bearer test-token", f.token)
	requireProto(t, &monitorv1.CreateSilenceRequest{
		Matchers: []string{`alertname="HighLatency"`, `{namespace="shop", pod=~"web-.*"}`},
		Duration: durationpb.New(2 * time.Hour),
		Comment:  "deploying",
		Schedule: &monitorv1.Schedule{TimeZone: "Europe/Berlin", Windows: []*monitorv1.Window{
			{Days: []string{"sat", "sun"}, Start: "22:00", End: "02:00"},
			{Days: []string{"mon", "tue", "wed"}, Start: "12:00", End: "12:30"},
			{Start: "03:00", End: "04:00"},
		}},
	}, f.got)

	err = runCLI(silencesCommand, addr, "create", "--matcher", `job="backup"`,
		"--start", "2030-01-01T22:00:00+01:00", "--end", "2030-01-02T06:00:00+01:00")
	require.NoError(t, err)
	got := f.got.(*monitorv1.CreateSilenceRequest)
	require.Equal(t, time.Date(2030, 1, 1, 21, 0, 0, 0, time.UTC), got.GetStartsAt().AsTime())
	require.Equal(t, time.Date(2030, 1, 2, 5, 0, 0, 0, time.UTC), got.GetEndsAt().AsTime())
	require.Nil(t, got.GetDuration())
	require.Nil(t, got.GetSchedule())
}

func TestSilencesCreateRefusesBadFlags(t *testing.T) {
	f, addr := startFake(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no end", []string{"--matcher", `a="b"`}, "duration"},
		{"both ends", []string{"--matcher", `a="b"`, "--duration", "1h", "--end", "2030-01-01T00:00:00Z"}, "duration"},
		{"no matcher", []string{"--duration", "1h"}, "matcher"},
		{"negative duration", []string{"--matcher", `a="b"`, "--duration", "-1h"}, "--duration"},
		{"bad end", []string{"--matcher", `a="b"`, "--end", "tomorrow"}, "--end"},
		{"bad start", []string{"--matcher", `a="b"`, "--duration", "1h", "--start", "now"}, "--start"},
		{"zone without windows", []string{"--matcher", `a="b"`, "--duration", "1h", "--schedule-tz", "UTC"}, "--window"},
		{"bad window", []string{"--matcher", `a="b"`, "--duration", "1h", "--window", "someday 22:00-02:00"}, "--window"},
	}
	for _, tt := range tests {
		f.got = nil
		err := runCLI(silencesCommand, addr, append([]string{"create"}, tt.args...)...)
		require.ErrorContains(t, err, tt.want, tt.name)
		require.Nil(t, f.got, "%s: nothing is sent", tt.name)
	}
}

func TestSilencesServerErrorNamesTheField(t *testing.T) {
	f, addr := startFake(t)
	f.err = server.InvalidArgument("invalid silence", server.FieldViolation{Field: "matchers[1]", Description: `"c=": expected label value`})
	err := runCLI(silencesCommand, addr, "create", "--matcher", `a="b"`, "--matcher", "c=", "--duration", "1h")
	require.ErrorContains(t, err, "InvalidArgument")
	require.ErrorContains(t, err, "matchers[1]: \"c=\": expected label value")
}

func TestSilencesListGetExpire(t *testing.T) {
	f, addr := startFake(t)
	require.NoError(t, runCLI(silencesCommand, addr, "list", "--state", "active,pending", "--limit", "10", "--page-token", "tok"))
	requireProto(t, &monitorv1.ListSilencesRequest{
		States:   []monitorv1.SilenceState{monitorv1.SilenceState_SILENCE_STATE_ACTIVE, monitorv1.SilenceState_SILENCE_STATE_PENDING},
		PageSize: 10, PageToken: "tok",
	}, f.got)

	f.got = nil
	require.ErrorContains(t, runCLI(silencesCommand, addr, "list", "--state", "unspecified"), "--state")
	require.Nil(t, f.got)

	require.NoError(t, runCLI(silencesCommand, addr, "get", "0198a0a0-0000-7000-8000-000000000001"))
	requireProto(t, &monitorv1.GetSilenceRequest{Id: "0198a0a0-0000-7000-8000-000000000001"}, f.got)

	require.NoError(t, runCLI(silencesCommand, addr, "expire", "0198a0a0-0000-7000-8000-000000000002"))
	requireProto(t, &monitorv1.ExpireSilenceRequest{Id: "0198a0a0-0000-7000-8000-000000000002"}, f.got)
}

func TestParseWindow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want *monitorv1.Window
	}{
		{"22:00-02:00", &monitorv1.Window{Start: "22:00", End: "02:00"}},
		{"mon 09:00-17:00", &monitorv1.Window{Days: []string{"mon"}, Start: "09:00", End: "17:00"}},
		{"  Mon,TUE   09:00-17:00 ", &monitorv1.Window{Days: []string{"mon", "tue"}, Start: "09:00", End: "17:00"}},
		{"mon-fri 09:00-17:00", &monitorv1.Window{Days: []string{"mon", "tue", "wed", "thu", "fri"}, Start: "09:00", End: "17:00"}},
		{"fri-mon 22:00-06:00", &monitorv1.Window{Days: []string{"fri", "sat", "sun", "mon"}, Start: "22:00", End: "06:00"}},
		{"sat,sun-sun 00:00-00:00", &monitorv1.Window{Days: []string{"sat", "sun"}, Start: "00:00", End: "00:00"}},
		// Times are the server's to check.
		{"mon 7:00-25:00", &monitorv1.Window{Days: []string{"mon"}, Start: "7:00", End: "25:00"}},
	}
	for _, tt := range tests {
		got, err := parseWindow(tt.in)
		require.NoError(t, err, tt.in)
		requireProto(t, tt.want, got, tt.in)
	}
	for _, bad := range []string{
		"", "mon", "mon tue 09:00-17:00", "mon 09:00", "mon 09:00-", "mon -17:00",
		"mon 09:00-12:00-17:00", "someday 09:00-17:00", "mon-someday 09:00-17:00", "mon,,tue 09:00-17:00",
	} {
		_, err := parseWindow(bad)
		require.Error(t, err, "%q", bad)
	}
}

// FuzzParseWindow checks parseWindow never panics and that a window it
// accepts reads back the same from formatWindow, as `silences list`
// shows it.
func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"22:00-02:00", "mon,tue 22:00-02:00", "fri-mon 00:00-00:00", "", "mon", "a b c", "mon-", "-", "x-y 1-2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := parseWindow(s)
		if err != nil {
			return
		}
		again, err := parseWindow(formatWindow(w))
		require.NoError(t, err, "formatWindow gave %q", formatWindow(w))
		requireProto(t, w, again)
	})
}

// requireProto checks got equals want, showing both when not.
func requireProto(t *testing.T, want, got proto.Message, msgAndArgs ...any) {
	t.Helper()
	if !proto.Equal(want, got) {
		require.Failf(t, "messages differ", "want: %v\n got: %v\n%s", prototext.Format(want), prototext.Format(got), fmt.Sprint(msgAndArgs...))
	}
}
