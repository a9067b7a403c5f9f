// Package server runs a Vigil process's listeners: a gRPC server (with
// health and reflection) and one HTTP listener that serves the same API as
// REST through grpc-gateway, webhooks, /healthz, /readyz, /metrics and the
// OpenAPI document. Failed REST calls answer RFC 9457 problem JSON.
//
// It is also where the API's plumbing lives, once: the error interceptors
// that answer and log every failed call (UnaryErrors, StreamErrors), the
// field-violation error (BadRequestError), and the page-size and
// page-token helpers (PageSize, PageToken, ParsePageToken, NextPage).
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vigil-ops/vigil/pkg/apidocs"
)

// Options configure the listeners.
type Options struct {
	// GRPCAddr and HTTPAddr to listen on, host:port; port 0 picks one.
	GRPCAddr string
	HTTPAddr string
	Logger   *slog.Logger
	// Gatherer serves /metrics.
	Gatherer prometheus.Gatherer
	// Interceptors run on every gRPC call, in order (authentication...),
	// inside UnaryErrors and StreamErrors, which answer and log their
	// failures too.
	UnaryInterceptors  []grpc.UnaryServerInterceptor
	StreamInterceptors []grpc.StreamServerInterceptor
	// ShutdownTimeout bounds the whole stop (default 10s): the listeners
	// close at once; requests in flight are told to end -- their
	// contexts are cancelled -- a fifth of it before its end, so they
	// answer (503 for what could not be done in time) before their
	// connections are closed at its end.
	ShutdownTimeout time.Duration
}

// Server holds the gRPC server and the HTTP mux of one process. Register
// gRPC services on GRPC and HTTP handlers with Handle before Run.
type Server struct {
	GRPC *grpc.Server
	// Gateway is the grpc-gateway mux serving /api/v1/.
	Gateway *runtime.ServeMux

	opts     Options
	mux      *http.ServeMux
	health   *health.Server
	ready    atomic.Bool
	checks   []func(context.Context) error
	grpcLis  net.Listener
	httpLis  net.Listener
	httpSrv  *http.Server
	selfConn *grpc.ClientConn
	// rest serves /api/v1/: Gateway, behind what WrapREST added.
	rest http.Handler
	// authorize and restMaxBytes guard the REST routes before their
	// bodies are read (AuthorizeREST, LimitREST).
	authorize    Authorizer
	restMaxBytes int64
	stop         *stop
}

// New returns a Server; Listen binds it and Run serves.
func New(opts Options) *Server {
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	s := &Server{opts: opts, mux: http.NewServeMux(), health: health.NewServer(), restMaxBytes: DefaultRESTMaxBytes, stop: newStop()}
	s.GRPC = grpc.NewServer(
		grpc.StatsHandler(otelgrpc.NewServerHandler()),
		grpc.ChainUnaryInterceptor(append([]grpc.UnaryServerInterceptor{UnaryErrors(opts.Logger), s.stop.unary}, opts.UnaryInterceptors...)...),
		grpc.ChainStreamInterceptor(append([]grpc.StreamServerInterceptor{StreamErrors(opts.Logger), s.stop.stream}, opts.StreamInterceptors...)...),
	)
	healthpb.RegisterHealthServer(s.GRPC, s.health)
	reflection.Register(s.GRPC)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)

	s.Gateway = runtime.NewServeMux(
		runtime.WithErrorHandler(s.problemErrorHandler),
		runtime.WithRoutingErrorHandler(routingErrorHandler),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
		runtime.WithMiddlewares(s.restMiddleware),
		// Both would read a form body before the route, and so before
		// the caller's permission, is known; no client of Vigil uses them.
		runtime.WithDisableHTTPMethodOverride(),
		runtime.WithDisablePathLengthFallback(),
	)
	s.rest = s.Gateway
	s.mux.HandleFunc("/api/v1/", s.capREST)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(apidocs.OpenAPI)
	})
	if opts.Gatherer != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	}
	return s
}

// WrapREST puts mw in front of the REST API (not the webhooks and
// documents registered with Handle). Call before Run.
func (s *Server) WrapREST(mw func(http.Handler) http.Handler) { s.rest = mw(s.rest) }

// Handle adds an HTTP handler (a webhook, say) next to the REST API.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// AddReadinessCheck adds a check /readyz runs (database ping, NATS
// connected...).
func (s *Server) AddReadinessCheck(check func(context.Context) error) {
	s.checks = append(s.checks, check)
}

// Listen binds both listeners, so their addresses are known (port 0).
func (s *Server) Listen() error {
	var err error
	if s.grpcLis, err = net.Listen("tcp", s.opts.GRPCAddr); err != nil {
		return fmt.Errorf("listen gRPC on %s: %w", s.opts.GRPCAddr, err)
	}
	if s.httpLis, err = net.Listen("tcp", s.opts.HTTPAddr); err != nil {
		_ = s.grpcLis.Close()
		return fmt.Errorf("listen HTTP on %s: %w", s.opts.HTTPAddr, err)
	}
	return nil
}

// GRPCAddr and HTTPAddr are the bound addresses, after Listen.
func (s *Server) GRPCAddr() string { return s.grpcLis.Addr().String() }

// HTTPAddr is the bound HTTP address, after Listen.
func (s *Server) HTTPAddr() string { return s.httpLis.Addr().String() }

// SelfConn returns a client connection to this server's own gRPC listener,
// for grpc-gateway: REST calls then pass the same interceptors
// (authentication, logging) as gRPC calls. Call after Listen.
func (s *Server) SelfConn() (*grpc.ClientConn, error) {
	if s.selfConn != nil {
		return s.selfConn, nil
	}
	addr := s.grpcLis.Addr().(*net.TCPAddr)
	target := addr.String()
	if addr.IP.IsUnspecified() {
		target = net.JoinHostPort("127.0.0.1", fmt.Sprint(addr.Port))
	}
	conn, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
	)
	if err != nil {
		return nil, fmt.Errorf("dial own gRPC listener: %w", err)
	}
	s.selfConn = conn
	return conn, nil
}

// SetNotServing tells health checks the process is going away, first
// thing in a shutdown, so load balancers stop sending it work.
func (s *Server) SetNotServing() {
	s.ready.Store(false)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
}

// Run serves until ctx is cancelled, then stops: health NOT_SERVING, HTTP
// shutdown, gRPC GracefulStop, all within ShutdownTimeout.
func (s *Server) Run(ctx context.Context) error {
	if s.grpcLis == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	// Requests' contexts end when the stop says so, not when ctx does:
	// they keep their time to finish.
	defer s.stop.endRequests()
	s.httpSrv = &http.Server{
		BaseContext:       func(net.Listener) context.Context { return s.stop.requests },
		Handler:           otelhttp.NewHandler(s.mux, "http", otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path })),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
	errc := make(chan error, 2)
	go func() { errc <- s.GRPC.Serve(s.grpcLis) }()
	go func() { errc <- s.httpSrv.Serve(s.httpLis) }()
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.ready.Store(true)
	s.opts.Logger.InfoContext(ctx, "listening", "grpc", s.GRPCAddr(), "http", s.HTTPAddr())

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	s.ready.Store(false)
	s.health.Shutdown()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	answer := time.AfterFunc(s.opts.ShutdownTimeout-s.opts.ShutdownTimeout/5, s.stop.endRequests)
	defer answer.Stop()
	if err := s.httpSrv.Shutdown(sctx); err != nil {
		s.opts.Logger.WarnContext(ctx, "http shutdown", "error", err)
	}
	stopped := make(chan struct{})
	go func() { s.GRPC.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-sctx.Done():
		s.GRPC.Stop()
	}
	if s.selfConn != nil {
		_ = s.selfConn.Close()
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) && !errors.Is(serveErr, grpc.ErrServerStopped) {
		return serveErr
	}
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		WriteProblem(w, http.StatusServiceUnavailable, "not serving")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	for _, check := range s.checks {
		if err := check(ctx); err != nil {
			WriteProblem(w, http.StatusServiceUnavailable, err.Error())
			return
		}
	}
	_, _ = w.Write([]byte("ok\n"))
}

// problemErrorHandler is problemErrorHandler, but a body that could not
// be decoded because it was cut at the limit is 413, logged here (the
// RPC, which would log the failure, is never called).
func (s *Server) problemErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if status.Code(err) == codes.InvalidArgument && tooLarge(w, r) {
		s.opts.Logger.InfoContext(ctx, "request body too large", "method", r.Method, "path", r.URL.Path, "content_length", r.ContentLength)
		return
	}
	problemErrorHandler(ctx, mux, m, w, r, err)
}

// problemErrorHandler writes gRPC errors of REST calls as problem JSON with
// the matching HTTP status and the field violations, and a Retry-After
// from the status's RetryInfo.
func problemErrorHandler(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, _ *http.Request, err error) {
	st := status.Convert(err)
	if ra := RetryAfter(st); ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	WriteProblem(w, runtime.HTTPStatusFromCode(st.Code()), st.Message(), Violations(st)...)
}

func routingErrorHandler(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, code int) {
	WriteProblem(w, code, fmt.Sprintf("%s %s: %s", r.Method, r.URL.Path, http.StatusText(code)))
}
