// Package app composes Vigil's services into one process: all of them
// (`vigil up`) or one (`vigil serve <service>`), the same way tests do. It
// owns the process's lifecycle: start in order, and on cancel stop in
// order — health NOT_SERVING, consumers stop pulling and finish their
// batch, NATS drains, gRPC stops gracefully, pools close.
package app

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"k8s.io/client-go/kubernetes"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/clustercred"
	"github.com/vigil-ops/vigil/pkg/db"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/pkg/replay"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/pkg/telemetry"
	"github.com/vigil-ops/vigil/services/analysis"
	"github.com/vigil-ops/vigil/services/deploy"
	"github.com/vigil-ops/vigil/services/gateway"
	"github.com/vigil-ops/vigil/services/monitor"
	"github.com/vigil-ops/vigil/services/notify"
	"github.com/vigil-ops/vigil/services/repair"
)

// Services are the services a process can run, in start order.
var Services = []string{"monitor", "deploy", "analysis", "repair", "notify", "gateway"}

// Options configure a process.
type Options struct {
	// Services to run; all of Services for `vigil up`.
	Services []string
	GRPCAddr string
	HTTPAddr string
	// AdminToken is the bootstrap credential: an admin of everything. The
	// gateway accepts it; another service only with AcceptAdminToken.
	AdminToken string
	// AcceptAdminToken lets a process without the gateway accept
	// AdminToken too (for recovery, when the gateway is down). Off by
	// default: a service that reads untrusted input (analysis) must not
	// hold the key to everything.
	AcceptAdminToken bool
	// ShutdownTimeout is the budget of the whole stop, from the signal
	// to Run's return (DefaultShutdownTimeout when zero): requests in
	// flight, consumers' batches, the NATS drain share it.
	ShutdownTimeout time.Duration
	// StatementTimeout bounds every statement of every pool
	// (db.DefaultStatementTimeout when zero).
	StatementTimeout time.Duration
	// MonitorAddr, DeployAddr, AnalysisAddr, RepairAddr and NotifyAddr
	// are the gRPC addresses of the services a gateway forwards their API
	// to, when they run in other processes; without one, that service's
	// API answers Unavailable ("... service not configured").
	//
	// MonitorAddr is monitor's gRPC address.
	MonitorAddr string
	// DeployAddr is the deploy service's gRPC address (for analysis and
	// repair too: their access to the clusters).
	DeployAddr string
	// AnalysisAddr is the analysis service's gRPC address.
	AnalysisAddr string
	// RepairAddr is the repair service's gRPC address.
	RepairAddr string
	// NotifyAddr is notify's gRPC address.
	NotifyAddr string
	Gateway    gateway.Options
	Monitor    monitor.Options
	Notify     notify.Options
	Deploy     deploy.Options
	Analysis   analysis.Options
	Repair     repair.Options
	// LLM configures the LLM engines tried before the rules (none by
	// default).
	LLM analysis.LLMOptions
	// Streams tune the JetStream streams this process provisions (with
	// Deps.Admin).
	Streams bus.StreamOptions
}

// Validate reports options a user must fix.
func (o Options) Validate() error {
	var errs []error
	if len(o.Services) == 0 {
		errs = append(errs, errors.New("no service to run"))
	}
	for _, s := range o.Services {
		if !slices.Contains(Services, s) {
			errs = append(errs, fmt.Errorf("unknown service %q: want one of %v", s, Services))
		}
	}
	if o.ShutdownTimeout < 0 {
		errs = append(errs, errors.New("VIGIL_SHUTDOWN_TIMEOUT: must be positive"))
	}
	if o.StatementTimeout < 0 {
		errs = append(errs, errors.New("VIGIL_DB_STATEMENT_TIMEOUT: must be positive"))
	}
	if o.AdminToken != "" && len(o.AdminToken) < 16 {
		errs = append(errs, errors.New("VIGIL_ADMIN_TOKEN: must be at least 16 characters"))
	}
	if o.runs("deploy") {
		errs = append(errs, o.Deploy.Validate())
	}
	errs = append(errs, o.Gateway.Validate(), o.Monitor.Validate(), o.Notify.Validate(), o.Analysis.Validate(), o.Repair.Validate(), o.LLM.Validate())
	return errors.Join(errs...)
}

func (o Options) runs(s string) bool { return slices.Contains(o.Services, s) }

// Deps are the process's connections.
type Deps struct {
	// DatabaseURL of the Postgres every service of the process uses, each
	// in its own schema.
	DatabaseURL string
	// DatabaseLogins, when set, are the roles the services log in as, by
	// service (db.Bootstrap), to DatabaseURL's database; a service without
	// one logs in as DatabaseURL's user.
	DatabaseLogins map[string]db.Login
	// NATS and JetStream are the process's connection: for `vigil serve`,
	// as its service's own NATS user.
	NATS      *nats.Conn
	JetStream jetstream.JetStream
	// Bus, when set, has a connection per service, each as the service's
	// own NATS user (`vigil up` runs them all in one process); a service
	// without one uses NATS and JetStream.
	Bus map[string]Conn
	// Admin, when set, is the JetStream of a NATS user allowed to create
	// and update streams (bus.UserAdmin): New provisions the streams with
	// it. Without it the streams must exist (`vigil nats provision`).
	Admin    jetstream.JetStream
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// Keys sign session tokens and the gateway's assertions to the other
	// services (VIGIL_SIGNING_KEY_FILE); a service without the gateway in
	// its process needs only the gateway's public key, to verify them.
	Keys *auth.KeySet
	// ServiceKey is this process's service's own identity key, for calls
	// it makes on its own behalf (`serve analysis` asking deploy for a
	// read-only cluster credential).
	ServiceKey ed25519.PrivateKey
	// Peers are the public keys of the services that may call this
	// process's service on their own behalf (`serve deploy`: analysis).
	Peers map[string]ed25519.PublicKey
	// Reload asks notify to read its routes file again (SIGHUP).
	Reload <-chan struct{}
	// MonitorReload asks monitor to read its inhibition file again
	// (SIGHUP: a channel of its own, so each service hears every one).
	MonitorReload <-chan struct{}
}

// Conn is a service's connection to NATS.
type Conn struct {
	NATS      *nats.Conn
	JetStream jetstream.JetStream
}

// conn is service's connection.
func (d Deps) conn(service string) Conn {
	if c, ok := d.Bus[service]; ok {
		return c
	}
	return Conn{NATS: d.NATS, JetStream: d.JetStream}
}

// conns are the process's NATS connections, each once.
func (d Deps) conns(services []string) []*nats.Conn {
	var out []*nats.Conn
	for _, s := range services {
		if nc := d.conn(s).NATS; nc != nil && !slices.Contains(out, nc) {
			out = append(out, nc)
		}
	}
	return out
}

// App is a composed process.
type App struct {
	opts    Options
	deps    Deps
	srv     *server.Server
	runners []runner
	pools   []*pgxpool.Pool
	conns   []*grpc.ClientConn
}

type runner struct {
	name string
	run  func(context.Context) error
}

// New builds the services and binds the listeners; Run serves.
func New(ctx context.Context, opts Options, deps Deps) (a *App, err error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if deps.Registry == nil {
		// With the Go runtime's and the process's metrics, as the binary's.
		deps.Registry = telemetry.NewRegistry()
	}
	a = &App{opts: opts, deps: deps}
	built := a
	defer func() {
		if err != nil {
			// a is nil by now (return nil, err): close what was built.
			built.close()
		}
	}()
	if deps.Admin != nil {
		if err := bus.Provision(ctx, deps.Admin, opts.Streams); err != nil {
			return nil, err
		}
	}
	metrics := bus.NewMetrics(deps.Registry)
	if deps.Keys == nil && (opts.runs("gateway") || opts.runs("monitor") || opts.runs("deploy") || opts.runs("analysis") || opts.runs("repair") || opts.runs("notify")) {
		return nil, errors.New("signing key: missing (VIGIL_SIGNING_KEY, VIGIL_SIGNING_PUBLIC_KEY or VIGIL_SIGNING_KEY_FILE: the gateway signs with it, monitor and deploy verify its assertions)")
	}
	// Every call is authenticated and authorised by one guard. Until the
	// gateway is built, and in a process without it, it takes the
	// gateway's assertions for the services of this process, each once
	// (the replay table is added with the service's pool), and the
	// bootstrap token only where it belongs: the gateway's process, or
	// one told to (AcceptAdminToken).
	bootstrap := auth.AdminToken("") // accepts nothing
	switch {
	case opts.runs("gateway") || opts.AcceptAdminToken:
		bootstrap = auth.AdminToken(opts.AdminToken)
	case opts.AdminToken != "":
		deps.Logger.WarnContext(ctx, "VIGIL_ADMIN_TOKEN is ignored: only the gateway accepts it (VIGIL_ACCEPT_ADMIN_TOKEN=true to accept it here too)",
			"services", opts.Services)
	}
	// A service alone in its process takes service assertions, accepted
	// once: its authenticator is set below, with the service's pool,
	// before anything is served (Listen only binds).
	guard := &auth.Guard{Log: deps.Logger.With("component", "auth"), Authn: bootstrap}
	serviceAuthn := len(opts.Services) == 1 && opts.Services[0] != "gateway" && deps.Keys != nil
	if a.opts.ShutdownTimeout == 0 {
		a.opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	a.srv = server.New(server.Options{
		// The last tenth of the budget is the NATS drain's, after the
		// requests in flight have published what they accepted.
		ShutdownTimeout:    a.opts.ShutdownTimeout - a.opts.ShutdownTimeout/10,
		GRPCAddr:           opts.GRPCAddr,
		HTTPAddr:           opts.HTTPAddr,
		Logger:             deps.Logger,
		Gatherer:           deps.Registry,
		UnaryInterceptors:  []grpc.UnaryServerInterceptor{guard.Unary()},
		StreamInterceptors: []grpc.StreamServerInterceptor{guard.Stream()},
	})
	// REST calls meet the same guard before their bodies are read.
	a.srv.AuthorizeREST(guard.AdmitHTTP)
	if err := a.srv.Listen(); err != nil {
		return nil, err
	}
	a.srv.AddReadinessCheck(func(context.Context) error {
		for _, nc := range deps.conns(opts.Services) {
			if s := nc.Status(); s != nats.CONNECTED {
				return fmt.Errorf("NATS is %s", s)
			}
		}
		return nil
	})
	for _, s := range opts.Services {
		if nc := deps.conn(s).NATS; nc != nil {
			a.dependencyUp("nats", s, func(context.Context) bool { return nc.Status() == nats.CONNECTED })
		}
	}

	var (
		mon *monitor.Service
		dep *deploy.Service
		anl *analysis.Service
		rep *repair.Service
		ntf *notify.Service
	)
	for _, name := range opts.Services {
		pool, err := a.pool(ctx, name)
		if err != nil {
			return nil, err
		}
		if serviceAuthn {
			if err := replay.Migrate(ctx, pool, name); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			spent := replay.New(pool, deps.Logger)
			guard.Authn = auth.ServiceAuthenticator{
				Keys: deps.Keys, Service: name, Peers: deps.Peers, Fallback: bootstrap, Spent: spent,
			}
			a.runners = append(a.runners, runner{name + " replay", spent.Run})
		}
		js := deps.conn(name).JetStream
		pub := bus.NewPublisher(js, metrics)
		switch name {
		case "monitor":
			mon, err = monitor.New(ctx, opts.Monitor, monitor.Deps{
				Pool: pool, JetStream: js, Publisher: pub, Metrics: metrics, Logger: deps.Logger,
				Reload: deps.MonitorReload,
			})
			if err != nil {
				return nil, fmt.Errorf("monitor: %w", err)
			}
			a.runners = append(a.runners, runner{name, mon.Run})
			if !opts.runs("gateway") {
				mon.Register(a.srv.GRPC)
			}
		case "notify":
			n, err := notify.New(ctx, opts.Notify, notify.Deps{
				Pool: pool, JetStream: js, Metrics: metrics, Logger: deps.Logger, Reload: deps.Reload, Registry: deps.Registry,
			})
			if err != nil {
				return nil, fmt.Errorf("notify: %w", err)
			}
			ntf = n
			a.runners = append(a.runners, runner{name, n.Run})
			if !opts.runs("gateway") {
				n.Register(a.srv.GRPC)
			}
		case "analysis":
			adeps := analysis.Deps{
				Pool: pool, JetStream: js, Publisher: pub, Metrics: metrics, Logger: deps.Logger,
			}
			engines, err := analysis.NewEngines(opts.LLM, deps.Logger)
			if err != nil {
				return nil, fmt.Errorf("analysis: %w", err)
			}
			adeps.Analyzer = engines
			switch {
			case dep != nil:
				// Read-only clients of the clusters deploy registered
				// (ADR 8).
				adeps.Clusters = dep.Readers()
			case opts.DeployAddr != "":
				// The same, from deploy in its own process, asked as
				// the analysis service.
				conn, err := a.dialAs(opts.DeployAddr, "analysis", "deploy")
				if err != nil {
					return nil, fmt.Errorf("analysis: deploy at %s: %w", opts.DeployAddr, err)
				}
				adeps.Clusters = readers{clustercred.New(conn, deployv1.ClusterAccess_CLUSTER_ACCESS_READ)}
			default:
				deps.Logger.WarnContext(ctx, "analysis has no cluster access: run deploy in this process, or set VIGIL_DEPLOY_ADDR and VIGIL_SERVICE_KEY; analyses will say so and ask a person")
			}
			an, err := analysis.New(ctx, opts.Analysis, adeps)
			if err != nil {
				return nil, fmt.Errorf("analysis: %w", err)
			}
			anl = an
			a.runners = append(a.runners, runner{name, an.Run})
			if !opts.runs("gateway") {
				an.Register(a.srv.GRPC)
			}
		case "repair":
			rdeps := repair.Deps{Pool: pool, JetStream: js, Publisher: pub, Metrics: metrics, Logger: deps.Logger}
			switch {
			case dep != nil:
				// Clients acting as Vigil's repair identity (ADR 8);
				// Vigil's own apps are changed through deploy.
				rdeps.Clusters, rdeps.Apps = dep.Repairers(), dep
			case opts.DeployAddr != "":
				// The same, from deploy in its own process, asked as the
				// repair service.
				conn, err := a.dialAs(opts.DeployAddr, "repair", "deploy")
				if err != nil {
					return nil, fmt.Errorf("repair: deploy at %s: %w", opts.DeployAddr, err)
				}
				rdeps.Clusters = repairers{clustercred.New(conn, deployv1.ClusterAccess_CLUSTER_ACCESS_REPAIR)}
				rdeps.Apps = appRepairs{deployv1.NewRepairRollbackServiceClient(conn)}
			default:
				deps.Logger.WarnContext(ctx, "repair has no cluster access: run deploy in this process, or set VIGIL_DEPLOY_ADDR and VIGIL_SERVICE_KEY; repairs will be blocked, and say so")
			}
			rep, err = repair.New(ctx, opts.Repair, rdeps)
			if err != nil {
				return nil, fmt.Errorf("repair: %w", err)
			}
			a.runners = append(a.runners, runner{name, rep.Run})
			if !opts.runs("gateway") {
				rep.Register(a.srv.GRPC)
			}
		case "deploy":
			dep, err = deploy.New(ctx, opts.Deploy, deploy.Deps{
				Pool: pool, JetStream: js, Publisher: pub, Metrics: metrics, Logger: deps.Logger,
			})
			if err != nil {
				return nil, fmt.Errorf("deploy: %w", err)
			}
			a.runners = append(a.runners, runner{name, dep.Run})
			if !opts.runs("gateway") {
				dep.Register(a.srv.GRPC)
			}
		case "gateway":
			if !deps.Keys.CanSign() {
				return nil, errors.New("gateway: the signing key must be a private key (VIGIL_SIGNING_KEY or VIGIL_SIGNING_KEY_FILE): the gateway signs session tokens")
			}
			gdeps := gateway.Deps{
				Pool: pool, Keys: deps.Keys, Publisher: pub, Logger: deps.Logger,
				JetStream: js, Metrics: metrics, Registry: deps.Registry,
			}
			if mon != nil {
				gdeps.Incidents, gdeps.Silences = mon.IncidentServer(), mon.SilenceServer()
				gdeps.OnCall, gdeps.Escalation = mon.OnCallServer(), mon.EscalationServer()
				gdeps.Inhibitions = mon.InhibitionServer()
			} else {
				conn, err := a.peer(ctx, opts.MonitorAddr, "monitor", "VIGIL_MONITOR_ADDR", "incidents, silences, on-call, escalation and inhibitions")
				if err != nil {
					return nil, err
				}
				gdeps.Incidents, gdeps.Silences = gateway.NewIncidentForwarder(conn), gateway.NewSilenceForwarder(conn)
				gdeps.OnCall, gdeps.Escalation = gateway.NewOnCallForwarder(conn), gateway.NewEscalationForwarder(conn)
				gdeps.Inhibitions = gateway.NewInhibitionForwarder(conn)
			}
			if dep != nil {
				gdeps.Apps, gdeps.Clusters = dep.AppServer(), dep.ClusterServer()
				dep.RegisterInternal(a.srv.GRPC)
			} else {
				conn, err := a.peer(ctx, opts.DeployAddr, "deploy", "VIGIL_DEPLOY_ADDR", "apps and clusters")
				if err != nil {
					return nil, err
				}
				gdeps.Apps, gdeps.Clusters = gateway.NewAppForwarder(conn), gateway.NewClusterForwarder(conn)
			}
			if rep != nil {
				gdeps.Repairs = rep.Server()
			} else {
				conn, err := a.peer(ctx, opts.RepairAddr, "repair", "VIGIL_REPAIR_ADDR", "repairs and guardrails")
				if err != nil {
					return nil, err
				}
				gdeps.Repairs = gateway.NewRepairForwarder(conn)
			}
			if anl != nil {
				gdeps.Analyses = anl.Server()
			} else {
				conn, err := a.peer(ctx, opts.AnalysisAddr, "analysis", "VIGIL_ANALYSIS_ADDR", "analyses and playbooks")
				if err != nil {
					return nil, err
				}
				gdeps.Analyses = gateway.NewAnalysisForwarder(conn)
			}
			if ntf != nil {
				gdeps.Channels, gdeps.Routes = ntf.ChannelServer(), ntf.RouteServer()
			} else {
				conn, err := a.peer(ctx, opts.NotifyAddr, "notify", "VIGIL_NOTIFY_ADDR", "channels and routes")
				if err != nil {
					return nil, err
				}
				gdeps.Channels, gdeps.Routes = gateway.NewChannelForwarder(conn), gateway.NewRouteForwarder(conn)
			}
			gopts := opts.Gateway
			gopts.AdminToken = opts.AdminToken
			g, err := gateway.New(ctx, gopts, gdeps)
			if err != nil {
				return nil, fmt.Errorf("gateway: %w", err)
			}
			guard.Authn, guard.Audit = g.Authenticator(), g.Audit
			if err := g.Register(ctx, a.srv); err != nil {
				return nil, fmt.Errorf("gateway: %w", err)
			}
			a.runners = append(a.runners, runner{name, g.Run})
		}
	}
	return a, nil
}

// peer is the gateway's connection to service in another process, at
// addr (its variable is envVar); without one the gateway still starts,
// and that service's API (what) answers Unavailable, saying so.
func (a *App) peer(ctx context.Context, addr, service, envVar, what string) (grpc.ClientConnInterface, error) {
	if addr == "" {
		a.deps.Logger.WarnContext(ctx, "a service the gateway forwards to is not configured: its API answers Unavailable", "variable", envVar, "peer", service, "api", what)
		return unconfigured(fmt.Sprintf("%s service not configured: the gateway needs %s", service, envVar)), nil
	}
	conn, err := a.dial(addr, service)
	if err != nil {
		return nil, fmt.Errorf("gateway: %s at %s: %w", service, addr, err)
	}
	return conn, nil
}

// unconfigured is the connection to a service the gateway was not told
// where to find: every call answers Unavailable with its text.
type unconfigured string

func (u unconfigured) Invoke(context.Context, string, any, any, ...grpc.CallOption) error {
	return status.Error(codes.Unavailable, string(u))
}

func (u unconfigured) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unavailable, string(u))
}

// dial connects to another process's service as the gateway: each call
// carries an assertion of its caller signed for that service, and the
// trace continues across it.
func (a *App) dial(addr, service string) (*grpc.ClientConn, error) {
	return a.dialWith(addr, auth.ServiceCredentials{Keys: a.deps.Keys, Service: service})
}

// readers and repairers are deploy's credentials in another process, as
// analysis and repair ask for them.
type (
	readers   struct{ *clustercred.Clusters }
	repairers struct{ *clustercred.Clusters }
)

func (r readers) Reader(ctx context.Context, cluster string) (kubernetes.Interface, error) {
	return r.Client(ctx, cluster)
}

func (r repairers) Repairer(ctx context.Context, cluster string) (kubernetes.Interface, error) {
	return r.Client(ctx, cluster)
}

// appRepairs rolls back, scales and sets the memory of Vigil's apps
// through deploy in another process.
type appRepairs struct {
	c deployv1.RepairRollbackServiceClient
}

func (a appRepairs) RollbackForRepair(ctx context.Context, app, repairID string) (*deployv1.Deployment, error) {
	resp, err := a.c.RollbackForRepair(ctx, &deployv1.RollbackForRepairRequest{App: app, RepairId: repairID})
	return resp.GetDeployment(), err
}

func (a appRepairs) ScaleForRepair(ctx context.Context, app, repairID string, replicas int32) (*deployv1.Deployment, error) {
	resp, err := a.c.ScaleForRepair(ctx, &deployv1.ScaleForRepairRequest{App: app, RepairId: repairID, Replicas: replicas})
	return resp.GetDeployment(), err
}

func (a appRepairs) SetMemoryLimitForRepair(ctx context.Context, app, repairID, container string, limitBytes int64) (*deployv1.Deployment, error) {
	resp, err := a.c.SetMemoryLimitForRepair(ctx, &deployv1.SetMemoryLimitForRepairRequest{
		App: app, RepairId: repairID, Container: container, LimitBytes: limitBytes,
	})
	return resp.GetDeployment(), err
}

// dialAs connects to another process's service as the service name
// itself (its own key, deps.ServiceKey), for calls made on its own
// behalf.
func (a *App) dialAs(addr, name, service string) (*grpc.ClientConn, error) {
	if a.deps.ServiceKey == nil {
		return nil, fmt.Errorf("VIGIL_SERVICE_KEY: missing: the %s service's own key, to call %s with", name, service)
	}
	return a.dialWith(addr, auth.ServiceIdentity{Name: name, Key: a.deps.ServiceKey, Audience: service})
}

func (a *App) dialWith(addr string, creds credentials.PerRPCCredentials) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(creds),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
	)
	if err != nil {
		return nil, err
	}
	a.conns = append(a.conns, conn)
	return conn, nil
}

// pool opens a pool whose search_path is the service's own schema, as the
// service's own role when it has one.
func (a *App) pool(ctx context.Context, service string) (*pgxpool.Pool, error) {
	opts := []db.OpenOption{}
	if a.opts.StatementTimeout > 0 {
		opts = append(opts, db.StatementTimeout(a.opts.StatementTimeout))
	}
	if l, ok := a.deps.DatabaseLogins[service]; ok {
		opts = append(opts, db.As(l))
	}
	pool, err := db.Open(ctx, a.deps.DatabaseURL, service, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", service, err)
	}
	a.pools = append(a.pools, pool)
	// What waits in its outbox, for the services with one (the others
	// export nothing of it).
	a.deps.Registry.MustRegister(db.PoolCollector(pool, service), outbox.Collector(pool, service))
	a.dependencyUp("postgres", service, func(ctx context.Context) bool { return pool.Ping(ctx) == nil })
	var role string
	var super bool
	if err := pool.QueryRow(ctx, "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&role, &super); err != nil {
		return nil, fmt.Errorf("%s: database role: %w", service, err)
	}
	if super {
		// It works, but a flaw in one service then reaches every schema.
		a.deps.Logger.WarnContext(ctx, "service logs in to Postgres as a superuser: give each service its own role (vigil db bootstrap)",
			"service", service, "role", role)
	}
	if service == "gateway" {
		// The gateway accepts alerts into JetStream without its database
		// (credentials it verified stand through an outage): a Service
		// must keep sending it webhooks while Postgres is down.
		return pool, nil
	}
	a.srv.AddReadinessCheck(func(ctx context.Context) error {
		if err := pool.Ping(ctx); err != nil {
			return fmt.Errorf("%s database: %w", service, err)
		}
		return nil
	})
	return pool, nil
}

// dependencyUp exports whether a service reaches a dependency as
// vigil_dependency_up{dependency, vigil_service}, asking reaches at each
// scrape. (A label named service would be renamed under a ServiceMonitor,
// whose targets carry one.)
func (a *App) dependencyUp(dependency, service string, reaches func(context.Context) bool) {
	a.deps.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "vigil_dependency_up",
		Help:        "Whether a service reaches a dependency of its: postgres, its pool answers a ping; nats, its connection is up.",
		ConstLabels: prometheus.Labels{"dependency": dependency, "vigil_service": service},
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), dependencyCheckTimeout)
		defer cancel()
		if reaches(ctx) {
			return 1
		}
		return 0
	}))
}

// dependencyCheckTimeout bounds a scrape's check of one dependency.
const dependencyCheckTimeout = 2 * time.Second

// GRPCAddr and HTTPAddr are where the process listens.
func (a *App) GRPCAddr() string { return a.srv.GRPCAddr() }

// HTTPAddr is where REST, webhooks, health and metrics are served.
func (a *App) HTTPAddr() string { return a.srv.HTTPAddr() }

// DefaultShutdownTimeout is the budget of a stop when Options set none.
const DefaultShutdownTimeout = 10 * time.Second

// Run serves until ctx is cancelled, then stops within ShutdownTimeout, a
// deadline every step shares: health NOT_SERVING and the listeners closed
// at once; the requests in flight finish or answer (a webhook whose alerts
// JetStream did not acknowledge in time gets 503 and Retry-After, never
// 202) while the consumers finish the unit of work in hand and give back
// the rest; then NATS drains what was published, and the pools close.
func (a *App) Run(ctx context.Context) error {
	defer a.close()
	srvCtx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServer()
	srvDone := make(chan error, 1)
	go func() { srvDone <- a.srv.Run(srvCtx) }()

	g, gctx := errgroup.WithContext(ctx)
	var (
		mu      sync.Mutex
		running = map[string]int{}
	)
	for _, r := range a.runners {
		running[r.name]++
		g.Go(func() error {
			defer func() { mu.Lock(); running[r.name]--; mu.Unlock() }()
			if err := r.run(gctx); err != nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
			return nil
		})
	}
	select {
	case <-gctx.Done():
	case err := <-srvDone:
		return err
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opts.ShutdownTimeout)
	defer cancel()
	start := time.Now()
	a.srv.SetNotServing()
	stopServer()
	stopped := make(chan error, 1)
	go func() { stopped <- g.Wait() }()
	var runErr error
	select {
	case runErr = <-stopped:
	case <-stopCtx.Done():
		mu.Lock()
		var late []string
		for name, n := range running {
			if n > 0 {
				late = append(late, name)
			}
		}
		mu.Unlock()
		slices.Sort(late)
		a.deps.Logger.WarnContext(ctx, "services did not stop within the shutdown budget", "budget", a.opts.ShutdownTimeout, "services", late)
	}
	// The server's own budget ends before stopCtx's.
	if err := <-srvDone; err != nil && runErr == nil {
		runErr = err
	}
	// What the requests and consumers published is flushed to NATS.
	var draining []chan struct{}
	for _, nc := range a.deps.conns(a.opts.Services) {
		drained := make(chan struct{})
		nc.SetClosedHandler(func(*nats.Conn) { close(drained) })
		if err := nc.Drain(); err == nil {
			draining = append(draining, drained)
		}
	}
drain:
	for _, drained := range draining {
		select {
		case <-drained:
		case <-stopCtx.Done():
			a.deps.Logger.WarnContext(ctx, "NATS drain did not end within the shutdown budget", "budget", a.opts.ShutdownTimeout)
			break drain
		}
	}
	a.deps.Logger.InfoContext(ctx, "stopped", "took", time.Since(start).Round(time.Millisecond).String())
	return runErr
}

func (a *App) close() {
	for _, c := range a.conns {
		_ = c.Close()
	}
	for _, p := range a.pools {
		p.Close()
	}
}
