package loadgen

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

func validOptions() Options {
	return Options{
		HTTPURL: "http://127.0.0.1:8080", GRPCAddr: "127.0.0.1:9090", Token: "t0ken-0123456789abcdef",
		Via: ViaWebhook, Senders: 16, AlertsPerRequest: 100, Groups: 20, Duration: time.Minute,
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*Options)
		want   []string // each in the error; none: valid
	}{
		{name: "valid", modify: func(*Options) {}},
		{name: "count only", modify: func(o *Options) { o.Duration, o.Count = 0, 300 }},
		{name: "grpc needs no URL", modify: func(o *Options) { o.Via, o.HTTPURL = ViaGRPC, "" }},
		{name: "via", modify: func(o *Options) { o.Via = "carrier-pigeon" }, want: []string{`--via "carrier-pigeon": want webhook or grpc`}},
		{name: "url missing", modify: func(o *Options) { o.HTTPURL = "" }, want: []string{"--url: missing"}},
		{name: "url scheme", modify: func(o *Options) { o.HTTPURL = "127.0.0.1:8080" }, want: []string{`--url "127.0.0.1:8080": want http://host:port`}},
		{name: "addr", modify: func(o *Options) { o.GRPCAddr = "" }, want: []string{"--addr: missing"}},
		{name: "token", modify: func(o *Options) { o.Token = "" }, want: []string{"VIGIL_TOKEN: missing (or pass --token-file"}},
		{name: "senders", modify: func(o *Options) { o.Senders = 0 }, want: []string{"--senders: must be at least 1, got 0"}},
		{name: "alerts per request", modify: func(o *Options) { o.AlertsPerRequest = 20_000 }, want: []string{"--alerts-per-request: must be between 1 and 10000, got 20000"}},
		{name: "groups", modify: func(o *Options) { o.Groups = -1 }, want: []string{"--groups: must be at least 1, got -1"}},
		{name: "rate", modify: func(o *Options) { o.Rate = -5 }, want: []string{"--rate: must not be negative (0 sends flat out), got -5"}},
		{name: "neither duration nor count", modify: func(o *Options) { o.Duration = 0 }, want: []string{"--duration or --count: set at least one"}},
		{name: "negative count", modify: func(o *Options) { o.Count = -1 }, want: []string{"--count: must not be negative, got -1"}},
		{name: "repeat ratio", modify: func(o *Options) { o.RepeatRatio = 1 }, want: []string{"--repeat-ratio: must be at least 0 and below 1, got 1"}},
		{name: "resolve ratio", modify: func(o *Options) { o.ResolveRatio = 1.5 }, want: []string{"--resolve-ratio: must be between 0 and 1, got 1.5"}},
		{name: "wait timeout", modify: func(o *Options) { o.WaitTimeout = -time.Second }, want: []string{"--wait-timeout: must not be negative, got -1s"}},
		{name: "poll interval", modify: func(o *Options) { o.PollInterval = -time.Second }, want: []string{"--poll-interval: must not be negative"}},
		{name: "request timeout", modify: func(o *Options) { o.RequestTimeout = -time.Second }, want: []string{"--request-timeout: must not be negative"}},
		{name: "pid", modify: func(o *Options) { o.PID = -1 }, want: []string{"--pid: must not be negative, got -1"}},
		{name: "run id", modify: func(o *Options) { o.RunID = "a b" }, want: []string{`--run-id "a b": want 1 to 32 letters and digits`}},
		{
			name:   "every mistake at once",
			modify: func(o *Options) { o.Senders, o.Groups, o.Token = 0, 0, "" },
			want:   []string{"--senders:", "--groups:", "VIGIL_TOKEN:"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := validOptions()
			tt.modify(&o)
			err := o.Validate()
			if len(tt.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
			require.Len(t, strings.Split(err.Error(), "\n"), len(tt.want), "one line per mistake: %s", err)
		})
	}
}

// fakeVigil is a gateway and monitor in miniature: it takes webhooks and
// IngestAlerts, counts each group's distinct firing alerts as incidents
// do, and lists them two per page. Every rejectEvery-th request is
// answered 503 / Unavailable without being kept.
type fakeVigil struct {
	monitorv1.UnimplementedIncidentServiceServer
	gatewayv1.UnimplementedAlertServiceServer
	token       string
	rejectEvery int

	mu       sync.Mutex
	requests int
	groups   map[[2]string]map[string]bool // alertname, namespace → instances
}

func startFake(t *testing.T, rejectEvery int) (f *fakeVigil, httpURL, grpcAddr string) {
	t.Helper()
	f = &fakeVigil{token: "t0ken-0123456789abcdef", rejectEvery: rejectEvery, groups: map[[2]string]map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(f.webhook))
	t.Cleanup(srv.Close)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer()
	monitorv1.RegisterIncidentServiceServer(gs, f)
	gatewayv1.RegisterAlertServiceServer(gs, f)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return f, srv.URL, lis.Addr().String()
}

// reject counts a request and says whether to refuse it.
func (f *fakeVigil) reject() bool {
	f.requests++
	return f.rejectEvery > 0 && f.requests%f.rejectEvery == 0
}

func (f *fakeVigil) keep(labels map[string]string, firing bool) {
	if !firing {
		return
	}
	k := [2]string{labels["alertname"], labels["namespace"]}
	if f.groups[k] == nil {
		f.groups[k] = map[string]bool{}
	}
	f.groups[k][labels["instance"]] = true
}

func (f *fakeVigil) webhook(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != webhookPath || r.Header.Get("Authorization") != "Bearer "+f.token {
		http.Error(w, "no", http.StatusUnauthorized)
		return
	}
	var m webhookMessage
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil || m.Version != "4" {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reject() {
		http.Error(w, "alerts could not be stored", http.StatusServiceUnavailable)
		return
	}
	for _, a := range m.Alerts {
		f.keep(a.Labels, a.Status == "firing")
	}
	w.WriteHeader(http.StatusAccepted)
}

func (f *fakeVigil) authorized(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if !slices.Contains(md.Get("authorization"), "Bearer "+f.token) {
		return status.Error(codes.Unauthenticated, "no")
	}
	return nil
}

func (f *fakeVigil) IngestAlerts(ctx context.Context, req *gatewayv1.IngestAlertsRequest) (*gatewayv1.IngestAlertsResponse, error) {
	if err := f.authorized(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reject() {
		return nil, status.Error(codes.Unavailable, "alerts could not be stored")
	}
	for _, a := range req.GetAlerts() {
		f.keep(a.GetLabels(), a.GetStatus() != typesv1.AlertStatus_ALERT_STATUS_RESOLVED)
	}
	return &gatewayv1.IngestAlertsResponse{}, nil
}

func (f *fakeVigil) ListIncidents(ctx context.Context, req *monitorv1.ListIncidentsRequest) (*monitorv1.ListIncidentsResponse, error) {
	if err := f.authorized(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// Another run's incident, which must not count.
	incs := []*typesv1.Incident{{Title: "BenchOther_0 in ns0", GroupLabels: map[string]string{"alertname": "BenchOther_0"}, AlertCount: 1000}}
	for k, alerts := range f.groups {
		incs = append(incs, &typesv1.Incident{
			Title: k[0] + " in " + k[1], GroupLabels: map[string]string{"alertname": k[0], "namespace": k[1]}, AlertCount: int32(len(alerts)),
		})
	}
	slices.SortFunc(incs, func(a, b *typesv1.Incident) int { return strings.Compare(a.GetTitle(), b.GetTitle()) })
	from, _ := strconv.Atoi(req.GetPageToken())
	to := min(from+2, len(incs))
	resp := &monitorv1.ListIncidentsResponse{Incidents: incs[from:to]}
	if to < len(incs) {
		resp.NextPageToken = strconv.Itoa(to)
	}
	return resp, nil
}

func TestRunAgainstFake(t *testing.T) {
	t.Parallel()
	for _, via := range []string{ViaWebhook, ViaGRPC} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			f, httpURL, grpcAddr := startFake(t, 7)
			o := validOptions()
			o.HTTPURL, o.GRPCAddr, o.Token, o.Via = httpURL, grpcAddr, f.token, via
			o.Senders, o.AlertsPerRequest, o.Groups, o.Duration, o.Count = 2, 10, 3, 0, 300
			o.RepeatRatio, o.ResolveRatio, o.PollInterval = 0.2, 0.1, 10*time.Millisecond
			o.PID = os.Getpid()
			g, err := New(o, Deps{Logger: nil})
			require.NoError(t, err)
			r, err := g.Run(t.Context())
			require.NoError(t, err)

			require.False(t, r.Interrupted)
			require.True(t, r.Drained)
			require.Positive(t, r.Accepted)
			require.Equal(t, r.Accepted, r.Persisted, "every accepted alert accounted for, none of the other run's")
			require.Zero(t, r.Missing)
			require.Equal(t, 3, r.Incidents)
			require.Positive(t, r.Repeats)
			require.Positive(t, r.Resolutions)
			wantStatus := "HTTP 503"
			if via == ViaGRPC {
				wantStatus = "gRPC Unavailable"
			}
			require.Equal(t, r.Requests-r.RequestsAccepted, r.NotAccepted[wantStatus], "rejections reported by status")
			require.Positive(t, r.NotAccepted[wantStatus])
			require.Positive(t, r.AlertsNotAccepted)
			require.Positive(t, r.Lag.Samples)
			require.NotNil(t, r.Process)
			require.Positive(t, r.Process.PeakRSS)

			var table strings.Builder
			require.NoError(t, r.WriteTable(&table))
			require.Contains(t, table.String(), "all accounted for")
			t.Log("\n" + table.String())
			b, err := json.Marshal(r)
			require.NoError(t, err)
			require.Contains(t, string(b), `"lag":{"p50_seconds":`)
		})
	}
}

func TestRunInterrupted(t *testing.T) {
	t.Parallel()
	f, httpURL, grpcAddr := startFake(t, 0)
	o := validOptions()
	o.HTTPURL, o.GRPCAddr, o.Token = httpURL, grpcAddr, f.token
	o.Senders, o.AlertsPerRequest, o.Groups, o.Duration, o.Rate = 2, 10, 3, time.Hour, 2000
	g, err := New(o, Deps{})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	r, err := g.Run(ctx)
	require.NoError(t, err)
	require.Less(t, time.Since(start), 30*time.Second, "Ctrl-C stops the run")
	require.True(t, r.Interrupted)
	require.Positive(t, r.Accepted)
	// A request cancelled in flight may have been stored all the same.
	require.LessOrEqual(t, r.Persisted, r.Accepted+r.AlertsNotAccepted)
}

func TestRunRefusedToken(t *testing.T) {
	t.Parallel()
	_, httpURL, grpcAddr := startFake(t, 0)
	o := validOptions()
	o.HTTPURL, o.GRPCAddr, o.Token = httpURL, grpcAddr, "wrong-token-0123456789"
	g, err := New(o, Deps{})
	require.NoError(t, err)
	_, err = g.Run(t.Context())
	require.ErrorContains(t, err, "the token was refused (VIGIL_TOKEN or --token-file)")
}
