// Package loadgen measures a running Vigil end to end (`vigil bench
// ingest`): it sends Alertmanager webhooks or gRPC IngestAlerts requests
// at a chosen concurrency, size and rate, and reads the incidents back
// through the public API until every accepted alert is accounted for. It
// reports what was accepted and how fast, how fast and how late alerts
// reached incidents, and, when asked, what the run cost in JetStream and
// Postgres storage and in the process's memory.
//
// Every alert of a run carries the run's id: its alertname is
// "Bench<run>_<i>", so the incidents of a run are its own (with the
// default grouping by alertname and namespace), and a unique label
// instance="bench-<run>-<n>", so runs do not collide.
//
// The lag to incident is measured by matching two cumulative curves, of
// alerts accepted (the client's clock when the 202 or OK arrived) and of
// alerts seen in incidents (the client's clock when a read-back answered),
// first in, first out. The read-back polls every PollInterval from the
// first request on, so that is the lag's resolution; its polls are load
// on the system too.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/url"
	"regexp"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
)

// Ways to send alerts.
const (
	ViaWebhook = "webhook"
	ViaGRPC    = "grpc"
)

// Defaults of the options left zero.
const (
	DefaultWaitTimeout    = 10 * time.Minute
	DefaultPollInterval   = 200 * time.Millisecond
	DefaultRequestTimeout = 30 * time.Second
)

// maxAlertsPerRequest is the most alerts the gateway takes in one webhook.
const maxAlertsPerRequest = 10_000

// Options configure a run. They mirror the flags of `vigil bench ingest`,
// and Validate's messages name those flags.
type Options struct {
	// HTTPURL is the gateway's base URL (webhooks); GRPCAddr its gRPC
	// address (ingest with ViaGRPC, and the read-back either way).
	HTTPURL  string
	GRPCAddr string
	// Token is the Bearer token for both.
	Token string
	// IngestToken, when set, sends the webhooks instead of Token (a team's
	// ingest key, so the gateway resolves each alert's subject); Token
	// still reads back.
	IngestToken string
	// Via is ViaWebhook or ViaGRPC.
	Via              string
	Senders          int
	AlertsPerRequest int
	// Groups is how many alertname × namespace combinations the alerts
	// spread over: group g is alertname Bench<run>_<g/10> in namespace
	// ns<g%10> (ns0 … ns<Groups-1> when Groups < 10).
	Groups int
	// Rate caps the alerts sent per second, all senders together and
	// repeats and resolutions included; 0 sends flat out.
	Rate float64
	// Duration and Count (unique alerts) stop sending at whichever comes
	// first; at least one must be set. When Count is reached, resolutions
	// still due are sent before sending stops.
	Duration time.Duration
	Count    int64
	// RepeatRatio is the fraction of alerts sent (resolutions aside) that
	// repeat an accepted, firing alert: same labels and startsAt, so
	// monitor must fold them into the alert it has.
	RepeatRatio float64
	// ResolveRatio is the fraction of accepted unique alerts sent again,
	// later, as resolved with endsAt.
	ResolveRatio float64
	// WaitTimeout bounds the read-back after sending stopped.
	WaitTimeout time.Duration
	// PollInterval is how often the read-back lists incidents.
	PollInterval time.Duration
	// RequestTimeout bounds each request, and each read-back.
	RequestTimeout time.Duration
	// NATSURL, when set, measures JetStream's storage before and after.
	NATSURL string
	// DatabaseURL, when set, measures the database's size before and
	// after.
	DatabaseURL string
	// PID, when set, samples that process's memory (Linux /proc).
	PID int
	// RunID names the run; random when empty.
	RunID string
}

var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9]{1,32}$`)

// Validate reports options a user must fix.
func (o Options) Validate() error {
	var errs []error
	switch o.Via {
	case ViaWebhook:
		if u, err := url.Parse(o.HTTPURL); o.HTTPURL == "" {
			errs = append(errs, errors.New("--url: missing (the gateway's HTTP address, e.g. http://127.0.0.1:8080)"))
		} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--url %q: want http://host:port or https://host:port", o.HTTPURL))
		}
	case ViaGRPC:
	default:
		errs = append(errs, fmt.Errorf("--via %q: want %s or %s", o.Via, ViaWebhook, ViaGRPC))
	}
	if o.GRPCAddr == "" {
		errs = append(errs, errors.New("--addr: missing (the gateway's gRPC address, e.g. 127.0.0.1:9090; incidents are read back through it)"))
	}
	if o.Token == "" {
		errs = append(errs, errors.New("VIGIL_TOKEN: missing (or pass --token-file, e.g. vigil-data/admin-token)"))
	}
	if o.Senders < 1 {
		errs = append(errs, fmt.Errorf("--senders: must be at least 1, got %d", o.Senders))
	}
	if o.AlertsPerRequest < 1 || o.AlertsPerRequest > maxAlertsPerRequest {
		errs = append(errs, fmt.Errorf("--alerts-per-request: must be between 1 and %d, got %d", maxAlertsPerRequest, o.AlertsPerRequest))
	}
	if o.Groups < 1 {
		errs = append(errs, fmt.Errorf("--groups: must be at least 1, got %d", o.Groups))
	}
	if o.Rate < 0 {
		errs = append(errs, fmt.Errorf("--rate: must not be negative (0 sends flat out), got %g", o.Rate))
	}
	if o.Duration < 0 {
		errs = append(errs, fmt.Errorf("--duration: must not be negative, got %s", o.Duration))
	}
	if o.Count < 0 {
		errs = append(errs, fmt.Errorf("--count: must not be negative, got %d", o.Count))
	}
	if o.Duration == 0 && o.Count == 0 {
		errs = append(errs, errors.New("--duration or --count: set at least one (sending stops at whichever comes first)"))
	}
	if o.RepeatRatio < 0 || o.RepeatRatio >= 1 {
		errs = append(errs, fmt.Errorf("--repeat-ratio: must be at least 0 and below 1, got %g", o.RepeatRatio))
	}
	if o.ResolveRatio < 0 || o.ResolveRatio > 1 {
		errs = append(errs, fmt.Errorf("--resolve-ratio: must be between 0 and 1, got %g", o.ResolveRatio))
	}
	if o.WaitTimeout < 0 {
		errs = append(errs, fmt.Errorf("--wait-timeout: must not be negative, got %s", o.WaitTimeout))
	}
	if o.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("--poll-interval: must not be negative, got %s", o.PollInterval))
	}
	if o.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("--request-timeout: must not be negative, got %s", o.RequestTimeout))
	}
	if o.PID < 0 {
		errs = append(errs, fmt.Errorf("--pid: must not be negative, got %d", o.PID))
	}
	if o.RunID != "" && !runIDPattern.MatchString(o.RunID) {
		errs = append(errs, fmt.Errorf("--run-id %q: want 1 to 32 letters and digits", o.RunID))
	}
	return errors.Join(errs...)
}

// Deps are what a run reports to.
type Deps struct {
	// Logger gets progress; the results are in the Report.
	Logger *slog.Logger
}

// Generator is one run. Run it once.
type Generator struct {
	opts     Options
	log      *slog.Logger
	spec     *spec
	work     *workload
	conn     *grpc.ClientConn
	sender   sender
	readback *readback
	stats    stats
}

// sender sends one request.
type sender interface {
	send(ctx context.Context, req request) outcome
	close()
}

// outcome is how a request ended.
type outcome struct {
	accepted bool
	// status names why it was not accepted: "HTTP 503", "gRPC
	// Unavailable", "timeout"...; detail is the answer or the error.
	status, detail string
}

// measureTimeout bounds each storage measurement.
const measureTimeout = 10 * time.Second

// New validates opts and prepares a run; it connects to nothing yet.
func New(opts Options, deps Deps) (*Generator, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.WaitTimeout == 0 {
		opts.WaitTimeout = DefaultWaitTimeout
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.RunID == "" {
		opts.RunID = fmt.Sprintf("%08x", rand.Uint32())
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	conn, err := grpc.NewClient(opts.GRPCAddr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(bearer(opts.Token)),
	)
	if err != nil {
		return nil, fmt.Errorf("--addr %s: %w", opts.GRPCAddr, err)
	}
	s := &spec{runID: opts.RunID, groups: opts.Groups, startsAt: time.Now().UTC().Truncate(time.Millisecond)}
	g := &Generator{
		opts: opts,
		log:  deps.Logger.With("component", "loadgen", "run", opts.RunID),
		spec: s,
		work: newWorkload(opts.Groups, opts.Count, opts.RepeatRatio, opts.ResolveRatio, rand.Uint64()),
		conn: conn,
		readback: &readback{
			client: monitorv1.NewIncidentServiceClient(conn), prefix: s.prefix(), timeout: opts.RequestTimeout,
		},
		stats: stats{notAccepted: map[string]int64{}, samples: map[string]string{}},
	}
	if opts.Via == ViaGRPC {
		g.sender = &grpcSender{spec: s, client: gatewayv1.NewAlertServiceClient(conn)}
	} else {
		token := opts.Token
		if opts.IngestToken != "" {
			token = opts.IngestToken
		}
		g.sender = newWebhookSender(s, opts.HTTPURL, token, opts.Senders)
	}
	return g, nil
}

// RunID names the run's alerts.
func (g *Generator) RunID() string { return g.opts.RunID }

// Run sends, reads back and reports. When ctx is cancelled (Ctrl-C) it
// stops sending and reading back and reports what it measured, with
// Interrupted set; it fails only when it cannot start: the read-back or
// a measurement asked for does not answer.
func (g *Generator) Run(ctx context.Context) (*Report, error) {
	defer g.conn.Close()
	defer g.sender.close()
	o := g.opts
	r := &Report{
		RunID: o.RunID, Via: o.Via, Senders: o.Senders, AlertsPerRequest: o.AlertsPerRequest,
		Groups: o.Groups, Rate: o.Rate, PollInterval: Duration(o.PollInterval),
	}

	// Before: each measurement asked for must work, or the run is moot.
	var (
		jsBefore jetStreamSnapshot
		pgBefore int64
		err      error
	)
	if o.NATSURL != "" {
		if jsBefore, err = jetStreamUsageAt(ctx, o.NATSURL, measureTimeout); err != nil {
			return nil, err
		}
	}
	if o.DatabaseURL != "" {
		if pgBefore, err = databaseSize(ctx, o.DatabaseURL, measureTimeout); err != nil {
			return nil, err
		}
	}
	if o.PID != 0 {
		if _, _, err := procMemory(o.PID); err != nil {
			return nil, err
		}
	}
	baseline, _, err := g.readback.count(ctx)
	if err != nil {
		return nil, readbackError(o.GRPCAddr, err)
	}

	// After: measurements that outlive a Ctrl-C, each bounded.
	after := context.WithoutCancel(ctx)
	var (
		memWG  sync.WaitGroup
		mem    *ProcessUsage
		memErr error
	)
	memCtx, stopMem := context.WithCancel(after)
	defer stopMem()
	if o.PID != 0 {
		memWG.Go(func() { mem, memErr = sampleMemory(memCtx, o.PID) })
	}

	g.log.InfoContext(ctx, "bench started", "via", o.Via, "senders", o.Senders, "alerts_per_request", o.AlertsPerRequest,
		"groups", o.Groups, "rate", o.Rate, "duration", o.Duration, "count", o.Count, "alertname_prefix", g.spec.prefix())
	total := make(chan int64, 1)
	var poll pollResult
	var pollWG sync.WaitGroup
	pollWG.Go(func() { poll = g.poll(ctx, baseline, total) })
	sendStart := time.Now()
	g.send(ctx)
	sendEnd := time.Now()
	st := g.stats.snapshot()
	total <- st.accepted
	g.log.InfoContext(ctx, "sending stopped", "accepted", st.accepted, "requests", st.requests,
		"requests_not_accepted", st.requests-st.requestsAccepted, "wait_timeout", o.WaitTimeout)
	pollWG.Wait()
	r.Interrupted = ctx.Err() != nil
	if r.Interrupted && !poll.drained {
		// One last look, so what reached incidents by now is reported.
		if n, incs, err := g.readback.count(after); err == nil {
			poll.observe(time.Now(), n-baseline, incs)
		}
	}
	stopMem()
	memWG.Wait()

	r.Send = Duration(sendEnd.Sub(sendStart))
	r.Requests, r.RequestsAccepted = st.requests, st.requestsAccepted
	r.NotAccepted, r.NotAcceptedSample = st.notAccepted, st.samples
	r.Accepted, r.Repeats, r.Resolutions, r.AlertsNotAccepted = st.accepted, st.repeats, st.resolutions, st.alertsNotAccepted
	if secs := sendEnd.Sub(sendStart).Seconds(); secs > 0 {
		r.AcceptedPerSecond = float64(st.accepted) / secs
		r.AlertsPerSecond = float64(st.accepted+st.repeats+st.resolutions) / secs
	}
	r.AcceptedCurve, r.PersistedCurve = cumulative(st.events), poll.curve
	r.Persisted, r.Incidents = poll.persisted(), poll.incidents
	r.Missing = max0(r.Accepted - r.Persisted)
	r.Drained = poll.drained
	r.Polls, r.PollErrors = poll.polls, poll.errors
	if poll.lastErr != nil {
		r.Warnings = append(r.Warnings, fmt.Sprintf("read-back failed %d of %d times, last: %v", poll.errors, poll.polls, poll.lastErr))
	}
	if len(r.AcceptedCurve) > 0 && r.Persisted > 0 {
		first := r.AcceptedCurve[0].At
		if at, ok := reach(r.PersistedCurve, r.Persisted); ok && at.After(first) {
			r.PersistedPerSecond = float64(r.Persisted) / at.Sub(first).Seconds()
		}
	}
	end := poll.lastAt
	if r.Drained {
		end, _ = reach(r.PersistedCurve, r.Accepted)
	}
	r.Drain = Duration(max0(end.Sub(sendEnd)))
	r.Lag = lagOf(r.AcceptedCurve, r.PersistedCurve, lagSamples)

	if o.NATSURL != "" {
		if jsAfter, err := jetStreamUsageAt(after, o.NATSURL, measureTimeout); err != nil {
			r.Warnings = append(r.Warnings, err.Error())
		} else {
			r.JetStream = jetStreamUsage(jsBefore, jsAfter, r.Accepted)
		}
	}
	if o.DatabaseURL != "" {
		if pgAfter, err := databaseSize(after, o.DatabaseURL, measureTimeout); err != nil {
			r.Warnings = append(r.Warnings, err.Error())
		} else {
			r.Postgres = &PostgresUsage{BytesBefore: pgBefore, BytesAfter: pgAfter, Delta: pgAfter - pgBefore}
			r.Postgres.BytesPerAlert = perAlert(r.Postgres.Delta, r.Accepted)
		}
	}
	if o.PID != 0 {
		r.Process = mem
		if memErr != nil {
			r.Warnings = append(r.Warnings, memErr.Error())
		}
	}
	return r, nil
}

// readbackError says what to fix when incidents cannot be read.
func readbackError(addr string, err error) error {
	switch status.Code(err) {
	case codes.Unauthenticated:
		return fmt.Errorf("read back incidents at %s: the token was refused (VIGIL_TOKEN or --token-file): %w", addr, err)
	case codes.Unavailable:
		return fmt.Errorf("read back incidents at %s: is Vigil running (vigil up)? %w", addr, err)
	}
	return fmt.Errorf("read back incidents at %s: %w", addr, err)
}

// send runs the senders until the count is sent, the duration is over or
// ctx is cancelled. Requests in flight when the duration ends finish;
// those in flight at a cancel are cancelled.
func (g *Generator) send(ctx context.Context) {
	sendCtx := ctx
	if g.opts.Duration > 0 {
		var cancel context.CancelFunc
		sendCtx, cancel = context.WithTimeout(ctx, g.opts.Duration)
		defer cancel()
	}
	var limiter *rate.Limiter
	if g.opts.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(g.opts.Rate), g.opts.AlertsPerRequest)
	}
	var wg sync.WaitGroup
	for range g.opts.Senders {
		wg.Go(func() { g.sendLoop(ctx, sendCtx, limiter) })
	}
	wg.Wait()
}

func (g *Generator) sendLoop(ctx, sendCtx context.Context, limiter *rate.Limiter) {
	idle := time.NewTimer(0)
	defer idle.Stop()
	for sendCtx.Err() == nil {
		req, state := g.work.take(g.opts.AlertsPerRequest)
		switch state {
		case finished:
			return
		case wait:
			// Requests in flight may yet queue resolutions.
			idle.Reset(time.Millisecond)
			select {
			case <-sendCtx.Done():
				return
			case <-idle.C:
			}
			continue
		}
		if limiter != nil {
			if err := limiter.WaitN(sendCtx, len(req.alerts)); err != nil {
				g.work.done(req, false)
				return
			}
		}
		rctx, cancel := context.WithTimeout(ctx, g.opts.RequestTimeout)
		out := g.sender.send(rctx, req)
		cancel()
		g.stats.record(req, out, time.Now())
		g.work.done(req, out.accepted)
	}
}

// pollResult is what the read-back saw.
type pollResult struct {
	// curve is the persisted count each time it rose.
	curve     []Point
	incidents int
	polls     int
	errors    int
	lastErr   error
	lastAt    time.Time
	drained   bool
}

func (p *pollResult) persisted() int64 {
	if len(p.curve) == 0 {
		return 0
	}
	return p.curve[len(p.curve)-1].N
}

// observe records a count. Counts only rise: a lower one (an incident
// missed between pages as new ones were inserted) is not a point.
func (p *pollResult) observe(at time.Time, n int64, incidents int) {
	p.lastAt = at
	p.incidents = max(p.incidents, incidents)
	if n > p.persisted() {
		p.curve = append(p.curve, Point{At: at, N: n})
	}
}

// progressEvery is how often progress is logged.
const progressEvery = 5 * time.Second

// poll reads back every PollInterval until total (the accepted count,
// sent once sending stopped) is reached, WaitTimeout after sending
// stopped, or ctx is cancelled.
func (g *Generator) poll(ctx context.Context, baseline int64, total <-chan int64) pollResult {
	var (
		p        pollResult
		target   int64 = -1
		deadline time.Time
		logged   = time.Now()
	)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		start := time.Now()
		n, incs, err := g.readback.count(ctx)
		now := time.Now()
		if ctx.Err() != nil {
			return p
		}
		p.polls++
		if err != nil {
			p.errors++
			p.lastErr = err
			if p.errors == 1 || p.errors%50 == 0 {
				g.log.WarnContext(ctx, "read-back failed", "failures", p.errors, "error", err)
			}
		} else {
			p.observe(now, n-baseline, incs)
		}
		if target < 0 {
			select {
			case target = <-total:
				deadline = now.Add(g.opts.WaitTimeout)
			default:
			}
		}
		if target >= 0 && p.persisted() >= target {
			p.drained = true
			return p
		}
		if target >= 0 && !now.Before(deadline) {
			g.log.WarnContext(ctx, "read-back gave up", "accepted", target, "persisted", p.persisted(), "wait_timeout", g.opts.WaitTimeout)
			return p
		}
		if now.Sub(logged) >= progressEvery {
			logged = now
			accepted, notAccepted := g.stats.progress()
			g.log.InfoContext(ctx, "bench progress", "accepted", accepted, "persisted", p.persisted(),
				"requests_not_accepted", notAccepted, "sending", target < 0)
		}
		timer.Reset(max0(g.opts.PollInterval - time.Since(start)))
		select {
		case <-ctx.Done():
			return p
		case <-timer.C:
		}
	}
}

// stats are the send phase's counts, shared by the senders.
type stats struct {
	mu                sync.Mutex
	events            []Point // per accepted request: when, unique alerts
	requests          int64
	requestsAccepted  int64
	accepted          int64
	repeats           int64
	resolutions       int64
	alertsNotAccepted int64
	notAccepted       map[string]int64
	samples           map[string]string
}

func (s *stats) record(req request, out outcome, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if !out.accepted {
		s.alertsNotAccepted += int64(len(req.alerts))
		s.notAccepted[out.status]++
		if _, ok := s.samples[out.status]; !ok {
			s.samples[out.status] = out.detail
		}
		return
	}
	s.requestsAccepted++
	var n int64
	for _, a := range req.alerts {
		switch a.kind {
		case unique:
			n++
		case repeat:
			s.repeats++
		case resolve:
			s.resolutions++
		}
	}
	s.accepted += n
	s.events = append(s.events, Point{At: at, N: n})
}

// progress returns the unique alerts accepted so far and the requests not
// accepted.
func (s *stats) progress() (accepted, notAccepted int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted, s.requests - s.requestsAccepted
}

// statsSnapshot is a copy of stats.
type statsSnapshot struct {
	events                                            []Point
	requests, requestsAccepted                        int64
	accepted, repeats, resolutions, alertsNotAccepted int64
	notAccepted                                       map[string]int64
	samples                                           map[string]string
}

func (s *stats) snapshot() statsSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := statsSnapshot{
		events: append([]Point(nil), s.events...), requests: s.requests, requestsAccepted: s.requestsAccepted,
		accepted: s.accepted, repeats: s.repeats, resolutions: s.resolutions, alertsNotAccepted: s.alertsNotAccepted,
		notAccepted: map[string]int64{}, samples: map[string]string{},
	}
	maps.Copy(out.notAccepted, s.notAccepted)
	maps.Copy(out.samples, s.samples)
	return out
}
